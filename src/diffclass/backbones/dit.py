"""Supervised diffusion classification with a class-conditional latent DiT (diffusers DiT + VAE), e.g. DiT-XL/2.

DiT predicts epsilon and a learned variance stacked along the channels; only the first half (epsilon) is scored.
Internal tree nodes are conditioned by the mean of their leaves' label embeddings, appended to every block's
label-embedding table (DiT conditions each block through its own table).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, DiTTransformer2DModel
from diffusers.models.embeddings import LabelEmbedding

from diffclass.backbones.base import BACKBONES, BackboneDefaults, adopt_saved, embedding_row, node_mode, saved_info
from diffclass.backbones.latent import load_component, public_config, resolve_dtype, vae_encode
from diffclass.errors import DiffclassError
from diffclass.hierarchy import LabelTree, shipped_class_names
from diffclass.hub import ModelInfo


def _is_dit_folder(folder: Path) -> bool:
    return (folder / "transformer").is_dir() and (folder / "vae").is_dir() and not (folder / "text_encoder").is_dir()


@BACKBONES.register(
    "dit",
    help="class-conditional latent DiT + VAE (dit:HUB_ID or a pipeline folder)",
    prefix="dit",
    detect=_is_dit_folder,
    parts=("transformer", "vae", "scheduler"),
    told_classes=True,
)
def _load(source, *, device="cpu", class_names=None, templates=None, dtype="float32", info=None) -> DiTBackbone:
    if templates is not None:
        raise DiffclassError("prompts apply to text-conditioned models; a DiT is conditioned on class labels")
    info = info or saved_info(source)
    names = class_names or (info.class_names if info else None) or shipped_class_names("imagenet")
    return adopt_saved(DiTBackbone.from_pretrained(source, names, device, dtype), info, class_names)


class DiTBackbone(BackboneDefaults):
    node_modes = ("mean",)

    def __init__(
        self,
        transformer,
        vae,
        scheduler,
        class_names: Sequence[str],
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
        source: str = "",
    ):
        self.device = torch.device(device)
        self.dtype = dtype
        self.transformer = transformer.to(self.device).eval()
        self.vae = vae.to(self.device).eval()
        self.alphas_cumprod = scheduler.alphas_cumprod.to(torch.float64)
        self.latent_channels = transformer.config.in_channels
        self.resolution = transformer.config.sample_size * 2 ** (len(vae.config.block_out_channels) - 1)
        if len(class_names) > transformer.config.num_embeds_ada_norm:
            raise DiffclassError(
                f"{len(class_names)} class names but the DiT knows {transformer.config.num_embeds_ada_norm} classes"
            )
        self.info = ModelInfo(
            backbone="dit",
            class_names=list(class_names),
            image_size=self.resolution,
            channels=3,
            scheduler=public_config(scheduler),
            training=dict(source=str(source)),
        )
        self._tree: LabelTree | None = None
        self._node_rows: dict[str, int] = {}

    @classmethod
    def from_pretrained(
        cls, source: str | Path, class_names: Sequence[str], device: str = "cpu", dtype: str = "float32"
    ) -> DiTBackbone:
        torch_dtype = resolve_dtype(dtype, device)
        return cls(
            load_component(DiTTransformer2DModel, source, "transformer", "DiT transformer", torch_dtype),
            load_component(AutoencoderKL, source, "vae", "VAE", torch_dtype),
            load_component(DDPMScheduler, source, "scheduler", "noise schedule"),
            class_names,
            device,
            torch_dtype,
            source,
        )

    @property
    def denoiser(self) -> torch.nn.Module:
        return self.transformer

    def save_pretrained(self, folder: str | Path) -> None:
        """A diffusers pipeline folder (transformer/, vae/, scheduler/) plus diffclass.json (class names, tree);
        tree-node rows appended by `use_tree` are not saved: they are rebuilt from the tree on load."""
        folder = Path(folder)
        tables = self.label_tables()
        extended = [t.embedding_table for t in tables]
        for table, full in zip(tables, extended):
            base = torch.nn.Embedding(full.num_embeddings - len(self._node_rows), full.embedding_dim)
            base.weight.data = full.weight.data[: base.num_embeddings]
            table.embedding_table = base
        try:
            self.transformer.save_pretrained(folder / "transformer")
        finally:
            for table, full in zip(tables, extended):
                table.embedding_table = full
        self.vae.save_pretrained(folder / "vae")
        DDPMScheduler(**self.info.scheduler).save_pretrained(folder / "scheduler")
        self.info.save(folder)

    def label_tables(self) -> list[LabelEmbedding]:
        return [m for m in self.transformer.modules() if isinstance(m, LabelEmbedding)]

    def use_tree(self, tree: LabelTree, mode: str | None = None, images=None, labels=None, **invert_options) -> str:
        """Append each internal node's mean leaf embedding to every label table (the `mean` conditioning)."""
        mode = node_mode(self, mode)
        nodes = tree.internal_nodes()
        for table in self.label_tables():
            old = table.embedding_table
            first = old.num_embeddings
            new = torch.nn.Embedding(first + len(nodes), old.embedding_dim).to(old.weight.device, old.weight.dtype)
            new.weight.data[:first] = old.weight.data
            for i, node in enumerate(nodes):
                new.weight.data[first + i] = old.weight.data[tree.leaves_under(node)].mean(dim=0)
            table.embedding_table = new
        first = self.label_tables()[0].embedding_table.num_embeddings - len(nodes)
        self._tree, self._node_rows = tree, {node: first + i for i, node in enumerate(nodes)}
        self.info.tree = tree.to_dict()
        return mode

    def row(self, key: Hashable) -> int:
        return embedding_row(key, self._node_rows, self._tree)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return vae_encode(self.vae, images, self.resolution, self.dtype)

    def condition(self, keys: Sequence[Hashable]) -> torch.Tensor:
        return torch.as_tensor([self.row(k) for k in keys], dtype=torch.long, device=self.device)

    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        out = self.transformer(x_t.to(self.dtype), timestep=t, class_labels=cond).sample
        return out[:, : self.latent_channels]  # epsilon; the second half is the learned variance
