"""Classify text with a checkpoint: `python predict.py ckpt_path=PATH input=FILE|-`. See configs/predict.yaml."""

from hdc.cli.predict import main

if __name__ == "__main__":
    main()
