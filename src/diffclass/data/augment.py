"""Training-time augmentation of image batches: random affine (shift, scale, rotation), colour jitter, greyscale,
Gaussian noise (the augmented baseline a robustness comparison needs: a classifier that has seen noise), and
RandAugment (Cubuk et al.: two operations of a fixed magnitude, drawn per group of 8 images; kornia's tensor
implementation), the standard general-purpose recipe.

Few-shot data (emoji: seven drawings per class) needs it, and so does a model that must not learn where an object
sits. Every draw comes from the caller's generator, so a step's batch is a function of (seed, step) and a resumed
run replays exactly. The border is filled by repeating the edge pixels: the background, on every embedded dataset.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F

from diffclass.errors import DiffclassError


@dataclass(frozen=True)
class Augmentation:
    shift: float = 0.0  # largest translation, as a fraction of the image side
    scale: float = 0.0  # largest relative change of size (0.1: 0.9x to 1.1x)
    rotate: float = 0.0  # largest rotation in degrees
    colour: float = 0.0  # largest relative change of brightness, contrast and saturation
    grey: float = 0.0  # chance of an image being turned grey (kept in its channels)
    noise: float = 0.0  # largest Gaussian noise std in [-1, 1] units; each image draws its std from [0, noise]
    randaugment: float = 0.0  # RandAugment's magnitude (kornia's scale, 0-30; 10 is its default), two operations

    @classmethod
    def parse(cls, spec: str) -> Augmentation:
        """`none`, or `key=value,…` over shift, scale, rotate, colour, grey, noise, randaugment (e.g.
        `shift=0.1,noise=0.3`, `randaugment=10`)."""
        if spec.strip() in ("", "none"):
            return cls()
        names = [f.name for f in fields(cls)]
        values = {}
        for part in spec.split(","):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or key not in names:
                raise DiffclassError(f"--augment: {part.strip()!r} is not KEY=VALUE with KEY one of {', '.join(names)}")
            try:
                values[key] = float(value)
            except ValueError:
                raise DiffclassError(f"--augment: {key}={value.strip()!r} is not a number") from None
            if not math.isfinite(values[key]) or values[key] < 0:
                raise DiffclassError(f"--augment: {key} must be a finite number >= 0, got {value.strip()}")
        augmentation = cls(**values)
        if augmentation.grey > 1 or augmentation.scale >= 1 or augmentation.shift > 0.5:
            raise DiffclassError("--augment: grey is a chance (<= 1), scale < 1 and shift <= 0.5 of the side")
        if augmentation.randaugment > 30:
            raise DiffclassError("--augment: randaugment is a magnitude in [0, 30]")
        return augmentation

    @property
    def spec(self) -> str:
        """The canonical spec (what a model's training record keeps); `none` when nothing is on."""
        on = [f"{k}={v:g}" for k, v in asdict(self).items() if v]
        return ",".join(on) or "none"

    def __bool__(self) -> bool:
        return any(asdict(self).values())

    def __call__(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """[B, C, H, W] in [-1, 1] -> the same shape, each image transformed by its own draws from `gen`."""
        if not self:
            return images
        n = len(images)
        if self.randaugment:  # drawn only when on, so every other recipe replays as before
            images = _randaugment(images, self.randaugment, int(torch.randint(2**62, (1,), generator=gen)))
        u = torch.rand(n, 7, generator=gen).to(images.device) * 2 - 1  # seven draws in [-1, 1] per image
        grey_draw = torch.rand(n, generator=gen).to(images.device)
        if self.shift or self.scale or self.rotate:
            angle = torch.deg2rad(self.rotate * u[:, 0])
            zoom = 1 + self.scale * u[:, 1]
            cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
            # affine_grid maps output to input coordinates in [-1, 1]: a shift of s sides is 2s in those units
            theta = torch.stack(
                [
                    torch.stack([cos, -sin, 2 * self.shift * u[:, 2]], 1),
                    torch.stack([sin, cos, 2 * self.shift * u[:, 3]], 1),
                ],
                1,
            )
            grid = F.affine_grid(theta, list(images.shape), align_corners=False)
            images = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if self.colour:
            x = (images + 1) / 2
            x = x * (1 + self.colour * u[:, 4]).view(-1, 1, 1, 1)  # brightness
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * (1 + self.colour * u[:, 5]).view(-1, 1, 1, 1) + mean  # contrast
            if x.shape[1] == 3:
                grey = x.mean(dim=1, keepdim=True)
                x = (x - grey) * (1 + self.colour * u[:, 6]).view(-1, 1, 1, 1) + grey  # saturation
            images = x.clamp(0, 1) * 2 - 1
        if self.grey and images.shape[1] == 3:
            luma = (images * torch.tensor([0.299, 0.587, 0.114], device=images.device).view(1, 3, 1, 1)).sum(1, True)
            images = torch.where((grey_draw < self.grey).view(-1, 1, 1, 1), luma.expand_as(images), images)
        if self.noise:  # drawn only when on, so every other recipe replays as before
            std = self.noise * torch.rand(n, generator=gen).to(images.device)
            noise = torch.randn(images.shape, generator=gen).to(images.device)
            images = (images + std.view(-1, 1, 1, 1) * noise).clamp(-1, 1)
        return images


RANDAUGMENT_GROUP = 8  # images sharing one draw of operations (one draw per image is 5x slower)


def _randaugment(images: torch.Tensor, magnitude: float, seed: int) -> torch.Tensor:
    """kornia's RandAugment (2 operations drawn per group of images, at `magnitude`) on [-1, 1] images; kornia
    draws from torch's global stream, so it runs under its own seed (from the caller's generator), restored after."""
    try:
        from kornia.augmentation.auto import RandAugment
    except ImportError:
        raise DiffclassError('--augment randaugment needs kornia: pip install "diffclass[robustness]"') from None
    grey = images.shape[1] == 1  # its colour operations take RGB: a grey image goes through as three equal channels
    x = (images.expand(-1, 3, -1, -1) if grey else images) * 0.5 + 0.5
    policy = RandAugment(n=2, m=int(round(magnitude)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = torch.cat([policy(part) for part in x.split(RANDAUGMENT_GROUP)])  # operations are drawn per call
    out = out.mean(dim=1, keepdim=True) if grey else out
    return out.clamp(0, 1) * 2 - 1
