"""The ImageNet-C corruptions (Hendrycks & Dietterich, 2019) through the `imagecorruptions` package: the 15 test
corruptions and the 4 held-out ones, severities 1-5, as `--corruption imagenet-c:NAME:SEVERITY`.

Made deterministic: the functions draw from NumPy's global generator (and two take a `seed`), so each image is
corrupted under a seed derived from its id, the corruption and the severity, with the global state restored
after; every run sees the same corrupted image. The functions want uint8 images of at least 32x32 with three
channels: a grey image is repeated over three channels and brought back by its luminance, and a smaller image
(16x16 glyphs and digits) is enlarged by a whole factor (each pixel repeated k x k times, k = 2 for 16 px),
corrupted there and averaged back over the same blocks. Enlarging and averaging back is exactly the identity, so
a corruption adds nothing but itself; what it does is what it does at 32 px seen at the model's resolution
(per-pixel noise, averaged over 2 x 2 blocks, comes back with half its standard deviation).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F

from diffclass.errors import DiffclassError

TEST = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
HELD_OUT = ("speckle_noise", "gaussian_blur", "spatter", "saturate")  # ImageNet-C's validation corruptions
NAMES = TEST + HELD_OUT
MIN_SIDE = 32  # the package's smallest input
SEEDED = ("impulse_noise", "glass_blur")  # the two that take a seed argument besides the global generator


def corruption_module():
    try:
        import imagecorruptions
    except ImportError:
        raise DiffclassError(
            "the ImageNet-C corruptions need the imagecorruptions package: pip install 'diffclass[robustness]'"
        ) from None
    return imagecorruptions


def check_name(name: str) -> None:
    if name not in NAMES:
        raise DiffclassError(f"unknown ImageNet-C corruption {name!r}; known: {', '.join(NAMES)}")


def seed_of(image_id: str, name: str, severity: int) -> int:
    text = f"imagenet-c\x00{name}\x00{severity}\x00{image_id}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def corrupt_one(image: torch.Tensor, image_id: str, name: str, severity: int) -> torch.Tensor:
    """One [C, H, W] image in [-1, 1] under corruption `name` at `severity` (1-5), the same for the same id."""
    package = corruption_module()
    channels, height, width = image.shape
    factor = -(-MIN_SIDE // min(height, width))  # the whole factor that brings the short side to 32 or more
    x = image[None].repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)
    pixels = ((x[0] + 1) * 127.5).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
    if channels == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    seed = seed_of(image_id, name, severity)
    extra = dict(seed=seed) if name in SEEDED else {}
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        out = package.corrupt(pixels, severity=severity, corruption_name=name, **extra)
    finally:
        np.random.set_state(state)
    y = torch.from_numpy(np.asarray(out, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1
    if channels == 1:
        y = (0.299 * y[0] + 0.587 * y[1] + 0.114 * y[2])[None]
    if factor > 1:
        y = F.avg_pool2d(y[None], factor)[0]
    return y.clamp(-1, 1)


def corrupt_batch(images: torch.Tensor, ids: list[str], name: str, severity: int) -> torch.Tensor:
    check_name(name)
    if not 1 <= severity <= 5:
        raise DiffclassError(f"ImageNet-C severities are 1-5, got {severity}")
    return torch.stack([corrupt_one(image, i, name, severity) for image, i in zip(images, ids)])
