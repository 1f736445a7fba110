"""A pruned network's own save format: its per-layer shapes in JSON beside safetensors weights.

A pruned diffusers model's config no longer describes its layers, so `from_pretrained` cannot rebuild it, and
pickling the module would make loading unsafe. Instead the unpruned network is built from its config, then every
layer is resized to the recorded shapes and the weights are loaded strictly.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from diffclass.errors import DiffclassError
from diffclass.files import read_json

ARCHITECTURE_FILE = "pruned_architecture.json"
WEIGHTS_FILE = "pruned_weights.safetensors"
FORMAT_VERSION = 1
# Module attributes that a forward pass reads besides the tensors (channel counts, groups, attention heads).
SHAPE_ATTRIBUTES = (
    "in_channels",
    "out_channels",
    "groups",
    "in_features",
    "out_features",
    "num_groups",
    "num_channels",
    "num_embeddings",
    "embedding_dim",
    "normalized_shape",
    "heads",
    "channels",
    "inner_dim",
    "scale",
)


def describe(module: torch.nn.Module) -> dict:
    """The layer shapes of a (pruned) network: every parameter's and buffer's shape, and the shape attributes of
    every submodule."""
    attributes = {}
    for name, sub in module.named_modules():
        found = {
            key: list(value) if isinstance(value, tuple) else value
            for key in SHAPE_ATTRIBUTES
            if isinstance(value := vars(sub).get(key), (int, float, tuple)) and not isinstance(value, bool)
        }
        if found:
            attributes[name] = found
    tensors = {name: list(t.shape) for name, t in module.state_dict().items()}
    return dict(format=FORMAT_VERSION, attributes=attributes, tensors=tensors)


def save_pruned(module: torch.nn.Module, folder: str | Path) -> None:
    """Write the architecture and weights (and, for a diffusers model, its unpruned config to rebuild from)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(module, "save_config"):
        module.save_config(folder)
    for stale in folder.glob("diffusion_pytorch_model*.safetensors"):  # unpruned weights would be misleading
        stale.unlink()
    (folder / ARCHITECTURE_FILE).write_text(json.dumps(describe(module), indent=1) + "\n")
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))


def is_pruned_folder(folder: str | Path) -> bool:
    return (Path(folder) / ARCHITECTURE_FILE).is_file()


def load_pruned_model(cls, folder: str | Path) -> torch.nn.Module:
    """A pruned diffusers model (`UNet2DModel`, `UNet2DConditionModel`, ...) from a folder `save_pruned` wrote."""
    return load_pruned(cls.from_config(cls.load_config(folder)), folder)


def load_pruned(module: torch.nn.Module, folder: str | Path) -> torch.nn.Module:
    """Resize `module` (the unpruned network built from its config) to the saved architecture and load its
    weights; every mismatch is a one-line error, never a half-loaded network."""
    folder = Path(folder)
    arch = read_json(folder / ARCHITECTURE_FILE, "pruned architecture")
    try:
        expected = {name: tuple(shape) for name, shape in arch["tensors"].items()}
        attributes = arch["attributes"]
    except (AttributeError, KeyError, TypeError) as exc:
        raise DiffclassError(f"{folder / ARCHITECTURE_FILE} is malformed: {exc}") from None
    if not (folder / WEIGHTS_FILE).is_file():
        raise DiffclassError(f"{folder} has a pruned architecture but no {WEIGHTS_FILE}")
    try:
        state = load_file(str(folder / WEIGHTS_FILE))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise DiffclassError(f"cannot read {folder / WEIGHTS_FILE}: {exc}") from None
    if set(state) != set(expected) or set(state) != set(module.state_dict()):
        missing = sorted(set(module.state_dict()) ^ set(state)) or sorted(set(expected) ^ set(state))
        raise DiffclassError(f"{folder}: the weights do not fit the network (first mismatch: {missing[0]})")
    for name, tensor in state.items():
        if tuple(tensor.shape) != expected[name]:
            raise DiffclassError(
                f"{folder}: weight {name} has shape {list(tensor.shape)}, the architecture says {list(expected[name])}"
            )
    try:
        for name, values in attributes.items():
            sub = module.get_submodule(name)
            for key, value in values.items():
                setattr(sub, key, tuple(value) if isinstance(value, list) else value)
    except AttributeError as exc:
        raise DiffclassError(f"{folder}: the architecture does not fit the network ({exc})") from None
    for name, tensor in state.items():
        owner_name, _, leaf = name.rpartition(".")
        owner = module.get_submodule(owner_name)
        if leaf in owner._parameters:
            owner._parameters[leaf] = torch.nn.Parameter(tensor, requires_grad=owner._parameters[leaf].requires_grad)
        else:
            owner._buffers[leaf] = tensor
    return module
