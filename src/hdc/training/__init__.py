"""What a training run needs beyond the classifier: config -> data, model and trainer parts (build), the
callbacks, the loggers, and the sweeps' summary and pruning (sweep)."""
