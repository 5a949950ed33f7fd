"""Evaluate a checkpoint: `python eval.py ckpt_path=PATH`. See configs/eval.yaml for the options."""

from hdc.cli.evaluate import main

if __name__ == "__main__":
    main()
