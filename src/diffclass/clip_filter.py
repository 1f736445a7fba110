"""CLIP as a prefilter for zero-shot diffusion classifiers: `prefilter(by=clip:HUB_ID_OR_FOLDER;k=20;then=...)`.

transformers' `CLIPModel` ranks the classes by the cosine similarity of the image's embedding to each class's
prompt embedding (the diffusion model's own prompts, averaged over templates and normalised, as CLIP's zero-shot
recipe does); the diffusion strategy then scores the top k only. Prompt embeddings are computed once per class.
One CLIP call per image is one NFE of the image tower, and its MACs are counted like every network's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from diffclass.backbones.latent import load_component, quiet_hub_libraries
from diffclass.cost import network_size
from diffclass.decision import Decision
from diffclass.errors import DiffclassError
from diffclass.evaluation import Evaluates, model_identity
from diffclass.hub import ModelInfo


@dataclass(frozen=True)
class ClipRanking:
    """The one thing a CLIP filter runs: every class ranked by similarity, one call per image."""

    name: str = "clip"
    kind: str = "clip"


def _features(output) -> torch.Tensor:
    """Projected CLIP features: a tensor in transformers 4, the output's pooler_output in 5."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class _ImageTower(torch.nn.Module):
    """CLIP's image features as a module, so the operation counter sees one call."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixels):
        return _features(self.model.get_image_features(pixel_values=pixels))


class ClipFilter(Evaluates):
    """CLIP's zero-shot ranking behind the classifier protocol (`diffclass.evaluation.ImageClassifier`)."""

    scorer = None  # decisions come from image-text similarities, not from denoising errors
    tree = None
    default_strategy = "clip"
    bench_specs = ("clip",)

    def __init__(
        self,
        model,
        tokenizer,
        image_processor,
        class_names: Sequence[str],
        class_prompts: Sequence[Sequence[str]],
        device: str = "cpu",
        model_name: str = "",
    ):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer, self.image_processor = tokenizer, image_processor
        self.named(model_name)
        self.class_prompts = [list(p) for p in class_prompts]
        self.text = torch.stack([self._prompt_embedding(p) for p in class_prompts])  # [K, D], unit length
        self.scale = float(self.model.logit_scale.detach().exp())
        size = self.model.config.vision_config.image_size
        self.info = ModelInfo(
            backbone="clip",
            class_names=list(class_names),
            image_size=size,
            channels=3,
            templates={n: p for n, p in zip(class_names, self.class_prompts)},
        )

    @property
    def class_names(self) -> list[str]:
        return self.info.class_names

    def strategy(self, spec=None) -> ClipRanking:
        if spec not in (None, "clip") and not isinstance(spec, ClipRanking):
            raise DiffclassError(f"a CLIP filter ranks every class in one call; it runs no strategy {spec!r}")
        return ClipRanking()

    def images_per_pass(self) -> int:
        return 64

    def identity(self) -> dict:
        """The model (a hub id is named by itself, a folder by its weights) and the prompts it ranks by."""
        return model_identity(self, self.weights)

    @classmethod
    def from_pretrained(
        cls, source: str | Path, class_names: Sequence[str], class_prompts: Sequence[Sequence[str]], device: str = "cpu"
    ) -> ClipFilter:
        """A hub id or a local folder holding a CLIPModel with its tokenizer and image processor."""
        quiet_hub_libraries()
        from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

        model = load_component(CLIPModel, source, "", "CLIP model", torch.float32)  # safetensors that fit it
        tokenizer = load_component(CLIPTokenizer, source, "", "CLIP tokenizer")
        image_processor = load_component(CLIPImageProcessor, source, "", "CLIP image processor")
        return cls(model, tokenizer, image_processor, class_names, class_prompts, device, str(source))

    @torch.no_grad()
    def _prompt_embedding(self, prompts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(prompts), padding=True, truncation=True, return_tensors="pt").to(self.device)
        features = F.normalize(_features(self.model.get_text_features(**tokens)), dim=-1)
        return F.normalize(features.mean(0), dim=-1)

    def pixels(self, images: torch.Tensor) -> torch.Tensor:
        """CLIP's input from images in [-1, 1]: its processor's resize, crop and normalisation."""
        rgb = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        arrays = [((im.permute(1, 2, 0).clamp(-1, 1) + 1) / 2).cpu().numpy() for im in rgb]
        batch = self.image_processor(images=arrays, do_rescale=False, return_tensors="pt")
        return batch["pixel_values"].to(self.device)

    @property
    def macs_per_call(self) -> int:
        if not hasattr(self, "_macs"):
            size = self.model.config.vision_config.image_size
            self._macs = network_size(_ImageTower(self.model), (torch.zeros(1, 3, size, size, device=self.device),))[0]
        return self._macs

    @torch.no_grad()
    def classify(self, images: torch.Tensor, strategy=None, image_ids=None) -> list[Decision]:
        """CLIP's ranking of every class for each image ([B, C, H, W] in [-1, 1]); one call per image."""
        began = time.perf_counter()
        features = F.normalize(_features(self.model.get_image_features(pixel_values=self.pixels(images))), dim=-1)
        logits = self.scale * features @ self.text.T  # [B, K]
        if not torch.isfinite(logits).all():
            raise DiffclassError("the CLIP prefilter produced non-finite similarities")
        seconds = (time.perf_counter() - began) / len(images)
        decisions = []
        for row, probs in zip(logits.tolist(), logits.softmax(-1).tolist()):
            ranking = sorted(range(len(row)), key=lambda c: -row[c])
            decisions.append(
                Decision(
                    label=ranking[0],
                    class_name=self.class_names[ranking[0]],
                    ranking=ranking,
                    scores={c: -s for c, s in enumerate(row)},
                    probabilities=dict(enumerate(probs)),
                    nfe=1,
                    seconds=seconds,
                )
            )
        return decisions
