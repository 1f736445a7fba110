"""Training checkpoints as safetensors: the network's weights and the optimiser's moments as flat tensors (the
optimiser's parameter groups go to JSON beside them), so resuming a run never unpickles anything.

A checkpoint is two files, so it is written in an order that a kill at any moment cannot tear: the tensors go to
a file named by their step, then the JSON that names that file replaces the old one in one rename, and only then
is the previous step's tensors file removed. Whatever moment a run dies, the JSON names a complete tensors file of
its own step: a resumed run continues from the newest whole checkpoint, to the weights an uninterrupted run gives.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from diffclass.files import read_json, write_text_atomic

CHECKPOINT_DIR = "checkpoint"  # inside a model's output folder
STATE_TENSORS, STATE_META = "train_state.safetensors", "train_state.json"


def state_tensors(network: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    """`model.{name}` and `optim.{param}.{name}` tensors, and the optimiser's parameter groups."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    opt = optimizer.state_dict()
    for i, state in opt["state"].items():
        for k, v in state.items():
            tensors[f"optim.{i}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
    return tensors, opt["param_groups"]


def write_checkpoint(folder: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """The tensors and their JSON meta (step, recipe, parameter groups, ...), in the order that cannot tear."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"train_state.{meta['step']}.safetensors"
    save_file(tensors, str(folder / f"{name}.tmp"))
    (folder / f"{name}.tmp").replace(folder / name)
    write_text_atomic(folder / STATE_META, json.dumps(dict(meta, tensors=name), indent=1))
    for old in folder.glob("train_state*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)


def read_checkpoint(folder: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """What `write_checkpoint` wrote: the tensors file its JSON names (OSError or ValueError when either is missing
    or damaged)."""
    if not (folder / STATE_META).is_file():
        raise FileNotFoundError(f"no {STATE_META} in {folder}")
    meta = read_json(folder / STATE_META, "checkpoint record")  # bounded: a damaged or hostile file is one line
    if not isinstance(meta, dict):
        raise ValueError(f"{STATE_META} must hold a JSON object")
    name = meta.get("tensors", STATE_TENSORS)  # checkpoints written before the step-named files
    if not isinstance(name, str) or Path(name).name != name:
        raise ValueError(f"{STATE_META} names no tensors file of its folder")
    return load_file(str(folder / name)), meta


def restore_state(
    tensors: dict[str, torch.Tensor], param_groups: list, network: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> None:
    """The inverse of `state_tensors` (raises RuntimeError when the weights do not fit the network)."""
    network.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, i, name = key.split(".", 2)
            state.setdefault(int(i), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})
