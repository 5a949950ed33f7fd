"""Serve a checkpoint over HTTP: `python serve.py ckpt_path=PATH`. See configs/serve.yaml."""

from hdc.cli.serve import main

if __name__ == "__main__":
    main()
