"""Hand a trained model on: `python export.py ckpt_path=PATH out=DIR [push_to=user/name]`. See configs/export.yaml."""

from hdc.cli.export import main

if __name__ == "__main__":
    main()
