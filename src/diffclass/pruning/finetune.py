"""Fine-tuning a pruned network: the ordinary diffusion loss on the original training data, with the original
recipe, for a fraction of the original steps (resumable, EMA with warm-up, through `training.train`)."""

from __future__ import annotations

from pathlib import Path

import torch

from diffclass.backbones import backbone_kind, load_backbone
from diffclass.data import load_dataset
from diffclass.errors import DiffclassError
from diffclass.hub import INFO_FILE
from diffclass.pruning.pruner import PruneReport, prune_backbone
from diffclass.training import TrainConfig, train


def finetune_config(original: dict, steps: int, seed: int = 0, checkpoint_every: int = 250) -> TrainConfig:
    """The original training's learning rate, batch size, EMA decay, ancestor conditioning and augmentation, for
    `steps` steps (a network trained to ignore where a glyph sits keeps that while it recovers)."""
    keep = ("batch_size", "lr", "warmup_steps", "weight_decay", "ema_decay", "ancestor_probability", "augment")
    return TrainConfig(
        **{k: original[k] for k in keep if k in original},
        steps=steps,
        seed=seed,
        checkpoint_every=min(checkpoint_every, max(1, steps)),
    )


def calibration_batch(data, images: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Real training images with their labels, drawn by seed."""
    pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:images]
    return data.images[pick], data.labels[pick]


def training_data(backbone):
    """The images the model learnt from: its training data less the part its training held out (which stays
    unseen, for fitting the pruned model's window, temperature and front)."""
    info = backbone.info
    if not info.dataset:
        raise DiffclassError("the model does not say which dataset it was trained on; cannot prune it")
    data = load_dataset(info.dataset, "train", info.image_size, info.channels, info.class_names)
    held_out = held_out_of(info)
    return data.split_held_out(held_out)[0] if held_out else data


def held_out_of(info) -> list[str]:
    """What a (possibly already pruned) model's original training held out."""
    return (info.pruning.get("original_training") or info.training or {}).get("held_out") or []


def prune_to_folder(
    source: str | Path,
    out: str | Path,
    method: str,
    ratio: float,
    finetune_steps: int,
    threshold: float = 0.05,
    calibration_images: int = 64,
    calibration_steps: int = 100,
    protect_class_embedding: bool = True,
    seed: int = 0,
):
    """Prune a saved class-conditional UNet model and save the pruned network to `out` before any fine-tuning, so
    nothing is lost if that stops; its pruning record names the planned fine-tuning steps, which `finetune` (and a
    resumed run) train to. Returns the pruned backbone and the report."""
    if backbone_kind(source)[0] != "class_unet":  # the kind its folder declares, before anything is built
        raise DiffclassError("diffclass prune works on class-conditional UNet models (diffclass folders)")
    backbone = load_backbone(source)
    images, labels = calibration_batch(training_data(backbone), calibration_images, seed)
    report = prune_backbone(
        backbone,
        method,
        ratio,
        images,
        labels,
        threshold=threshold,
        calibration_steps=calibration_steps,
        protect_class_embedding=protect_class_embedding,
        seed=seed,
    )
    info = backbone.info
    original = info.pruning.get("original_training", info.training)
    info.pruning = dict(report.to_dict(), source=str(source), original_training=original, finetune_steps=finetune_steps)
    backbone.save_pretrained(out)
    return backbone, report


def finetune(backbone, out: str | Path, seed: int = 0, resume: bool = False, show_progress: bool = True):
    """Fine-tune the pruned backbone on its training data for the steps its pruning record plans, with the
    original recipe, and save it to `out`."""
    info = backbone.info
    config = finetune_config(info.pruning["original_training"], info.pruning["finetune_steps"], seed)
    train(backbone, training_data(backbone), out, config, resume, show_progress, keep_out=held_out_of(info))
    return backbone


def prune_model(
    source: str | Path,
    out: str | Path,
    method: str = "diff-pruning",
    ratio: float = 0.25,
    finetune_steps: int = 500,
    *,
    resume: bool = False,
    seed: int = 0,
    **prune_options,
) -> PruneReport | None:
    """Prune `source` into `out`, then fine-tune it. With `resume`, continue the fine-tuning checkpointed in `out`
    instead (returns None: nothing is pruned again). A folder that already holds a model is never overwritten."""
    out = Path(out)
    if resume:
        backbone = load_backbone(out)
        if not backbone.info.pruning:
            raise DiffclassError(f"{out} does not hold a pruned model; nothing to resume")
        finetune(backbone, out, seed, resume=(out / "checkpoint").is_dir())
        return None
    if (out / INFO_FILE).is_file():
        raise DiffclassError(f"{out} already holds a model; pass --resume to continue its fine-tuning, or a new --out")
    backbone, report = prune_to_folder(source, out, method, ratio, finetune_steps, seed=seed, **prune_options)
    if finetune_steps > 0:
        finetune(backbone, out, seed)
    return report
