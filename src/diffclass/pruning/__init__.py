"""Structural pruning of noise-prediction networks (Diff-Pruning and its baselines) and their fine-tuning
(`pruning.finetune`), so every network call of a diffusion classifier is cheaper. The pruned networks' save
format lives with the other model formats, in `diffclass.hub.pruned`."""

from diffclass.pruning.pruner import IMPORTANCES, PruneReport, accumulate_informative_gradients, prune_backbone

__all__ = ["IMPORTANCES", "PruneReport", "accumulate_informative_gradients", "prune_backbone"]
