"""`emoji`: 227 concrete-object emoji drawn independently by ten vendor styles, 32x32 RGB over mid grey.

One concept, many artists: a classifier trained on seven vendors' drawings is tested on three it never saw —
openmoji (a vendor absent from training) and two line-art styles of trained vendors (fluent high contrast,
emojione monotone). The label tree is Unicode's: group > subgroup > emoji (5 groups, 40 subgroups).

The array ships in the package (`assets/datasets/emoji/`, CC-BY-SA-4.0, see its NOTICE); `scripts/build_emoji.py`
rebuilds it from pinned npm packages of the artwork.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from diffclass.data.base import DATASETS, ImageDataset
from diffclass.errors import DiffclassError
from diffclass.hierarchy.builders import TREE_BUILDERS
from diffclass.hierarchy.tree import LabelTree, TreeNode

EMOJI_DIR = Path(__file__).resolve().parent.parent / "assets" / "datasets" / "emoji"
EMOJI_ARRAY = EMOJI_DIR / "emoji.npz"
EMOJI_CLASSES = EMOJI_DIR / "classes.tsv"
EMOJI_SIZE = 32
# sha256 of the shipped uint8 array [styles, classes, 32, 32, 3]; scripts/build_emoji.py reproduces it
EMOJI_DIGEST = "e3258fefb481073de0db9e9cf10256778e5fcbc2898851f23aca2cdab158bef3"
TRAIN_STYLES = ("twemoji", "noto", "noto-v1", "fluent-flat", "fluent-color", "emojione", "emojione-v1")
TEST_STYLES = ("openmoji", "fluent-hc", "emojione-mono")
STYLES = TRAIN_STYLES + TEST_STYLES
LINE_ART_STYLES = ("fluent-hc", "emojione-mono")
ORDER_SEED = 0


@dataclass(frozen=True)
class EmojiClass:
    name: str  # a slug of the Unicode name
    char: str
    group: str  # Unicode group, e.g. "Animals & Nature"
    subgroup: str  # Unicode subgroup, e.g. "animal-mammal"


@lru_cache(maxsize=1)
def emoji_classes() -> tuple[EmojiClass, ...]:
    with open(EMOJI_CLASSES, newline="", encoding="utf-8") as file:
        return tuple(
            EmojiClass(row["class"], row["char"], row["group"], row["subgroup"])
            for row in csv.DictReader(file, delimiter="\t")
        )


@lru_cache(maxsize=1)
def emoji_array() -> np.ndarray:
    """[styles, classes, 32, 32, 3] uint8, checked against the digest it shipped with."""
    try:
        with np.load(EMOJI_ARRAY, allow_pickle=False) as data:
            images = data["images"]
    except (OSError, KeyError, ValueError) as exc:
        raise DiffclassError(f"{EMOJI_ARRAY}: cannot read the emoji array ({exc}); reinstall diffclass") from None
    if hashlib.sha256(images.tobytes()).hexdigest() != EMOJI_DIGEST:
        raise DiffclassError(f"{EMOJI_ARRAY}: content differs from the shipped digest; reinstall diffclass")
    return images


@DATASETS.register(
    "emoji", background=(128, 128, 128), help="227 emoji of 10 vendor styles, 32x32 RGB; test styles unseen in training"
)
def load_emoji_dataset(split: str = "test", image_size: int | None = None) -> ImageDataset:
    """Images come in a fixed shuffled order, so `--limit N` takes a sample across styles and classes; the group
    of an image is its style, so held-out tuning holds out whole vendors."""
    styles = TRAIN_STYLES if split == "train" else TEST_STYLES
    array = emoji_array()
    classes = emoji_classes()
    style_index = [STYLES.index(s) for s in styles]
    pixels = torch.from_numpy(array[style_index]).float().flatten(0, 1).permute(0, 3, 1, 2) / 127.5 - 1
    labels = torch.arange(len(classes)).repeat(len(styles))
    groups = [s for s in styles for _ in classes]
    digest = EMOJI_DIGEST[:8]
    ids = [f"emoji-{digest}/{s}/{c.name}" for s in styles for c in classes]
    if image_size and image_size != EMOJI_SIZE:
        pixels = F.interpolate(
            pixels, size=(image_size, image_size), mode="area" if image_size < EMOJI_SIZE else "bilinear"
        )
    order = np.random.default_rng(ORDER_SEED).permutation(len(labels)).tolist()
    return ImageDataset(
        "emoji",
        pixels[order].clamp(-1, 1),
        labels[order],
        [c.name for c in classes],
        [ids[i] for i in order],
        groups=[groups[i] for i in order],
    )


@TREE_BUILDERS.register("emoji", help="Unicode group -> subgroup -> emoji of the emoji dataset")
def emoji_tree() -> LabelTree:
    """Unicode's own hierarchy: 5 groups, 40 subgroups, 227 emoji."""
    classes = emoji_classes()
    groups: dict[str, dict[str, list[int]]] = {}
    for index, emoji in enumerate(classes):
        groups.setdefault(emoji.group, {}).setdefault(emoji.subgroup, []).append(index)
    nodes = [TreeNode("root", "emoji", children=list(groups))]
    for group, subgroups in groups.items():
        nodes.append(TreeNode(group, group, children=[f"{group}/{sub}" for sub in subgroups]))
        for sub, members in subgroups.items():
            nodes.append(
                TreeNode(f"{group}/{sub}", sub, children=[f"{group}/{sub}/{classes[i].name}" for i in members])
            )
            nodes += [TreeNode(f"{group}/{sub}/{classes[i].name}", classes[i].name, class_index=i) for i in members]
    return LabelTree(nodes, len(classes))
