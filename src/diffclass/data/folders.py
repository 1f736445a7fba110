"""Real images from disk: `folder:PATH` (one sub-folder per class) and `list:FILE.csv` (path,label rows).

Labels are matched to the model's class names, so the folder order never matters. A folder may carry a
`groups.csv` (rows `class/file.png,group`: which images belong together, a session, a photographer, a scanner):
holding out for tuning then keeps whole groups out of training, as the shipped benchmarks hold out styles.
Unreadable files are reported one line each and skipped, with a count; a class folder without images is reported,
never silently ignored.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from diffclass.data.base import ImageDataset
from diffclass.data.images import IMAGE_SUFFIXES, load_image
from diffclass.errors import DiffclassError
from diffclass.hierarchy import load_tree, shipped_class_names

logger = logging.getLogger(__name__)


def is_wnid(name: str) -> bool:
    """An ImageNet WordNet id, the folder names of ImageNet's own layout: `n` and eight digits."""
    return len(name) == 9 and name.startswith("n") and name[1:].isdigit()


def _label_index(name: str, class_names: list[str], source: str) -> int:
    if name not in class_names and len(class_names) == 1000 and is_wnid(name):  # the shipped tree knows its index
        node = load_tree("imagenet", 1000).nodes.get(name)
        if node is not None and node.is_leaf:
            return node.class_index
    if name not in class_names:
        shown = ", ".join(class_names[:8]) + ("..." if len(class_names) > 8 else "")
        raise DiffclassError(f"{source}: label {name!r} is not a class of the model ({shown})")
    return class_names.index(name)


def _load_all(
    items: list[tuple[Path, int]], root: Path, name: str, image_size: int, channels: int, class_names: list[str]
) -> ImageDataset:
    """The dataset is named by its absolute path (what a model trained on it records, to find it again); its
    images by the short name and their path inside it, so ids survive moving the folder."""
    tensors, labels, ids, bad = [], [], [], 0
    for path, label in items:
        try:
            tensors.append(load_image(path, image_size, channels).tensor)
        except DiffclassError as exc:
            logger.error(str(exc))
            bad += 1
            continue
        labels.append(label)
        ids.append(f"{name}/{path.relative_to(root) if path.is_relative_to(root) else path}")
    if bad:
        logger.warning(f"skipped {bad} unreadable image(s) of {len(items)}")
    if not tensors:
        raise DiffclassError(f"{name}: no readable images")
    kind = name.split(":", 1)[0]
    source = root if kind == "folder" else root / name.split(":", 1)[1]
    full = f"{kind}:{source.resolve()}"
    groups = _groups(root / GROUPS_FILE, name, ids) if kind == "folder" and (root / GROUPS_FILE).exists() else None
    return ImageDataset(full, torch.stack(tensors), torch.tensor(labels), list(class_names), ids, groups)


GROUPS_FILE = "groups.csv"


def _groups(file: Path, name: str, ids: list[str]) -> list[str]:
    """Each image's group from a folder's groups.csv (`class/file,group` rows); every image must have one."""
    rows = _rows(file, f"{name}/{GROUPS_FILE}")
    of = {f"{name}/{path.relative_to(file.parent).as_posix()}": group for path, group in rows}
    missing = [i for i in ids if i not in of]
    if missing:
        raise DiffclassError(
            f"{file}: {len(missing)} image(s) have no group, e.g. {missing[0].split('/', 1)[1]}; give every image one"
        )
    return [of[i] for i in ids]


def folder_class_names(path: str) -> list[str]:
    """Class names of a zero-shot evaluation: the sub-folder names (ImageNet wnid folders: ImageNet's classes)."""
    root = Path(path)
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not names:
        raise DiffclassError(f"folder:{path}: expected one sub-folder per class, found none")
    if all(is_wnid(n) for n in names):
        return shipped_class_names("imagenet")
    return names


@dataclass
class Survey:
    """What a folder of a user's own images implies for a model trained on it."""

    class_names: list[str]
    image_size: int
    channels: int
    images: int


COLOUR_MODES = {"RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"}


_SAID: set[str] = set()  # survey lines already said in this process


