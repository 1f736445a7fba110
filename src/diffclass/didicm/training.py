"""Training DiDiCM (score entropy over noisy labels) and its plain twin (cross-entropy), same backbone and data."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from diffclass.data.augment import Augmentation
from diffclass.data.base import ImageDataset
from diffclass.didicm.loss import score_entropy
from diffclass.didicm.model import DiDiCMModel
from diffclass.didicm.network import HEADS, DiDiRN, DiDiRNConfig
from diffclass.didicm.process import (
    SCHEDULES,
    T_MIN,
    sample_noisy_labels,
    sample_noisy_labels_balanced,
    sigma_bar,
)
from diffclass.errors import DiffclassError, check_range
from diffclass.hub.checkpoints import read_checkpoint, restore_state, state_tensors, write_checkpoint
from diffclass.progress import progress_bar


@dataclass
class DiDiCMTrainConfig:
    steps: int = 3000
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    width: int = 32
    baseline: bool = False  # the plain classifier of the same backbone
    data_fraction: float = 1.0  # drawn from the whole split (our earlier tables)
    data_ratio: float = 1.0  # drawn per class, stratified (the paper's data-scarcity protocol)
    hold_out: float = 0.0  # fraction of training groups (glyphs: font styles) never trained on, for honest tuning
    shift: int = 1  # random translation in pixels (light augmentation)
    augment: str = "none"  # an Augmentation spec on top of the shift (affine, colour, grey)
    mixup: float = 0.0  # Beta(a, a) mixing of image pairs with soft labels (0: off)
    cutmix: float = 0.0  # Beta(a, a) share of a partner's box pasted in, labels mixed by area (0: off)
    label_smoothing: float = 0.0  # mass spread evenly over all classes
    head: str = "scores"  # the DiDiRN head: scores (the paper's free log concrete scores) or p0 (ours, derived)
    transitions: str = "balanced"  # noisy labels: balanced with importance weights (ours) or sampled (the paper's)
    schedule: str = "loglinear"  # the label diffusion's noise schedule: loglinear (both) or geometric (the paper's)
    seed: int = 0

    def __post_init__(self):
        if self.head not in HEADS:
            raise DiffclassError(f"--head must be one of {', '.join(HEADS)}, got {self.head!r}")
        if self.schedule not in SCHEDULES:
            raise DiffclassError(f"--schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.transitions not in ("balanced", "sampled"):
            raise DiffclassError(f"--transitions must be balanced or sampled, got {self.transitions!r}")
        check_range("--lr", self.lr, 0, 10, low_open=True)
        check_range("--mixup", self.mixup, 0, 1e3)
        check_range("--cutmix", self.cutmix, 0, 1e3)
        check_range("--label-smoothing", self.label_smoothing, 0, 0.999)
        check_range("--hold-out", self.hold_out, 0, 0.9)
        check_range("--data-fraction", self.data_fraction, 0, 1, low_open=True)
        check_range("--data-ratio", self.data_ratio, 0, 1, low_open=True)


def _augment(images: torch.Tensor, shift: int, gen: torch.Generator) -> torch.Tensor:
    if shift == 0:
        return images
    dx, dy = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=gen))
    return torch.roll(images, shifts=(dy, dx), dims=(2, 3))


def soft_targets(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    mixup: float,
    smoothing: float,
    gen: torch.Generator,
    cutmix: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup (each image blended with a shuffled partner, its target blended alike), CutMix (kornia's: a box of a
    partner pasted in, the targets mixed by the area each keeps) and label smoothing: the images and their soft
    targets [B, K]."""
    targets = F.one_hot(labels, num_classes).float()
    if cutmix > 0:
        from kornia.augmentation import RandomCutMixV2

        paste = RandomCutMixV2(beta=cutmix, p=1.0, use_correct_lambda=True, data_keys=["input", "class"])
        images, (mix,) = paste(images, labels)  # mix: (label, partner's label, share of the image kept) per image
        kept = mix[:, 2].view(-1, 1).to(targets.dtype)
        targets = kept * targets + (1 - kept) * F.one_hot(mix[:, 1].long(), num_classes).float()
    if mixup > 0:
        lam = torch.distributions.Beta(mixup, mixup).sample((len(images),)).to(images.dtype)
        partner = torch.randperm(len(images), generator=gen)
        images = lam.view(-1, 1, 1, 1) * images + (1 - lam.view(-1, 1, 1, 1)) * images[partner]
        targets = lam.view(-1, 1) * targets + (1 - lam.view(-1, 1)) * targets[partner]
    if smoothing > 0:
        targets = (1 - smoothing) * targets + smoothing / num_classes
    return images, targets


