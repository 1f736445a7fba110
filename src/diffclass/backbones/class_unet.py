"""A class-conditional pixel-space UNet (diffusers `UNet2DModel` with a class embedding)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DModel

from diffclass.backbones.base import BACKBONES, BackboneDefaults, embedding_row, refuse_hub_options
from diffclass.errors import DiffclassError
from diffclass.hierarchy import LabelTree
from diffclass.hub import ModelInfo, check_weights_fit, refuse_pickles
from diffclass.hub.pruned import ARCHITECTURE_FILE, is_pruned_folder, load_pruned_model, save_pruned

DEFAULT_SCHEDULER = dict(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02)


def small_unet_config(image_size: int, channels: int, num_classes: int, width: int = 16) -> dict:
    """A UNet sized for a CPU: three resolutions, attention only at the coarsest one (group norms of up to 8
    groups, as many as divide `width`)."""
    return dict(
        sample_size=image_size,
        in_channels=channels,
        out_channels=channels,
        layers_per_block=1,
        block_out_channels=(width, 2 * width, 4 * width),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=math.gcd(8, width),
        attention_head_dim=8,
        num_class_embeds=num_classes,
    )


def pixel_input(images: torch.Tensor, info: ModelInfo, device: torch.device) -> torch.Tensor:
    """Images as a pixel-space network takes them: resized to its size, its channel count checked."""
    size = info.image_size
    if images.shape[-2:] != (size, size):
        images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    if images.shape[1] != info.channels:
        raise DiffclassError(f"images have {images.shape[1]} channels, the model expects {info.channels}")
    return images.to(device, torch.float32)


@BACKBONES.register("class_unet", help="diffusers UNet2DModel with a class embedding, pixel space (diffclass folders)")
def _load(
    source, *, device="cpu", class_names=None, templates=None, dtype="float32", info=None
) -> ClassConditionalUNet:
    refuse_hub_options("a class-conditional model", class_names, templates, dtype)
    return ClassConditionalUNet.from_pretrained(source, device=device, info=info)


MAX_CHANNELS, MAX_LEVELS, MAX_LAYERS_PER_BLOCK = 4096, 8, 16  # far above any class UNet, far below a hang


def checked_config(
    config: dict, info: ModelInfo, folder: Path, out_channels: int | None = None, class_embeds: bool = True
) -> dict:
    """The UNet config's sizes, checked before anything is allocated: a typo or a hostile file must not build a
    network for minutes or exhaust memory. `out_channels` defaults to the image's channels (one noise estimate);
    without `class_embeds` the network must have no class embedding."""
    channels = config.get("block_out_channels")
    if not (
        isinstance(channels, (list, tuple))
        and 1 <= len(channels) <= MAX_LEVELS
        and all(isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= MAX_CHANNELS for c in channels)
    ):
        raise DiffclassError(
            f"{folder}/config.json: block_out_channels must be 1 to {MAX_LEVELS} integers in "
            f"[1, {MAX_CHANNELS}], got {channels!r}"
        )
    checks = {
        "layers_per_block": (1, MAX_LAYERS_PER_BLOCK),
        "sample_size": (info.image_size, info.image_size),
        "in_channels": (info.channels, info.channels),
        "out_channels": (out_channels or info.channels, out_channels or info.channels),
        "norm_num_groups": (1, min(channels)),
    }
    if class_embeds:
        checks["num_class_embeds"] = (1, 10_000_000)
    elif config.get("num_class_embeds") is not None or config.get("class_embed_type") is not None:
        raise DiffclassError(f"{folder}/config.json: this network takes no class embedding")
    for key, (low, high) in checks.items():
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            wanted = f"{low}" if low == high else f"an integer in [{low}, {high}]"
            raise DiffclassError(f"{folder}/config.json: {key} must be {wanted}, got {value!r}")
    for key in ("down_block_types", "up_block_types"):
        blocks = config.get(key)
        if not (
            isinstance(blocks, (list, tuple))
            and len(blocks) == len(channels)
            and all(isinstance(b, str) for b in blocks)
        ):
            raise DiffclassError(f"{folder}/config.json: {key} must name one block per entry of block_out_channels")
    if any(c % config["norm_num_groups"] for c in channels):
        raise DiffclassError(f"{folder}/config.json: norm_num_groups must divide every block's channels")
    return config


class ClassConditionalUNet(BackboneDefaults):
    """Backbone for supervised diffusion classification: condition = class index, x0 = the pixels."""

    node_modes = ("ancestor", "mean", "inverted")

    def __init__(self, unet: UNet2DModel, info: ModelInfo, device: str | torch.device = "cpu"):
        self.unet = unet.to(device).eval()
        self.info = info
        self.device = torch.device(device)
        scheduler = DDPMScheduler(**(info.scheduler or DEFAULT_SCHEDULER))
        self.alphas_cumprod = scheduler.alphas_cumprod.to(torch.float64)
        self._tree = info.label_tree()
        self._node_rows = dict(info.node_embeddings)

    @classmethod
    def create(
        cls,
        class_names: Sequence[str],
        image_size: int,
        channels: int,
        width: int = 16,
        tree: LabelTree | None = None,
        **info_kw,
    ):
        """A fresh network; with a tree, every internal node but the root gets an embedding row of its own
        (rows after the classes') for ancestor training."""
        rows = {}
        if tree is not None:
            internal = tree.internal_nodes()
            rows = {node_id: len(class_names) + i for i, node_id in enumerate(internal)}
        unet = UNet2DModel(**small_unet_config(image_size, channels, len(class_names) + len(rows), width))
        info = ModelInfo(
            backbone="class_unet",
            class_names=list(class_names),
            image_size=image_size,
            channels=channels,
            scheduler=dict(DEFAULT_SCHEDULER),
            tree=tree.to_dict() if tree is not None else None,
            node_conditioning="ancestor" if tree is not None else None,
            node_embeddings=rows,
            **info_kw,
        )
        return cls(unet, info)

    def use_tree(self, tree: LabelTree, mode: str | None = None, images=None, labels=None, **invert_options) -> str:
        """Score `tree`'s internal nodes by `mode` (default: `ancestor` when the model was trained with this tree,
        else `mean`; `inverted` learns them on training `images` and `labels`). Returns the mode used."""
        from diffclass.backbones.node_embeddings import condition_tree

        if mode is None:
            trained = all(n in self.info.node_embeddings for n in tree.internal_nodes())
            mode = "ancestor" if trained else "mean"
        condition_tree(self, tree, mode, images, labels, **invert_options)
        return mode

    def set_node_rows(self, tree: LabelTree, rows: dict[str, int]) -> None:
        """Score this tree's internal nodes through these class-embedding rows (set by node conditioning)."""
        self._tree = tree
        self._node_rows = dict(rows)

    @property
    def denoiser(self) -> torch.nn.Module:
        return self.unet

    def row(self, key: Hashable) -> int:
        return embedding_row(key, self._node_rows, self._tree)

    def ancestor_rows(self) -> list[list[int]]:
        """For each class, the rows of its ancestors (root excluded) that ancestor training may swap in."""
        if self._tree is None:
            return [[] for _ in self.info.class_names]
        tree = self._tree
        return [
            [self.info.node_embeddings[a] for a in tree.ancestors(tree.leaf_of[c]) if a in self.info.node_embeddings]
            for c in range(len(self.info.class_names))
        ]

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, device: str | torch.device = "cpu", info: ModelInfo | None = None
    ) -> ClassConditionalUNet:
        """A saved folder; `info` is its diffclass.json when the caller has read it already."""
        folder = Path(folder)
        info = info or ModelInfo.load(folder)
        refuse_pickles(folder)
        try:
            if is_pruned_folder(folder):  # a pruned network: its config is the unpruned one, resized on load
                unet = load_pruned_model(UNet2DModel, folder)
            else:
                config = checked_config(UNet2DModel.load_config(folder), info, folder)
                check_weights_fit(UNet2DModel.from_config(config), folder)
                unet = UNet2DModel.from_pretrained(folder, use_safetensors=True, low_cpu_mem_usage=False)
        except (OSError, ValueError, RuntimeError, TypeError, KeyError, AttributeError, IndexError) as exc:
            # diffusers could not build or fill the network its config describes: one line, whatever the cause
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DiffclassError(f"cannot load the network in {folder}: {first}") from None
        expected = len(info.class_names) + len(info.node_embeddings)
        if unet.config.num_class_embeds != expected:
            raise DiffclassError(
                f"{folder}: the network has {unet.config.num_class_embeds} class embeddings but "
                f"{len(info.class_names)} class names and {len(info.node_embeddings)} tree nodes"
            )
        return cls(unet, info, device)

    def save_pretrained(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.info.pruning:
            save_pruned(self.unet, folder)
        else:
            (folder / ARCHITECTURE_FILE).unlink(missing_ok=True)
            self.unet.save_pretrained(folder, safe_serialization=True)
        self.info.save(folder)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return pixel_input(images, self.info, self.device)

    def condition(self, keys: Sequence[Hashable]) -> torch.Tensor:
        return torch.as_tensor([self.row(k) for k in keys], dtype=torch.long, device=self.device)

    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.unet(x_t, t, class_labels=cond).sample
