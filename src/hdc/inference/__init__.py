"""Answers from a trained classifier: the Predictor behind hdc.load (predictor), and what explains an answer:
attention, gradient x input, the deciding n-grams and ERASER's faithfulness measures (explain)."""
