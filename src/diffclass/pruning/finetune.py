"""Fine-tuning a pruned network: the ordinary diffusion loss on the original training data, with the original
recipe, for a fraction of the original steps (resumable, EMA with warm-up, through `training.train`)."""

from __future__ import annotations

from pathlib import Path

import torch

from diffclass.data import load_dataset
from diffclass.errors import DiffclassError
from diffclass.training import TrainConfig, train


def finetune_config(original: dict, steps: int, seed: int = 0, checkpoint_every: int = 250) -> TrainConfig:
    """The original training's learning rate, batch size, EMA decay and ancestor conditioning, for `steps` steps."""
    keep = ("batch_size", "lr", "warmup_steps", "weight_decay", "ema_decay", "ancestor_probability")
    return TrainConfig(
        **{k: original[k] for k in keep if k in original}, steps=steps, seed=seed,
        checkpoint_every=min(checkpoint_every, max(1, steps)),
    )  # fmt: skip


def calibration_batch(backbone, images: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Real training images with their labels, drawn by seed from the model's own training data."""
    name = backbone.info.dataset
    if not name:
        raise DiffclassError("the model does not say which dataset it was trained on; cannot prune it")
    data = load_dataset(name, "train", backbone.info.image_size)
    pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:images]
    return data.images[pick], data.labels[pick]


def finetune(backbone, out: str | Path, steps: int, seed: int = 0, resume: bool = False, show_progress: bool = True):
    """Fine-tune the (pruned) backbone on its training data and save it to `out`; the pruning record keeps the
    original training recipe and gains the fine-tuning steps."""
    info = backbone.info
    original = info.pruning.get("original_training") or info.training
    data = load_dataset(info.dataset, "train", info.image_size)
    config = finetune_config(original, steps, seed)
    info.pruning["finetune_steps"] = steps
    train(backbone, data, out, config, resume=resume, show_progress=show_progress)
    return backbone
