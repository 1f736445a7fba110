"""Where an image's content sits, and where each class's training images put theirs.

A class-conditional diffusion model learns the place with the shape: a glyph on its baseline, an `x` lower than an
`X`. `registered` (`diffclass.strategies.registered`) reads each class with the image's content moved to that
class's anchor, the mean ink centre of its training images, so a crop that sits elsewhere is scored where the class
expects it. The ink centre is the centre of mass of what stands out from the background by more than half the
image's contrast: zero-mean noise moves it by a fraction of a pixel, and a whole-pixel move of the image moves it by
exactly that move.
"""

from __future__ import annotations

import torch

from diffclass.errors import DiffclassError

INK_QUANTILE = 0.98  # the image's contrast: this quantile of each pixel's distance from the background


def ink_centres(images: torch.Tensor) -> torch.Tensor:
    """[N, 2] (y, x) in pixels of [N, C, H, W] images: the centre of mass of each image's ink, the pixels whose
    distance from the background (the median of the border) is over half the image's contrast; the middle of the
    image where nothing stands out."""
    images = images.float()
    border = torch.cat([images[..., 0, :], images[..., -1, :], images[..., :, 0], images[..., :, -1]], dim=-1)
    background = border.median(dim=-1).values[..., None, None]  # [N, C, 1, 1]
    distance = (images - background).abs().mean(dim=1)  # [N, H, W]
    contrast = distance.flatten(1).quantile(INK_QUANTILE, dim=1)[:, None, None]
    ink = (distance - contrast / 2).clamp(min=0)
    mass = ink.sum(dim=(1, 2))
    h, w = images.shape[-2:]
    ys, xs = torch.arange(h, dtype=ink.dtype), torch.arange(w, dtype=ink.dtype)
    centre = torch.stack([(ink.sum(2) * ys).sum(1), (ink.sum(1) * xs).sum(1)], dim=1) / mass.clamp(min=1e-12)[:, None]
    middle = torch.tensor([(h - 1) / 2, (w - 1) / 2], dtype=ink.dtype)
    return torch.where((mass > 0)[:, None], centre, middle)


def fit_anchors(images: torch.Tensor, labels: list[int], num_classes: int) -> list[list[float]]:
    """Per class, the mean ink centre (y, x) of its images, rounded to a hundredth of a pixel; every class needs
    at least one image."""
    centres = ink_centres(images)
    labels_t = torch.as_tensor(labels)
    missing = [c for c in range(num_classes) if not (labels_t == c).any()]
    if missing:
        raise DiffclassError(f"anchors need images of every class; none of class {missing[0]} ({len(missing)} missing)")
    return [[round(float(v), 2) for v in centres[labels_t == c].mean(0)] for c in range(num_classes)]


def registration_offset(anchor: tuple[float, float], centre: torch.Tensor, limit: int) -> tuple[int, int]:
    """The whole-pixel move (dy, dx), at most `limit` each way, that brings an ink centre to an anchor."""
    return tuple(max(-limit, min(limit, round(a - float(c)))) for a, c in zip(anchor, centre))  # type: ignore[return-value]
