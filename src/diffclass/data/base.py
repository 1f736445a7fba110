"""The dataset record every evaluation and training run consumes, and the name registry in front of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from diffclass.errors import DiffclassError


@dataclass
class ImageDataset:
    """Images in [-1, 1] with their labels.

    `ids` name each image stably (the noise bank of an image is keyed by its id, so results do not depend on
    order, batch or shard).
    """

    name: str
    images: torch.Tensor  # [N, C, H, W], float32 in [-1, 1]
    labels: torch.Tensor  # [N], int64
    class_names: list[str]
    ids: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices) -> ImageDataset:
        indices = list(indices)
        return ImageDataset(
            self.name,
            self.images[indices],
            self.labels[indices],
            self.class_names,
            [self.ids[i] for i in indices],
        )


_LOADERS: dict[str, Callable[..., ImageDataset]] = {}


def register_dataset(name: str):
    def wrap(fn):
        _LOADERS[name] = fn
        return fn

    return wrap


def dataset_names() -> list[str]:
    return sorted(_LOADERS)


def load_dataset(name: str, split: str = "test", image_size: int | None = None) -> ImageDataset:
    """Load a dataset by name (`digits`), for a split (`train` or `test`), resized to `image_size`."""
    if split not in ("train", "test"):
        raise DiffclassError(f"unknown split {split!r}; choose 'train' or 'test'")
    if name not in _LOADERS:
        raise DiffclassError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}")
    return _LOADERS[name](split=split, image_size=image_size)
