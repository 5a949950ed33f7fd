"""The Hydra entry modules behind train.py, eval.py, predict.py, serve.py and export.py: each a straight
line over the layers below. Nothing in the library imports them."""
