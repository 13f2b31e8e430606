"""Training with the papers' recipes: configs, batched augmentation, the trainer, evaluation."""
