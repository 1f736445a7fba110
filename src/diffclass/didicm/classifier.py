"""DiDiCM models behind the same face as the diffusion classifier, so `evaluate`, `bench` and `classify` run them
and their NFEs land in the same tables.

Their "strategies" are the samplers: `cp(steps=8)` (class-probability sampler, the default), `cl(N=16;steps=2)`
(N label chains), and `plain` for a baseline network (one call, softmax).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from diffclass.backbones.base import ModelInfo, resolve_model_folder
from diffclass.classifier import Decision
from diffclass.didicm.model import CONFIG_FILE, DiDiCMModel
from diffclass.errors import DiffclassError
from diffclass.strategies.base import parse_spec

SAMPLER_OPTIONS = {"cp": {"steps"}, "cl": {"N", "steps"}, "plain": set()}


def is_didicm_folder(path: str | Path) -> bool:
    """A DiDiCM folder, or the name of an embedded one."""
    try:
        return (resolve_model_folder(path) / CONFIG_FILE).is_file()
    except DiffclassError:
        return False


@dataclass(frozen=True)
class SamplerSpec:
    sampler: str
    steps: int = 8
    chains: int = 16

    @property
    def kind(self) -> str:
        return "plain" if self.sampler == "plain" else f"didicm-{self.sampler}"

    @property
    def name(self) -> str:
        if self.sampler == "cp":
            return f"cp(steps={self.steps})"
        if self.sampler == "cl":
            return f"cl(N={self.chains};steps={self.steps})"
        return "plain"


class DiDiCMClassifier:
    """A trained DiDiCM (or plain baseline) network classifying batches of images; one Decision per image."""

    def __init__(self, model: DiDiCMModel, model_name: str = "", seed: int = 0, batch_size: int = 256):
        self.model = model
        self.model_name = model_name
        self.seed = seed
        self.batch_size = batch_size
        self.tree = None
        self.info = ModelInfo(
            backbone="didicm", class_names=model.class_names, image_size=model.image_size,
            channels=model.network.config.in_channels, dataset=model.dataset, training=model.training,
        )  # fmt: skip

    @classmethod
    def load(cls, folder: str | Path, **options) -> DiDiCMClassifier:
        return cls(DiDiCMModel.from_pretrained(folder), model_name=str(folder), **options)

    @property
    def class_names(self) -> list[str]:
        return self.model.class_names

    @property
    def conditioned(self) -> bool:
        return self.model.network.config.conditioned

    @property
    def default_strategy(self) -> str:
        return "cp" if self.conditioned else "plain"

    @property
    def bench_specs(self) -> tuple[str, ...]:
        if not self.conditioned:
            return ("plain",)
        return (*(f"cp(steps={s})" for s in (1, 2, 4, 8)), "cl(N=16;steps=2)")

    def strategy(self, spec: str | SamplerSpec | None = None) -> SamplerSpec:
        if isinstance(spec, SamplerSpec):
            return spec
        kind, options = parse_spec(spec or self.default_strategy)
        if kind not in SAMPLER_OPTIONS:
            raise DiffclassError(
                f"a DiDiCM model samples with cp(steps=N), cl(N=chains;steps=N) or plain, not {kind!r}"
            )
        unknown = set(options) - SAMPLER_OPTIONS[kind]
        if unknown:
            raise DiffclassError(f"{kind} takes no option {sorted(unknown)[0]!r}")
        if (kind == "plain") == self.conditioned:
            raise DiffclassError(
                "this is a plain baseline network: use plain" if not self.conditioned else
                "plain is for baseline networks; this DiDiCM model samples with cp or cl"
            )  # fmt: skip
        try:
            steps = int(options.get("steps", 8 if kind == "cp" else 2))
            chains = int(options.get("N", 16))
        except ValueError:
            raise DiffclassError(f"the options of {kind} must be integers") from None
        if steps < 1 or chains < 1:
            raise DiffclassError("steps and N must be at least 1")
        return SamplerSpec(kind, steps, chains)

    def images_per_pass(self) -> int:
        return self.batch_size

    def classify(
        self, images: torch.Tensor, strategy: str | SamplerSpec | None = None, image_ids: Sequence[str] | None = None
    ) -> list[Decision]:
        """Images [B, C, H, W] in [-1, 1]; CL's chains are seeded per batch, so results repeat for a seed."""
        spec = self.strategy(strategy)
        size = self.info.image_size
        if images.shape[-2:] != (size, size) or images.shape[1] != self.info.channels:
            raise DiffclassError(
                f"images are {list(images.shape[1:])}, the model takes [{self.info.channels}, {size}, {size}]"
            )
        began = time.perf_counter()
        gen = torch.Generator().manual_seed(self.seed)
        posterior = self.model.posterior(images, spec.sampler, spec.steps, spec.chains, gen)
        seconds = (time.perf_counter() - began) / max(1, len(images))
        decisions = []
        for probs in posterior.probabilities:
            ranking = probs.argsort(descending=True).tolist()
            label = ranking[0]
            decisions.append(
                Decision(
                    label=label,
                    class_name=self.class_names[label],
                    ranking=ranking,
                    scores={c: -float(torch.log(probs[c].clamp_min(1e-12))) for c in ranking},
                    probabilities={c: float(probs[c]) for c in ranking},
                    nfe=posterior.nfe,
                    seconds=seconds,
                )  # fmt: skip
            )
        return decisions
