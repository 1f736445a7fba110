"""What every backbone offers the scorer, and the two computations every user of a noise network shares: the
forward noising q(x_t | x0) and the cost of one call."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Protocol

import torch

from diffclass.cost import network_size
from diffclass.errors import DiffclassError
from diffclass.hub import INFO_FILE, ModelInfo
from diffclass.registry import Registry

# name -> loader(source, *, device, class_names, templates, dtype, info: the folder's diffclass.json, read once);
# extra: `prefix` of hub ids, `detect(folder)`
BACKBONES = Registry("backbone")


class Backbone(Protocol):
    """A conditional noise-prediction network seen through the calls a diffusion classifier needs.

    Everything a caller may ask of a backbone is declared here; what a kind lacks, it answers through
    `BackboneDefaults` (no tree nodes, no VAE, one class per call), so callers never probe for attributes.
    """

    info: ModelInfo
    alphas_cumprod: torch.Tensor  # [num_train_timesteps], on CPU, float64
    scores_all_classes: bool  # one call scores every class of an (image, slot), through `predict_all`
    node_modes: tuple[str, ...]  # how `use_tree` can condition internal tree nodes; empty: it cannot
    vae: torch.nn.Module | None  # latent models: what turns an x0 estimate back into pixels

    @property
    def denoiser(self) -> torch.nn.Module: ...  # the network that learns (training, pruning, cost)

    def encode(self, images: torch.Tensor) -> torch.Tensor: ...  # [B,C,H,W] in [-1,1] -> x0

    def condition(self, keys: Sequence[Hashable]) -> torch.Tensor: ...  # one row per key

    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor: ...

    def predict_all(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor: ...  # [B, classes, C, H, W]

    def node_keys(self) -> list[str]: ...  # all-class: the tree nodes each call also scores, from their classes

    def node_errors(self, errors: torch.Tensor) -> tuple[list[str], torch.Tensor]: ...  # all-class: nodes' [B, n]

    def use_tree(self, tree, mode: str | None = None, images=None, labels=None, **invert_options) -> str: ...

    def ancestor_rows(self) -> list[list[int]]: ...  # per class, the embedding rows ancestor training may use

    def word_attention(self, x_t: torch.Tensor, t: torch.Tensor, key: Hashable) -> torch.Tensor | None: ...

    def prompts(self, key: Hashable) -> list[str] | None: ...  # a text-conditioned model's prompts of a class

    def save_pretrained(self, folder: str | Path) -> None: ...


class BackboneDefaults:
    """What a backbone kind that lacks a capability answers: no all-class heads, no tree nodes, pixel space, no
    word attention. Each kind overrides what it has."""

    info: ModelInfo
    scores_all_classes = False
    node_modes: tuple[str, ...] = ()
    vae = None

    def predict_all(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        raise DiffclassError(f"{self.info.backbone} models score one class per call")

    def node_keys(self) -> list[str]:
        return []

    def node_errors(self, errors: torch.Tensor) -> tuple[list[str], torch.Tensor]:
        return [], errors[:, :0]

    def use_tree(self, tree, mode: str | None = None, images=None, labels=None, **invert_options) -> str:
        """Score `tree`'s internal nodes, conditioned by `mode` (default: the kind's best); returns the mode."""
        raise DiffclassError(f"{self.info.backbone} models cannot score internal tree nodes")

    def ancestor_rows(self) -> list[list[int]]:
        return [[] for _ in self.info.class_names]

    def word_attention(self, x_t: torch.Tensor, t: torch.Tensor, key: Hashable) -> torch.Tensor | None:
        return None

    def prompts(self, key: Hashable) -> list[str] | None:
        return None


def node_mode(backbone: Backbone, mode: str | None) -> str:
    """The node conditioning a backbone uses for `mode` (None: its first), refused in one line when it has none
    such."""
    if not backbone.node_modes:
        raise DiffclassError(f"{backbone.info.backbone} models cannot score internal tree nodes")
    if mode is not None and mode not in backbone.node_modes:
        raise DiffclassError(
            f"{backbone.info.backbone} models condition tree nodes by "
            f"{' or '.join(backbone.node_modes)} only, not {mode!r}"
        )
    return mode or backbone.node_modes[0]


def embedding_row(key: Hashable, node_rows: dict[str, int], tree) -> int:
    """The label-embedding row of a class index, a leaf id or an internal tree node id (label-conditioned
    backbones: class UNet, DiT)."""
    if isinstance(key, int):
        return key
    if key in node_rows:
        return node_rows[key]
    if tree is not None and key in tree.nodes and tree.nodes[key].is_leaf:
        return tree.nodes[key].class_index
    raise DiffclassError(f"the model has no embedding for tree node {key!r}")


def refuse_hub_options(kind: str, class_names, templates, dtype: str) -> None:
    """Models that carry their own classes and run in float32 refuse what only zero-shot and latent models take."""
    if class_names is not None or templates is not None:
        raise DiffclassError(f"class names and prompts apply to zero-shot models; {kind} has its own")
    if dtype != "float32":
        raise DiffclassError(f"--dtype {dtype} applies to latent models; {kind} runs in float32")


def saved_info(source) -> ModelInfo | None:
    """The diffclass.json a hub-layout folder saved by diffclass holds (None for a hub id or a plain folder)."""
    return ModelInfo.load(Path(source)) if (Path(source) / INFO_FILE).is_file() else None


def adopt_saved(backbone, info: ModelInfo | None, class_names) -> Backbone:
    """A hub-layout backbone takes over what its saved folder learned: tuning, and its tree unless classes were
    given."""
    if info is not None:
        backbone.info.keep_tuning_of(info)
        if info.tree is not None and class_names is None:
            backbone.use_tree(info.label_tree())
    return backbone


def q_sample(x0: torch.Tensor, eps: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(a) x0 + sqrt(1 - a) eps, with a = alphas_cumprod[t] per sample (DDPM's forward process)."""
    a = a.to(x0.device, torch.float32).view((-1,) + (1,) * (x0.dim() - 1))
    return a.sqrt() * x0 + (1 - a).sqrt() * eps


class _OneCall(torch.nn.Module):
    """`predict_noise` as a module, so the counter sees exactly what one scorer call runs, whatever the backbone."""

    def __init__(self, backbone: Backbone):
        super().__init__()
        self.denoiser = backbone.denoiser
        self._predict = backbone.predict_noise

    def forward(self, x_t, t, cond):
        return self._predict(x_t, t, cond)


@torch.no_grad()
def call_cost(backbone: Backbone) -> tuple[int, int]:
    """(MACs, parameters) of one network call on one image of the model's input size, conditioned on class 0:
    the machine-independent cost of one NFE."""
    size, channels = backbone.info.image_size, backbone.info.channels
    x0 = backbone.encode(torch.zeros(1, channels, size, size))
    t = torch.zeros(1, dtype=torch.long, device=x0.device)
    return network_size(_OneCall(backbone), (x0, t, backbone.condition([0])))
