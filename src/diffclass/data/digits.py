"""scikit-learn's real 8x8 handwritten digits (1,797 images, 10 classes), upsampled for a small UNet.

The split is fixed and seeded (stratified, 400 test images), so every number quoted for `digits` is on
the same images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from diffclass.data.base import DATASETS, ImageDataset

DIGITS_IMAGE_SIZE = 16
DIGITS_TEST_SIZE = 400
DIGITS_SPLIT_SEED = 0


@DATASETS.register(
    "digits", background=(0, 0, 0), help="scikit-learn's 8x8 handwritten digits, upsampled to 16x16 (10 classes)"
)
def load_digits_dataset(split: str = "test", image_size: int | None = None) -> ImageDataset:
    bunch = load_digits()
    index = list(range(len(bunch.target)))
    train_idx, test_idx = train_test_split(
        index, test_size=DIGITS_TEST_SIZE, random_state=DIGITS_SPLIT_SEED, stratify=bunch.target
    )
    chosen = sorted(train_idx if split == "train" else test_idx)
    pixels = torch.tensor(bunch.images[chosen], dtype=torch.float32).unsqueeze(1) / 16.0  # [N,1,8,8] in [0,1]
    size = image_size or DIGITS_IMAGE_SIZE
    pixels = F.interpolate(pixels, size=(size, size), mode="bilinear", align_corners=False)
    return ImageDataset(
        name="digits",
        images=(pixels * 2 - 1).clamp(-1, 1),
        labels=torch.tensor(bunch.target[chosen], dtype=torch.long),
        class_names=[str(d) for d in range(10)],
        ids=[f"digits/{i}" for i in chosen],
    )
