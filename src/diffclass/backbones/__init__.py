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
from diffclass.hub import INFO_FILE, ModelInfo, ModelRef, embedded_models, resolve_model


def backbone_kind(name_or_ref: str | Path | ModelRef) -> tuple[str, ModelRef]:
    """(registered backbone name, the model resolved) for a prefixed hub id, a pipeline folder or a model folder;
    DiDiCM folders are not backbones (their `ModelRef.kind` is `didicm`)."""
    ref = resolve_model(name_or_ref)
    if ref.prefix is not None:
        for entry in BACKBONES:
            if entry.extra.get("prefix") == ref.prefix:
                return entry.name, ref
        known = ", ".join(f"{e.extra['prefix']}:" for e in BACKBONES if e.extra.get("prefix"))
        raise DiffclassError(f"unknown model {ref.name!r}: {ref.prefix}: is not a hub prefix ({known})")
    if ref.info is None:  # a pipeline folder saved by diffusers, recognised by its layout
        for entry in BACKBONES:
            if entry.extra.get("detect", lambda _: False)(ref.folder):
                return entry.name, ref
        raise DiffclassError(_not_a_model(ref.folder))
    if ref.info.backbone not in BACKBONES:
        raise DiffclassError(
            f"{ref.folder}: unknown backbone {ref.info.backbone!r}; known: {', '.join(BACKBONES.names())}"
        )
    return ref.info.backbone, ref


def _not_a_model(folder: Path) -> str:
    """Why a folder is no model: the pipeline it looks like and the parts it lacks, when it looks like one."""
    layouts = [(e, [p for p in e.extra["parts"] if (folder / p).is_dir()]) for e in BACKBONES if "parts" in e.extra]
    closest = max(layouts, key=lambda layout: (len(layout[1]), len(layout[1]) / len(layout[0].extra["parts"])))
    entry, present = closest if layouts else (None, [])
    if entry is None or len(present) < 2:
        return f"{folder} is not a diffclass model folder (no {INFO_FILE})"
    missing = [p for p in entry.extra["parts"] if p not in present]
    return f"{folder} looks like a {entry.name} pipeline ({', '.join(present)}) but has no {', '.join(missing)}/"


def load_backbone(
    name_or_path: str | Path | ModelRef,
    device: str | torch.device = "cpu",
    class_names: Sequence[str] | None = None,
    templates: Sequence[str] | dict | None = None,
    dtype: str = "float32",
) -> Backbone:
    """An embedded name or diffclass model folder; Stable Diffusion (`sd:ID`, or a pipeline folder with unet/ and
    text_encoder/) with class names (given, or stored in the folder's diffclass.json); a DiT (`dit:ID`, a folder
    with transformer/ and vae/), whose classes default to ImageNet's 1000; Stable Diffusion 3 (`sd3:ID`, a folder
    with transformer/ and text_encoder_2/) like Stable Diffusion."""
    kind, ref = backbone_kind(name_or_path)
    return BACKBONES.get(kind).build(
        ref.source, device=str(device), class_names=class_names, templates=templates, dtype=dtype, info=ref.info
    )


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
