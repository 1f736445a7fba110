"""Class-name and prompt files for zero-shot models.

`--classes FILE`: one class name per line (.txt) or a JSON list. `--prompts FILE`: a JSON object
{class: [prompt, ...]} or CSV rows `class,prompt` (several rows per class ensemble them). Templates hold `{}`
where the class (or tree node) name goes.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from diffclass.errors import DiffclassError

DEFAULT_TEMPLATES = {
    "imagenet": ["a photo of a {}."],
    "cifar10": ["a blurry photo of a {}."],
    "cifar100": ["a blurry photo of a {}."],
}


def shipped_class_names(name: str) -> list[str] | None:
    """Class names in the standard order for `imagenet`, `cifar100`, `cifar10` (the leaves of the shipped trees)."""
    if name not in DEFAULT_TEMPLATES:
        return None
    from diffclass.hierarchy import load_tree

    tree = load_tree(name)
    return [tree.nodes[tree.leaf_of[c]].name for c in range(tree.num_classes)]


def read_classes(path: str | Path) -> list[str]:
    """A shipped list by name (imagenet, cifar100, cifar10), a .txt file (one name per line) or a JSON list."""
    shipped = shipped_class_names(str(path))
    if shipped is not None:
        return shipped
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DiffclassError(f"{path}: cannot read the class list ({exc.strerror or exc})") from None
    if path.suffix == ".json":
        try:
            names = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DiffclassError(f"{path}: not valid JSON ({exc})") from None
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise DiffclassError(f"{path}: expected a non-empty list of class names")
    if len(set(names)) != len(names):
        raise DiffclassError(f"{path}: class names repeat")
    return names


def read_prompts(path: str | Path) -> dict[str, list[str]]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DiffclassError(f"{path}: cannot read the prompts ({exc.strerror or exc})") from None
    prompts: dict[str, list[str]] = {}
    if path.suffix == ".json":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DiffclassError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise DiffclassError(f"{path}: expected an object {{class: [prompts]}}")
        for name, value in raw.items():
            prompts[name] = [value] if isinstance(value, str) else list(value)
    else:
        for number, row in enumerate(csv.reader(text.splitlines()), start=1):
            if len(row) != 2:
                raise DiffclassError(f"{path}: row {number} should be class,prompt")
            prompts.setdefault(row[0].strip(), []).append(row[1].strip())
    return prompts


def templates_for(prompt: list[str] | None, prompts_file: str | None, names: str | None):
    """--prompts FILE wins, then --prompt templates, then the shipped default for the class list or dataset
    (`imagenet`: "a photo of a {}.", CIFAR: "a blurry photo of a {}."), then "a photo of a {}."."""
    if prompts_file:
        return read_prompts(prompts_file)
    if prompt:
        return list(prompt)
    return DEFAULT_TEMPLATES.get(names or "", ["a photo of a {}."])