def _save_state(folder: Path, step: int, network, optimizer, gen: torch.Generator, config: DiDiCMTrainConfig) -> None:
    """Weights, optimiser moments and both random streams (batches, and the global one mixup draws from), so a
    resumed run continues exactly where an uninterrupted one would have been."""
    tensors, param_groups = state_tensors(network, optimizer)
    tensors["rng.batches"], tensors["rng.global"] = gen.get_state(), torch.get_rng_state()
    write_checkpoint(folder, tensors, dict(step=step, config=asdict(config), param_groups=param_groups))


def _load_state(folder: Path, network, optimizer, gen: torch.Generator, config: DiDiCMTrainConfig) -> int:
    try:
        tensors, meta = read_checkpoint(folder)
    except (OSError, ValueError) as exc:
        raise DiffclassError(f"nothing to resume in {folder}: {str(exc).splitlines()[0]}") from None
    saved, asked = meta.get("config") or {}, json.loads(json.dumps(asdict(config)))
    if saved != asked:
        other = ", ".join(f"{k} {saved.get(k)} (asked {v})" for k, v in asked.items() if saved.get(k) != v)
        raise DiffclassError(f"the checkpoint in {folder} was made with other options: {other}")
    try:
        restore_state(tensors, meta["param_groups"], network, optimizer)
        gen.set_state(tensors["rng.batches"])
        torch.set_rng_state(tensors["rng.global"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise DiffclassError(
            f"the checkpoint in {folder} does not fit this model: {str(exc).splitlines()[0]}"
        ) from None
    return int(meta["step"])


def train_didicm(
    data: ImageDataset,
    config: DiDiCMTrainConfig,
    show_progress: bool = True,
    checkpoint: Path | None = None,
    checkpoint_every: int = 500,
    resume: bool = False,
) -> DiDiCMModel:
    """Train on `data`; with `checkpoint`, save a resumable state there every `checkpoint_every` steps, and with
    `resume` go on from it (the result equals an uninterrupted run's)."""
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    held_out = data.held_out(config.hold_out, config.seed) if config.hold_out > 0 else []
    if held_out:
        data, _ = data.split_held_out(held_out)
    if config.data_fraction < 1:
        keep = torch.randperm(len(data), generator=gen)[: max(1, int(config.data_fraction * len(data)))]
        data = data.subset(keep.tolist())
    if config.data_ratio < 1:
        data = data.per_class(config.data_ratio, config.seed)
    k = len(data.class_names)
    network = DiDiRN(
        DiDiRNConfig(
            num_classes=k,
            in_channels=data.images.shape[1],
            width=config.width,
            conditioned=not config.baseline,
            head=config.head,
            schedule=config.schedule,
        )
    )
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=config.steps, pct_start=0.1)
    augmentation = Augmentation.parse(config.augment)
    start = _load_state(checkpoint, network, optimizer, gen, config) if resume and checkpoint else 0
    schedule.last_epoch = start  # the one-cycle rate is a closed form of the step; the restored groups hold its lr
    network.train()
    started = time.time()
    with progress_bar(show_progress) as bar:
        task = bar.add_task("didicm" if not config.baseline else "baseline", total=config.steps, status="")
        bar.update(task, completed=start)
        for step in range(start, config.steps):
            idx = torch.randint(len(data), (config.batch_size,), generator=gen)
            images, labels = augmentation(_augment(data.images[idx], config.shift, gen), gen), data.labels[idx]
            images, targets = soft_targets(images, labels, k, config.mixup, config.label_smoothing, gen, config.cutmix)
            if config.baseline:
                loss = F.cross_entropy(network(images), targets)
            else:
                # c_t is a label drawn from the (soft) target, then noised; the loss takes the target itself, i.e.
                # the sampled-label loss averaged over the clean label given c_t: the same expected gradient
                # without the variance of a drawn target (README: DiDiCM and soft labels).
                clean = torch.multinomial(targets, 1, generator=gen).squeeze(1)
                t = T_MIN + (1 - T_MIN) * torch.rand(len(idx), generator=gen)
                noise = config.schedule
                if config.transitions == "sampled":  # c_t ~ q_t(. | c0), as the paper's SEDD loss draws it
                    c_t, weights = sample_noisy_labels(clean, t, k, gen, noise), None
                else:
                    c_t, weights = sample_noisy_labels_balanced(clean, t, k, gen, noise)
                log_scores = network(images, c_t, sigma_bar(t, noise))
                loss = score_entropy(log_scores, c_t, targets, t, weights, noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.update(task, advance=1, status=f"loss {loss.item():.4f}")
            if checkpoint and ((step + 1) % checkpoint_every == 0 or step + 1 == config.steps):
                _save_state(checkpoint, step + 1, network, optimizer, gen, config)
    network.eval()
    training = dict(asdict(config), seconds=round(time.time() - started, 1), train_images=len(data))
    if held_out:
        training["held_out"] = held_out  # what `diffclass tune --prefilter-ranker` tunes on
    return DiDiCMModel(network, list(data.class_names), data.images.shape[-1], data.name, training)
