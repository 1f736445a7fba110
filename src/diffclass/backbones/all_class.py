"""A noise network with one output head per class: one call predicts the noise under every class.

The Robust Diffusion Classifier (Chen et al. 2024) replaces K conditional calls by one call of a multi-head
network. Ours keeps the class UNet's body, removes its class embedding and lets classes enter at the last
convolution only, which returns K·C channels (C per class). The scorer sees `scores_all_classes` and fills every
class's error of an (image, slot) from one call, so every strategy runs unchanged and an NFE is a network call.
`diffclass distill` makes one from a class-conditional teacher (diffclass.distillation).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path

import torch
from diffusers import DDPMScheduler, UNet2DModel

from diffclass.backbones.base import BACKBONES, BackboneDefaults, node_mode, refuse_hub_options
from diffclass.backbones.class_unet import DEFAULT_SCHEDULER, ClassConditionalUNet, checked_config, pixel_input
from diffclass.errors import DiffclassError
from diffclass.hub import ModelInfo, check_weights_fit, refuse_pickles
from diffclass.records import json_digest


def class_list_digest(class_names: Sequence[str]) -> str:
    """Names a class list: a student is refused when its heads are not its teacher's classes."""
    return json_digest(list(class_names), length=12)


@BACKBONES.register("all_class_unet", help="UNet2DModel with one output head per class: one call scores every class")
def _load(source, *, device="cpu", class_names=None, templates=None, dtype="float32", info=None) -> AllClassUNet:
    refuse_hub_options("an all-class model", class_names, templates, dtype)
    return AllClassUNet.from_pretrained(source, device=device, info=info)


NODE_SCORES = {"leaf-min": torch.amin, "leaf-mean": torch.mean}  # a tree node's error from its leaves' errors


class AllClassUNet(BackboneDefaults):
    """Backbone whose `predict_all(x_t, t)` returns [B, classes, C, H, W]; a condition is a class index, or an
    internal node of the tree in use, whose error is derived from its leaves' on the same call."""

    scores_all_classes = True  # the scorer fills every class of an (image, slot) from one call
    node_modes = tuple(NODE_SCORES)  # leaf-min first: a node is as good as its best class

    def __init__(self, unet: UNet2DModel, info: ModelInfo, device: str | torch.device = "cpu"):
        self.unet = unet.to(device).eval()
        self.info = info
        self.device = torch.device(device)
        scheduler = DDPMScheduler(**(info.scheduler or DEFAULT_SCHEDULER))
        self.alphas_cumprod = scheduler.alphas_cumprod.to(torch.float64)
        self._node_leaves: dict[str, list[int]] = {}
        self._node_score = NODE_SCORES["leaf-min"]
        if info.tree is not None:
            self.use_tree(info.label_tree())

    @property
    def num_classes(self) -> int:
        return len(self.info.class_names)

    @property
    def denoiser(self) -> torch.nn.Module:
        return self.unet

    @classmethod
    @torch.no_grad()
    def from_teacher(cls, teacher: ClassConditionalUNet) -> AllClassUNet:
        """The teacher's body and its output convolution copied into every head, with the teacher's mean class
        embedding folded into the time embedding's bias (the UNet adds the two): at the start every head predicts
        exactly what the teacher predicts under its average class, and distillation only has to tell them apart."""
        if teacher.info.pruning:
            raise DiffclassError("distill from an unpruned class-conditional model (the student copies its body)")
        classes, channels = len(teacher.info.class_names), teacher.info.channels
        config = {k: v for k, v in teacher.unet.config.items() if not k.startswith("_")}
        config.update(num_class_embeds=None, out_channels=classes * channels)
        unet = UNet2DModel.from_config(config)
        state = teacher.unet.state_dict()
        own = {k: v.clone() for k, v in state.items() if not k.startswith(("class_embedding.", "conv_out."))}
        mean_class = state["class_embedding.weight"][:classes].mean(0)
        own["time_embedding.linear_2.bias"] = own["time_embedding.linear_2.bias"] + mean_class
        own["conv_out.weight"] = state["conv_out.weight"].repeat(classes, 1, 1, 1)
        own["conv_out.bias"] = state["conv_out.bias"].repeat(classes)
        unet.load_state_dict(own)
        t = teacher.info
        info = ModelInfo(
            backbone="all_class_unet",
            class_names=list(t.class_names),
            image_size=t.image_size,
            channels=t.channels,
            value_range=t.value_range,
            scheduler=dict(t.scheduler),
            temperature=t.temperature,
            timestep_range=t.timestep_range,
            dataset=t.dataset,
            tree=t.tree,  # its internal nodes are scored from the heads of their classes
            anchors=t.anchors,
        )
        return cls(unet, info, teacher.device)

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, device: str | torch.device = "cpu", info: ModelInfo | None = None
    ) -> AllClassUNet:
        folder = Path(folder)
        info = info or ModelInfo.load(folder)
        refuse_pickles(folder)
        recipe = info.training.get("distillation", {})
        if recipe.get("teacher_classes") not in (None, class_list_digest(info.class_names)):
            raise DiffclassError(f"{folder}: its class list does not match the teacher's it was distilled from")
        outputs = len(info.class_names) * info.channels
        try:
            config = checked_config(
                UNet2DModel.load_config(folder), info, folder, out_channels=outputs, class_embeds=False
            )
            check_weights_fit(UNet2DModel.from_config(config), folder)
            unet = UNet2DModel.from_pretrained(folder, use_safetensors=True, low_cpu_mem_usage=False)
        except (OSError, ValueError, RuntimeError, TypeError, KeyError, AttributeError, IndexError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DiffclassError(f"cannot load the network in {folder}: {first}") from None
        return cls(unet, info, device)

    def save_pretrained(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.unet.save_pretrained(folder, safe_serialization=True)
        self.info.save(folder)

    def use_tree(self, tree, mode: str | None = None, images=None, labels=None, **invert_options) -> str:
        """Score `tree`'s internal nodes without heads of their own: a node's error on a slot is the minimum
        (`leaf-min`, the default) or mean (`leaf-mean`) of its leaves' errors on the same call, so one call still
        scores every class and every node. Returns the mode."""
        mode = node_mode(self, mode)
        self._node_leaves = {node: tree.leaves_under(node) for node in tree.internal_nodes()}
        self._node_score = NODE_SCORES[mode]
        return mode

    def node_keys(self) -> list[str]:
        return list(self._node_leaves)

    def node_errors(self, errors: torch.Tensor) -> tuple[list[str], torch.Tensor]:
        """The internal nodes' errors [B, nodes] from the classes' [B, classes] on the same calls."""
        nodes = self.node_keys()
        if not nodes:
            return super().node_errors(errors)
        return nodes, torch.stack([self._node_score(errors[:, self._node_leaves[n]], dim=1) for n in nodes], 1)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return pixel_input(images, self.info, self.device)

    def condition(self, keys: Sequence[Hashable]) -> torch.Tensor:
        for key in keys:
            if not (isinstance(key, int) and 0 <= key < self.num_classes):
                raise DiffclassError(
                    f"an all-class model has heads for its {self.num_classes} classes only, not for {key!r}"
                    + ("" if self._node_leaves else " (give it a tree to score internal nodes from their classes)")
                )
        return torch.as_tensor(list(keys), dtype=torch.long, device=self.device)

    def predict_all(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = self.unet(x_t, t).sample
        return out.view(len(x_t), self.num_classes, self.info.channels, *out.shape[-2:])

    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """One class's head per sample (the whole call runs: what an NFE costs)."""
        return self.predict_all(x_t, t)[torch.arange(len(x_t), device=x_t.device), cond]
