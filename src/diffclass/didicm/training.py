"""Training DiDiCM (score entropy over noisy labels) and its plain twin (cross-entropy), same backbone and data."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from diffclass.data.base import ImageDataset
from diffclass.didicm.loss import score_entropy
from diffclass.didicm.model import DiDiCMModel
from diffclass.didicm.network import DiDiRN, DiDiRNConfig
from diffclass.didicm.process import T_MIN, sample_noisy_labels_balanced, sigma_bar
from diffclass.progress import progress_bar


@dataclass
class DiDiCMTrainConfig:
    steps: int = 3000
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    width: int = 32
    baseline: bool = False  # the plain classifier of the same backbone
    data_fraction: float = 1.0
    hold_out: float = 0.0  # fraction of training groups (glyphs: font styles) never trained on, for honest tuning
    shift: int = 1  # random translation in pixels (light augmentation)
    mixup: float = 0.0  # Beta(a, a) mixing of image pairs with soft labels (0: off)
    label_smoothing: float = 0.0  # mass spread evenly over all classes
    seed: int = 0


def _augment(images: torch.Tensor, shift: int, gen: torch.Generator) -> torch.Tensor:
    if shift == 0:
        return images
    dx, dy = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=gen))
    return torch.roll(images, shifts=(dy, dx), dims=(2, 3))


def soft_targets(
    images: torch.Tensor, labels: torch.Tensor, num_classes: int, mixup: float, smoothing: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup (each image blended with a shuffled partner, its target blended alike) and label smoothing:
    the images and their soft targets [B, K]."""
    targets = F.one_hot(labels, num_classes).float()
    if mixup > 0:
        lam = torch.distributions.Beta(mixup, mixup).sample((len(images),)).to(images.dtype)
        partner = torch.randperm(len(images), generator=gen)
        images = lam.view(-1, 1, 1, 1) * images + (1 - lam.view(-1, 1, 1, 1)) * images[partner]
        targets = lam.view(-1, 1) * targets + (1 - lam.view(-1, 1)) * targets[partner]
    if smoothing > 0:
        targets = (1 - smoothing) * targets + smoothing / num_classes
    return images, targets


def train_didicm(data: ImageDataset, config: DiDiCMTrainConfig, show_progress: bool = True) -> DiDiCMModel:
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    held_out = data.held_out(config.hold_out, config.seed) if config.hold_out > 0 else []
    if held_out:
        data, _ = data.split_held_out(held_out)
    if config.data_fraction < 1:
        keep = torch.randperm(len(data), generator=gen)[: max(1, int(config.data_fraction * len(data)))]
        data = data.subset(keep.tolist())
    k = len(data.class_names)
    network = DiDiRN(DiDiRNConfig(num_classes=k, in_channels=data.images.shape[1], width=config.width,
                                  conditioned=not config.baseline))  # fmt: skip
    optimizer = torch.optim.AdamW(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=config.steps, pct_start=0.1)
    network.train()
    started = time.time()
    with progress_bar(show_progress) as bar:
        task = bar.add_task("didicm" if not config.baseline else "baseline", total=config.steps, status="")
        for _ in range(config.steps):
            idx = torch.randint(len(data), (config.batch_size,), generator=gen)
            images, labels = _augment(data.images[idx], config.shift, gen), data.labels[idx]
            images, targets = soft_targets(images, labels, k, config.mixup, config.label_smoothing, gen)
            if config.baseline:
                loss = F.cross_entropy(network(images), targets)
            else:
                # c_t is a label drawn from the (soft) target, then noised; the loss takes the target itself, i.e.
                # the sampled-label loss averaged over the clean label given c_t: the same expected gradient
                # without the variance of a drawn target (README: DiDiCM and soft labels).
                clean = torch.multinomial(targets, 1, generator=gen).squeeze(1)
                t = T_MIN + (1 - T_MIN) * torch.rand(len(idx), generator=gen)
                c_t, weights = sample_noisy_labels_balanced(clean, t, k, gen)
                log_scores = network(images, c_t, sigma_bar(t))
                loss = score_entropy(log_scores, c_t, targets, t, weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.update(task, advance=1, status=f"loss {loss.item():.4f}")
    network.eval()
    training = dict(asdict(config), seconds=round(time.time() - started, 1), train_images=len(data))
    if held_out:
        training["held_out"] = held_out  # what `diffclass tune --prefilter-ranker` tunes on
    return DiDiCMModel(network, list(data.class_names), data.images.shape[-1], data.name, training)
