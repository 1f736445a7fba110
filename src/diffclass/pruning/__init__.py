"""Structural pruning of noise-prediction networks (Diff-Pruning and its baselines), their save format, and
fine-tuning (`pruning.finetune`), so every network call of a diffusion classifier is cheaper."""

from diffclass.pruning.architecture import is_pruned_folder, load_pruned, save_pruned
from diffclass.pruning.pruner import METHODS, PruneReport, accumulate_informative_gradients, prune_backbone

__all__ = [
    "METHODS",
    "PruneReport",
    "accumulate_informative_gradients",
    "is_pruned_folder",
    "load_pruned",
    "prune_backbone",
    "save_pruned",
]
