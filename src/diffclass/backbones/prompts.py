"""Zero-shot models' classes are prompts: the class-name and prompt files, and what every text-conditioned backbone
shares (prompts per class or tree node, embeddings computed once per key).

`--classes FILE`: one class name per line (.txt) or a JSON list. `--prompts FILE`: a JSON object
{class: [prompt, ...]} or CSV rows `class,prompt` (several rows per class ensemble them). Templates hold `{}`
where the class (or tree node) name goes.
"""

from __future__ import annotations

import csv
from collections.abc import Hashable, Sequence
from pathlib import Path

import torch

from diffclass.backbones.base import BackboneDefaults, adopt_saved, node_mode, saved_info
from diffclass.errors import DiffclassError
from diffclass.files import read_json, read_text
from diffclass.hierarchy import LabelTree, shipped_class_names
from diffclass.hub import ModelInfo

ONE_TEMPLATE = ("a photo of a {}.",)

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
    if path.suffix == ".json":
        names = read_json(path, "class list")
    else:
        names = [line.strip() for line in read_text(path, "class list").splitlines() if line.strip()]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise DiffclassError(f"{path}: expected a non-empty list of class names")
    if len(set(names)) != len(names):
        raise DiffclassError(f"{path}: class names repeat")
    return names


def read_prompts(path: str | Path) -> dict[str, list[str]]:
    path = Path(path)
    prompts: dict[str, list[str]] = {}
    if path.suffix == ".json":
        raw = read_json(path, "prompts file")
        if not isinstance(raw, dict) or not all(
            isinstance(v, str) or isinstance(v, list) and all(isinstance(p, str) for p in v) for v in raw.values()
        ):
            raise DiffclassError(f"{path}: expected an object {{class: prompt or [prompts]}}")
        for name, value in raw.items():
            prompts[name] = [value] if isinstance(value, str) else list(value)
    else:
        for number, row in enumerate(csv.reader(read_text(path, "prompts file").splitlines()), start=1):
            if len(row) != 2:
                raise DiffclassError(f"{path}: row {number} should be class,prompt")
            prompts.setdefault(row[0].strip(), []).append(row[1].strip())
    return prompts


def load_prompted(cls, source, class_names, templates, device, dtype, info=None):
    """A text-conditioned backbone with class names and prompts as given, else those a diffclass-saved folder
    stores in its diffclass.json (`info`, when the caller has read it; with its tree and its tuning)."""
    info = info or saved_info(source)
    names = class_names or (info.class_names if info else None)
    if not names:
        raise DiffclassError("a zero-shot model needs class names: pass --classes FILE or a folder: dataset")
    templates = templates or (info.templates if info else None) or ONE_TEMPLATE
    return adopt_saved(cls.from_pretrained(source, names, templates, device, dtype), info, class_names)


class PromptConditioned(BackboneDefaults):
    """Mixin of text-conditioned backbones: a class (or tree node) is its prompts, embedded once by `_embed`
    and cached; internal nodes are scored with their own names in the templates."""

    info: ModelInfo
    templates: Sequence[str] | dict[str, Sequence[str]]

    def _start_prompts(self, templates) -> None:
        self.templates = templates
        self._tree: LabelTree | None = None
        self._cache: dict[Hashable, torch.Tensor] = {}
        self.text_calls = 0  # keys embedded (each once)

    @staticmethod
    def stored_templates(templates) -> list | dict:
        return {k: list(v) for k, v in templates.items()} if isinstance(templates, dict) else list(templates)

    node_modes = ("prompt",)

    def use_tree(self, tree: LabelTree, mode: str | None = None, images=None, labels=None, **invert_options) -> str:
        """Internal nodes are scored with their own names in the templates (the `prompt` conditioning)."""
        mode = node_mode(self, mode)
        self._tree = tree
        self.info.tree = tree.to_dict()
        return mode

    def key_name(self, key: Hashable) -> str:
        if isinstance(key, int):
            return self.info.class_names[key]
        if self._tree is not None and key in self._tree.nodes:
            return self._tree.prompt(key)
        raise DiffclassError(f"no prompt for {key!r}")

    def prompts(self, key: Hashable) -> list[str]:
        name = self.key_name(key)
        if isinstance(self.templates, dict):
            if name not in self.templates:
                raise DiffclassError(f"the prompts file has no prompt for {name!r}")
            templates = self.templates[name]
        else:
            templates = self.templates
        return [t.format(name) if "{}" in t else t for t in templates]

    def _embed(self, key: Hashable) -> torch.Tensor: ...

    def condition(self, keys: Sequence[Hashable]) -> torch.Tensor:
        for key in keys:
            if key not in self._cache:
                self._cache[key] = self._embed(key)
                self.text_calls += 1
        return torch.stack([self._cache[k] for k in keys])
