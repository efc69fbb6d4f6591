"""Training: losses, batched augmentations, the loop with checkpoints and resume."""
