"""Backbones: adapters that let the scorer call any conditional noise-prediction network the same way.

Each backbone file registers itself in `BACKBONES` with the prefix of its hub ids (`sd:`, `dit:`) and how to
recognise its folders; `load_backbone` is a lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from diffclass.backbones import all_class as _all_class  # noqa: F401  (registers "all_class_unet")
from diffclass.backbones import dit as _dit  # noqa: F401  (registers "dit")
from diffclass.backbones import stable_diffusion as _sd  # noqa: F401  (registers "stable_diffusion")
from diffclass.backbones import stable_diffusion3 as _sd3  # noqa: F401  (registers "stable_diffusion3")
from diffclass.backbones.base import BACKBONES, Backbone, call_cost
from diffclass.backbones.class_unet import ClassConditionalUNet
from diffclass.errors import DiffclassError
from diffclass.hub import INFO_FILE, ModelInfo, embedded_models, resolve_model_folder


def backbone_kind(name_or_path: str | Path) -> tuple[str, str | Path]:
    """(registered backbone name, source to load from) for a prefixed hub id, a pipeline folder or a model
    folder; DiDiCM folders are not backbones and are recognised by `diffclass.hub.is_didicm_folder`."""
    text = str(name_or_path)
    for entry in BACKBONES:
        prefix = entry.extra.get("prefix")
        if prefix and text.startswith(prefix + ":"):
            return entry.name, text.split(":", 1)[1]
    folder = Path(text)
    if folder.is_dir() and not (folder / INFO_FILE).is_file():
        for entry in BACKBONES:
            if entry.extra.get("detect", lambda _: False)(folder):
                return entry.name, folder
    folder = resolve_model_folder(name_or_path)
    info = ModelInfo.load(folder)
    if info.backbone not in BACKBONES:
        raise DiffclassError(f"{folder}: unknown backbone {info.backbone!r}; known: {', '.join(BACKBONES.names())}")
    return info.backbone, folder


def load_backbone(
    name_or_path: str | Path,
    device: str | torch.device = "cpu",
    class_names: Sequence[str] | None = None,
    templates: Sequence[str] | dict | None = None,
    dtype: str = "float32",
) -> Backbone:
    """An embedded name or diffclass model folder; Stable Diffusion (`sd:ID`, or a pipeline folder with unet/ and
    text_encoder/) with class names (given, or stored in the folder's diffclass.json); a DiT (`dit:ID`, a folder
    with transformer/ and vae/), whose classes default to ImageNet's 1000; Stable Diffusion 3 (`sd3:ID`, a folder
    with transformer/ and text_encoder_2/) like Stable Diffusion."""
    kind, source = backbone_kind(name_or_path)
    return BACKBONES.get(kind).build(source, device=str(device), class_names=class_names, templates=templates,
                                     dtype=dtype)  # fmt: skip


__all__ = [
    "BACKBONES",
    "Backbone",
    "ClassConditionalUNet",
    "ModelInfo",
    "backbone_kind",
    "call_cost",
    "embedded_models",
    "load_backbone",
]
