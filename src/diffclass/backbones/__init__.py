"""Backbones: adapters that let the scorer call any conditional noise-prediction network the same way."""

from __future__ import annotations

from pathlib import Path

import torch

from diffclass.backbones.base import Backbone, ModelInfo, embedded_models, resolve_model_folder
from diffclass.backbones.class_unet import ClassConditionalUNet
from diffclass.errors import DiffclassError

BACKBONES = {"class_unet": ClassConditionalUNet}


def load_backbone(name_or_path: str | Path, device: str | torch.device = "cpu") -> Backbone:
    """Load a saved model by embedded name or folder; `diffclass.json` says which backbone class reads it."""
    folder = resolve_model_folder(name_or_path)
    info = ModelInfo.load(folder)
    if info.backbone not in BACKBONES:
        raise DiffclassError(f"{folder}: unknown backbone {info.backbone!r}; known: {', '.join(BACKBONES)}")
    return BACKBONES[info.backbone].from_pretrained(folder, device=device)


__all__ = ["Backbone", "ClassConditionalUNet", "ModelInfo", "embedded_models", "load_backbone"]