def survey(name: str, image_size: int | None = None) -> Survey:
    """Class names (sorted sub-folder names, or a list's labels), the image size (the most common; refused when no
    size holds most of the images, so nothing is resized on a guess) and channels (3 if any image has a colour
    mode), read from the file headers only; refuses fewer than two classes and a class without images. A given
    `image_size` is kept."""
    from PIL import Image

    kind, path = name.split(":", 1)
    items = _folder_items(Path(path), name) if kind == "folder" else _rows(Path(path), name)
    by_class = Counter(label for _, label in items)
    if len(by_class) < 2:
        raise DiffclassError(f"{name}: a classifier needs at least two classes, found {len(by_class)}")
    sizes, colour = Counter(), False
    for file, _ in items:
        try:
            with Image.open(file) as image:
                sizes[image.size] += 1
                colour = colour or image.mode in COLOUR_MODES
        except (OSError, SyntaxError, ValueError):
            continue  # reported when the images are loaded
    if not sizes:
        raise DiffclassError(f"{name}: no readable images")
    (width, height), count = sizes.most_common(1)[0]
    total = sum(sizes.values())
    if image_size is None and count * 2 <= total:
        shown = ", ".join(f"{w}x{h} ({n})" for (w, h), n in sizes.most_common(3))
        raise DiffclassError(f"{name}: the images come in {len(sizes)} sizes ({shown}, ...); pass --image-size")
    size = image_size or max(width, height)
    why = "as asked" if image_size else "the size of all of them" if count == total else f"the size of {count} of them"
    others = "" if count == total and not image_size else "; the others are converted as classify converts them"
    line = (
        f"{name}: {len(by_class)} classes, {total} images, {'colour' if colour else 'grey'} at {size}x{size} "
        f"({why}{others})"
    )
    if line not in _SAID:  # a command that plans from the survey and then loads the images says it once
        _SAID.add(line)
        logger.info(line)
    return Survey(sorted(by_class), size, 3 if colour else 1, total)


def _folder_items(root: Path, name: str) -> list[tuple[Path, str]]:
    if not root.is_dir():
        raise DiffclassError(f"{name}: no such folder")
    items = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p for p in class_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DiffclassError(f"{name}: class folder {class_dir.name!r} has no images")
        items += [(f, class_dir.name) for f in files]
    if not items:
        raise DiffclassError(f"{name}: expected one sub-folder of images per class, found none")
    return items


def load_folder(path: str, image_size: int, channels: int, class_names: list[str]) -> ImageDataset:
    root = Path(path)
    if not root.is_dir():
        raise DiffclassError(f"folder:{path}: no such folder")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    if not class_dirs:
        raise DiffclassError(f"folder:{path}: expected one sub-folder per class, found none")
    labels = [_label_index(d.name, class_names, f"folder:{path}") for d in class_dirs]  # every name first
    items = []
    for class_dir, label in zip(class_dirs, labels):
        files = sorted(p for p in class_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            logger.error(f"{class_dir}: class folder has no images")
        items += [(f, label) for f in files]
    return _load_all(items, root, f"folder:{root.name}", image_size, channels, class_names)


def _rows(file: Path, name: str) -> list[tuple[Path, str]]:
    """A list file's (image path, label) rows, or a groups file's (image path, group); paths relative to the file's
    folder."""
    if file.exists() and not file.is_file():
        raise DiffclassError(f"{name}: not a regular file")
    try:
        rows = list(csv.reader(file.read_text(encoding="utf-8").splitlines()))
    except FileNotFoundError:
        raise DiffclassError(f"{name}: no such file") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DiffclassError(f"{name}: not a CSV file ({exc})") from None
    if rows and [c.strip().lower() for c in rows[0]] in (["path", "label"], ["path", "group"]):
        rows = rows[1:]
    items = []
    for number, row in enumerate(rows, start=1):
        if len(row) != 2:
            raise DiffclassError(f"{name}: row {number} should be two cells (path and a name), got {row}")
        image = Path(row[0].strip())
        items.append((image if image.is_absolute() else file.parent / image, row[1].strip()))
    return items


def load_list(path: str, image_size: int, channels: int, class_names: list[str]) -> ImageDataset:
    file = Path(path)
    rows = _rows(file, f"list:{path}")
    items = [
        (image, _label_index(label, class_names, f"list:{path} row {number}"))
        for number, (image, label) in enumerate(rows, start=1)
    ]
    return _load_all(items, file.parent, f"list:{file.name}", image_size, channels, class_names)
