"""The dataset record every evaluation and training run consumes, and the name registry in front of it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from diffclass.errors import DiffclassError
from diffclass.registry import Registry


@dataclass
class ImageDataset:
    """Images in [-1, 1] with their labels.

    `ids` name each image stably (the noise bank of an image is keyed by its id, so results do not depend on
    order, batch or shard). `groups` name what images share that a model fitted on some of them would know in
    the others (glyphs: the font style), so a held-out part is held out by whole groups.
    """

    name: str
    images: torch.Tensor  # [N, C, H, W], float32 in [-1, 1]
    labels: torch.Tensor  # [N], int64
    class_names: list[str]
    ids: list[str]
    groups: list[str] | None = None

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
            None if self.groups is None else [self.groups[i] for i in indices],
        )

    @property
    def hold_out_keys(self) -> list[str]:
        """Per image, what holding out goes by: its group, or its id where the data has no groups."""
        return self.groups if self.groups is not None else self.ids

    def held_out(self, fraction: float, seed: int = 0) -> list[str]:
        """The groups a model trained with `fraction` held out never sees (about that fraction of them, at least
        one), or, for data without groups, image ids drawn per class (stratified, so every class keeps images to
        tune on). Drawn by seed."""
        generator = torch.Generator().manual_seed(seed)
        if self.groups is not None:
            units = sorted(set(self.groups))
            pick = torch.randperm(len(units), generator=generator)
            return sorted(units[i] for i in pick[: max(1, round(fraction * len(units)))].tolist())
        chosen = []
        for label in sorted(set(self.labels.tolist())):
            ids = sorted(i for i, y in zip(self.ids, self.labels.tolist()) if y == label)
            pick = torch.randperm(len(ids), generator=generator)
            chosen += [ids[i] for i in pick[: round(fraction * len(ids))].tolist()]
        return sorted(chosen) or [min(self.ids)]

    def per_class(self, fraction: float, seed: int = 0) -> ImageDataset:
        """A seeded stratified subset: `fraction` of each class's images (at least one), as the DiDiCM paper's
        data-scarcity runs draw them."""
        generator = torch.Generator().manual_seed(seed)
        keep = []
        for label in sorted(set(self.labels.tolist())):
            members = (self.labels == label).nonzero().flatten()
            pick = torch.randperm(len(members), generator=generator)[: max(1, round(fraction * len(members)))]
            keep += members[pick].tolist()
        return self.subset(sorted(keep))

    def split_held_out(self, held_out: list[str]) -> tuple[ImageDataset, ImageDataset]:
        """(the images outside `held_out`, the images inside it), by group or by id as `held_out` names them."""
        keys = self.hold_out_keys
        inside = set(held_out)
        if not inside & set(keys):
            raise DiffclassError(f"none of the held-out names {held_out[:3]} is in {self.name}'s images")
        keep = [i for i, key in enumerate(keys) if key not in inside]
        return self.subset(keep), self.subset([i for i, key in enumerate(keys) if key in inside])


# name -> loader(split, image_size): the embedded datasets (real images come as folder:PATH or list:FILE.csv)
DATASETS = Registry("dataset")


def dataset_background(name: str | None) -> tuple[int, int, int] | None:
    """The colour around the content of an embedded dataset's images (what a transparent image is filled with
    before a model trained on it sees it); None where unknown."""
    return DATASETS.get(name).extra.get("background") if name in DATASETS else None


def dataset_names() -> list[str]:
    return sorted(DATASETS.names())


def load_dataset(
    name: str,
    split: str = "test",
    image_size: int | None = None,
    channels: int | None = None,
    class_names: list[str] | None = None,
) -> ImageDataset:
    """An embedded dataset by name (`digits`, `glyphs`) and split, or a user's own images, which have no split:
    `folder:PATH` (one sub-folder per class) or `list:FILE.csv` (path,label), matched to `class_names` (a model's)
    and converted to `image_size` and `channels`; what is not given comes from the images themselves (class
    names from the sub-folders or labels, sorted; the most common size; colour if any image has it)."""
    if name.startswith(("folder:", "list:")):
        from diffclass.data.folders import load_folder, load_list, survey

        if image_size is None or channels is None or class_names is None:
            found = survey(name, image_size)
            class_names = class_names or found.class_names
            image_size, channels = image_size or found.image_size, channels or found.channels
        kind, path = name.split(":", 1)
        return (load_folder if kind == "folder" else load_list)(path, image_size, channels, class_names)
    if split not in ("train", "test"):
        raise DiffclassError(f"unknown split {split!r}; choose 'train' or 'test'")
    if name not in DATASETS:
        raise DiffclassError(
            f"unknown dataset {name!r}; known: {', '.join(dataset_names())}, folder:PATH, list:FILE.csv"
        )
    return DATASETS.get(name).build(split=split, image_size=image_size)
