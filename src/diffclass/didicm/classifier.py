"""DiDiCM models behind the same face as the diffusion classifier, so `evaluate`, `bench` and `classify` run them
and their NFEs land in the same tables.

Their "strategies" are the samplers: `cp(steps=8)` (class-probability sampler; the default, with the paper's Euler
update for the paper's free-score head, which has nothing to read in one step), `cl(N=16;steps=2)` (N label
chains), and `plain` for a baseline network (one call, softmax).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import torch

from diffclass.cost import network_size
from diffclass.data.images import check_batch, content_id
from diffclass.decision import Decision
from diffclass.didicm.model import DiDiCMModel
from diffclass.didicm.samplers import SAMPLERS, SamplerSpec
from diffclass.errors import DiffclassError
from diffclass.evaluation import Evaluates, model_identity
from diffclass.hub import MODEL_KINDS, ModelInfo, ModelRef, resolve_model
from diffclass.records import json_digest
from diffclass.registry import parse_spec


class DiDiCMClassifier(Evaluates):
    """A trained DiDiCM (or plain baseline) network classifying batches of images; one Decision per image."""

    scorer = None  # decisions come from the samplers, not from denoising errors

    def __init__(self, model: DiDiCMModel, model_name: str | ModelRef = "", seed: int = 0, batch_size: int = 256):
        self.model = model
        self.named(model_name)
        self.seed = seed
        self.batch_size = batch_size
        self.tree = None
        self.info = ModelInfo(
            backbone="didicm",
            class_names=model.class_names,
            image_size=model.image_size,
            channels=model.network.config.in_channels,
            dataset=model.dataset,
            training=model.training,
        )

    @classmethod
    def load(cls, folder: str | Path | ModelRef, **options) -> DiDiCMClassifier:
        ref = resolve_model(folder)
        return cls(DiDiCMModel.from_pretrained(ref.source), model_name=ref, **options)

    @property
    def class_names(self) -> list[str]:
        return self.model.class_names

    @cached_property
    def macs_per_call(self) -> int:
        """Multiply-accumulates of one network call on one image (a sampler step is one call)."""
        size, channels = self.info.image_size, self.info.channels
        example = (torch.zeros(1, channels, size, size),)
        if self.conditioned:
            example += (torch.zeros(1, dtype=torch.long), torch.ones(1))
        with torch.no_grad():
            return network_size(self.model.network, example)[0]

    @property
    def conditioned(self) -> bool:
        return self.model.network.config.conditioned

    @property
    def default_strategy(self) -> str:
        if not self.conditioned:
            return "plain"
        return "cp(steps=8;update=euler)" if self.free_scores else "cp(steps=8)"

    @property
    def free_scores(self) -> bool:
        """The paper's head: free log concrete scores, which carry nothing at t = 1 (so one step reads nothing)."""
        return self.model.network.config.head == "scores"

    @property
    def bench_specs(self) -> tuple[str, ...]:
        if not self.conditioned:
            return ("plain",)
        if self.free_scores:
            return (*(f"cp(steps={s};update=euler)" for s in (2, 4, 8)), "cp(steps=8)", "cl(N=10;steps=8;update=tau)")
        return (*(f"cp(steps={s})" for s in (1, 2, 4, 8)), "cl(N=16;steps=2)")

    def strategy(self, spec: str | SamplerSpec | None = None) -> SamplerSpec:
        if isinstance(spec, SamplerSpec):
            return spec
        kind, raw = parse_spec(spec or self.default_strategy)
        if kind not in SAMPLERS:
            raise DiffclassError(
                f"a DiDiCM model samples with cp(steps=N), cl(N=chains;steps=N) or plain, not {kind!r}"
            )
        if (kind == "plain") == self.conditioned:
            raise DiffclassError(
                "this is a plain baseline network: use plain"
                if not self.conditioned
                else "plain is for baseline networks; this DiDiCM model samples with cp or cl"
            )
        entry = SAMPLERS.get(kind)
        return entry.build(entry.parse(raw)[0])

    def images_per_pass(self) -> int:
        return self.batch_size

    def identity(self) -> dict:
        """The model and the seed, which (with each image's id) seeds the CL sampler's chains."""
        return dict(model_identity(self, self.weights), seed=self.seed, loss=None, grid=None, batch_size=None)

    def logits_fn(self, strategy, image_ids: Sequence[str], eot: int = 0):
        """images in [-1, 1] -> log class probabilities with gradients: the plain twin's log-softmax or the CP
        sampler's posterior, both deterministic (`eot` changes nothing); CL draws labels, which have no gradient."""
        spec = self.strategy(strategy)
        if spec.sampler == "cl":
            raise DiffclassError("cl draws labels, which have no gradient; attack cp(steps=K), the same network")
        return lambda images: self.model.log_probabilities(images, spec)

    def generators(self, image_ids: Sequence[str]) -> list[torch.Generator]:
        """One random stream per image, from the seed and the image's id."""
        return [torch.Generator().manual_seed(int(json_digest([self.seed, i], 15), 16)) for i in image_ids]

    def classify(
        self, images: torch.Tensor, strategy: str | SamplerSpec | None = None, image_ids: Sequence[str] | None = None
    ) -> list[Decision]:
        """Images [B, C, H, W] in [-1, 1]; CL's chains draw from a generator of their own image (its id and the
        seed), so an image gets the same answer in any batch and any run."""
        check_batch(images, image_ids)
        spec = self.strategy(strategy)
        size = self.info.image_size
        if images.shape[-2:] != (size, size) or images.shape[1] != self.info.channels:
            raise DiffclassError(
                f"images are {list(images.shape[1:])}, the model takes [{self.info.channels}, {size}, {size}]"
            )
        began = time.perf_counter()
        ids = list(image_ids) if image_ids is not None else [content_id(image) for image in images]
        posterior = self.model.posterior(images, spec, self.generators(ids))
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
                )
            )
        return decisions


@MODEL_KINDS.register("didicm", help="a DiDiCM or plain-twin network (didicm.json + model.safetensors)")
def _load(ref: ModelRef, *, seed: int = 0, batch_size: int = 256, **diffusion_options) -> DiDiCMClassifier:
    """Options that only mean something to a diffusion classifier (a loss, a grid, a tree…) are refused by name."""
    given = [k for k, v in diffusion_options.items() if v is not None and k not in ("device", "dtype")]
    if given:
        raise DiffclassError(f"{', '.join(given)} apply to diffusion models, not to the DiDiCM model {ref.name}")
    return DiDiCMClassifier.load(ref, seed=seed, batch_size=batch_size)
