"""The classifier and its saved form: the task switch (task), the optimizer (optim), the LightningModule
(module.DocumentClassifier), and the one checkpoint format with its model folder (checkpoint, hub), read
by training and inference alike."""
