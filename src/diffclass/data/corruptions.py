"""Image corruptions at severities 0-5 (0 = clean), usable by every evaluation: `--corruption noise:3`.

Severities are set for the embedded 16x16 data and scale with the image size where that matters (blur width,
down-sampling factor). Noise is seeded per image id, so a corrupted dataset is the same in every run.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F

from diffclass.data.base import ImageDataset
from diffclass.errors import DiffclassError

NOISE_STD = (0.0, 0.1, 0.2, 0.3, 0.45, 0.6)  # Gaussian noise std in [-1, 1] units
BLUR_SIGMA = (0.0, 0.4, 0.6, 0.8, 1.0, 1.3)  # Gaussian blur std in pixels at 16 px
DOWN_FACTOR = (1.0, 1.45, 1.78, 2.29, 3.2, 5.33)  # resolution divided by this (16 px: 11, 9, 7, 5, 3), then back up
KINDS = ("noise", "blur", "downsample")


def parse_corruption(spec: str | None) -> tuple[str, int] | None:
    if not spec:
        return None
    kind, _, level = spec.partition(":")
    if kind not in KINDS or not level.isdigit() or not 0 <= int(level) <= 5:
        raise DiffclassError(f"bad corruption {spec!r}: expected KIND:SEVERITY with KIND in {', '.join(KINDS)} "
                             "and SEVERITY 0-5")  # fmt: skip
    return kind, int(level)


def _gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(3 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


def corrupt_images(images: torch.Tensor, ids: list[str], kind: str, severity: int) -> torch.Tensor:
    if severity == 0:
        return images.clone()
    size = images.shape[-1]
    if kind == "noise":
        noise = torch.stack([
            torch.randn(images.shape[1:], generator=torch.Generator().manual_seed(
                int.from_bytes(hashlib.sha256(f"corruption\x00{i}".encode()).digest()[:8], "little") >> 1))
            for i in ids
        ])  # fmt: skip
        return (images + NOISE_STD[severity] * noise).clamp(-1, 1)
    if kind == "blur":
        return _gaussian_blur(images, BLUR_SIGMA[severity] * size / 16)
    small = max(2, round(size / DOWN_FACTOR[severity]))
    down = F.interpolate(images, size=(small, small), mode="area")
    return F.interpolate(down, size=(size, size), mode="bilinear", align_corners=False).clamp(-1, 1)


def corrupt(dataset: ImageDataset, spec: str | None) -> ImageDataset:
    """The dataset with its images corrupted (the name says how); ids stay, so records stay comparable."""
    parsed = parse_corruption(spec)
    if parsed is None:
        return dataset
    kind, severity = parsed
    images = corrupt_images(dataset.images, dataset.ids, kind, severity)
    return ImageDataset(f"{dataset.name}+{kind}:{severity}", images, dataset.labels, dataset.class_names, dataset.ids)
