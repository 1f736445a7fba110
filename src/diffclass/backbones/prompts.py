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
from diffclass.hierarchy import shipped_class_names

DEFAULT_TEMPLATES = {
    "imagenet": ["a photo of a {}."],
    "cifar10": ["a blurry photo of a {}."],
    "cifar100": ["a blurry photo of a {}."],
}


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
