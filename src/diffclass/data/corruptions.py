"""Image corruptions at severities 0-5 (0 = clean), usable by every evaluation: `--corruption noise:3`.

Severities are set for the embedded 16x16 data and scale with the image size where that matters (blur width,
down-sampling factor). Noise is seeded per image id, so a corrupted dataset is the same in every run.

`imagenet-c:NAME:S` is one of the ImageNet-C corruptions (`diffclass.data.imagenet_c`) at severity 1-5.

Two more move the content instead of damaging it, as a crop from elsewhere looks: `shift:S` translates each image
by S pixels in x and in y (directions drawn per image id), and `centre` moves the bounding box of what differs
from the background to the middle; the uncovered border repeats the edge, i.e. the background.
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
KINDS = ("noise", "blur", "downsample", "shift")
MAX_SHIFT = 8  # pixels
BACKGROUND_TOLERANCE = 0.1  # in [-1, 1] units: a pixel this close to the border's median is background
IMAGENET_C = "imagenet-c:"


def parse_corruption(spec: str | None) -> tuple[str, int] | None:
    """(kind, severity) of a corruption spec; an ImageNet-C kind is `imagenet-c:NAME`."""
    if not spec:
        return None
    if spec == "centre":
        return "centre", 1
    if spec.startswith(IMAGENET_C):
        from diffclass.data.imagenet_c import check_name

        name, _, level = spec[len(IMAGENET_C) :].partition(":")
        check_name(name)
        if not level.isdigit() or not 1 <= int(level) <= 5:
            raise DiffclassError(f"bad corruption {spec!r}: expected imagenet-c:NAME:SEVERITY with SEVERITY 1-5")
        return f"{IMAGENET_C}{name}", int(level)
    kind, _, level = spec.partition(":")
    top = MAX_SHIFT if kind == "shift" else 5
    if kind not in KINDS or not level.isdigit() or not 0 <= int(level) <= top:
        raise DiffclassError(
            f"bad corruption {spec!r}: expected centre, shift:PIXELS (0-{MAX_SHIFT}), imagenet-c:NAME:SEVERITY or "
            f"KIND:SEVERITY with KIND in {', '.join(KINDS[:3])} and SEVERITY 0-5"
        )
    return kind, int(level)


def _seed(image_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"corruption\x00{image_id}".encode()).digest()[:8], "little") >> 1


def translate(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """[C, H, W] moved by (dy, dx) whole pixels; what is uncovered repeats the edge."""
    h, w = image.shape[-2:]
    pad = max(abs(dy), abs(dx))
    if pad == 0:
        return image.clone()
    padded = F.pad(image[None], (pad, pad, pad, pad), mode="replicate")[0]
    return padded[:, pad - dy : pad - dy + h, pad - dx : pad - dx + w].clone()


def centred(image: torch.Tensor) -> torch.Tensor:
    """[C, H, W] with the bounding box of its content (pixels away from the border's median colour) moved to the
    middle; an image with no content is returned as it is."""
    border = torch.cat([image[:, 0], image[:, -1], image[:, :, 0], image[:, :, -1]], dim=1)  # [C, 2H + 2W]
    background = border.median(dim=1).values.view(-1, 1, 1)
    content = ((image - background).abs() > BACKGROUND_TOLERANCE).any(dim=0)
    if not content.any():
        return image.clone()
    rows, cols = content.any(dim=1).nonzero().flatten(), content.any(dim=0).nonzero().flatten()
    h, w = image.shape[-2:]
    dy = round((h - 1) / 2 - (int(rows[0]) + int(rows[-1])) / 2)
    dx = round((w - 1) / 2 - (int(cols[0]) + int(cols[-1])) / 2)
    return translate(image, dy, dx)


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
    if kind.startswith(IMAGENET_C):
        from diffclass.data.imagenet_c import corrupt_batch

        return corrupt_batch(images, ids, kind[len(IMAGENET_C) :], severity)
    size = images.shape[-1]
    if kind == "noise":
        noise = torch.stack(
            [torch.randn(images.shape[1:], generator=torch.Generator().manual_seed(_seed(i))) for i in ids]
        )
        return (images + NOISE_STD[severity] * noise).clamp(-1, 1)
    if kind == "shift":
        signs = [torch.randint(0, 2, (2,), generator=torch.Generator().manual_seed(_seed(i))) * 2 - 1 for i in ids]
        return torch.stack([translate(im, severity * int(s[0]), severity * int(s[1])) for im, s in zip(images, signs)])
    if kind == "centre":
        return torch.stack([centred(im) for im in images])
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
    name = f"{dataset.name}+{kind}" if kind == "centre" else f"{dataset.name}+{kind}:{severity}"
    return ImageDataset(name, images, dataset.labels, dataset.class_names, dataset.ids, dataset.groups)
