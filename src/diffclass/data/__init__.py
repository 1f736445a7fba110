"""Datasets as small in-memory tensors: images in [-1, 1], integer labels, class names, stable image ids."""

from diffclass.data import digits as _digits  # noqa: F401  (registers "digits")
from diffclass.data import emoji as _emoji  # noqa: F401  (registers "emoji")
from diffclass.data import glyphs as _glyphs  # noqa: F401  (registers "glyphs")
from diffclass.data.base import DATASETS, ImageDataset, dataset_names, load_dataset

__all__ = ["DATASETS", "ImageDataset", "dataset_names", "load_dataset"]
