"""Train a document classifier: `python train.py experiment=imdb`. See configs/train.yaml for the options."""

from hdc.cli.train import main

if __name__ == "__main__":
    main()
