"""Backbones: adapters that let the scorer call any conditional noise-prediction network the same way."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from diffclass.backbones.base import Backbone, ModelInfo, embedded_models, resolve_model_folder
from diffclass.backbones.class_unet import ClassConditionalUNet
from diffclass.errors import DiffclassError

BACKBONES = {"class_unet": ClassConditionalUNet}
LATENT_PREFIXES = ("sd:", "dit:")


def latent_kind(spec: str | Path) -> str | None:
    """`sd` or `dit` for a prefixed hub id / folder or a diffusers pipeline folder, else None."""
    text = str(spec)
    for prefix in LATENT_PREFIXES:
        if text.startswith(prefix):
            return prefix[:-1]
    folder = Path(text)
    if (folder / "unet").is_dir() and (folder / "text_encoder").is_dir():
        return "sd"
    if (folder / "transformer").is_dir() and (folder / "vae").is_dir():
        return "dit"
    return None


def imagenet_class_names() -> list[str]:
    from diffclass.backbones.prompts import shipped_class_names

    return shipped_class_names("imagenet")


def load_backbone(
    name_or_path: str | Path,
    device: str | torch.device = "cpu",
    class_names: Sequence[str] | None = None,
    templates: Sequence[str] | dict | None = None,
    dtype: str = "float32",
) -> Backbone:
    """An embedded name or diffclass model folder; or Stable Diffusion (`sd:ID`, a pipeline folder with unet/
    and text_encoder/) given class names; or a DiT (`dit:ID`, a folder with transformer/ and vae/), whose
    classes default to ImageNet's 1000."""
    kind = latent_kind(name_or_path)
    if kind is not None:
        source = str(name_or_path).split(":", 1)[1] if str(name_or_path).startswith(LATENT_PREFIXES) else name_or_path
        if kind == "sd":
            from diffclass.backbones.stable_diffusion import DEFAULT_TEMPLATES, StableDiffusionBackbone

            if not class_names:
                raise DiffclassError("a zero-shot model needs class names: pass --classes FILE or a folder: dataset")
            return StableDiffusionBackbone.from_pretrained(
                source, class_names, templates or DEFAULT_TEMPLATES, str(device), dtype
            )
        from diffclass.backbones.dit import DiTBackbone

        return DiTBackbone.from_pretrained(source, class_names or imagenet_class_names(), str(device), dtype)
    folder = resolve_model_folder(name_or_path)
    info = ModelInfo.load(folder)
    if info.backbone not in BACKBONES:
        raise DiffclassError(f"{folder}: unknown backbone {info.backbone!r}; known: {', '.join(BACKBONES)}")
    return BACKBONES[info.backbone].from_pretrained(folder, device=device)


__all__ = ["Backbone", "ClassConditionalUNet", "ModelInfo", "embedded_models", "load_backbone"]
