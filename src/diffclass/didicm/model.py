"""A trained DiDiCM (or plain baseline) classifier: DiDiRN weights + config, saved as JSON + safetensors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from diffclass.didicm.network import HEADS, DiDiRN, DiDiRNConfig
from diffclass.didicm.process import SCHEDULES
from diffclass.didicm.samplers import Posterior, SamplerSpec, sample_cl, sample_cp
from diffclass.errors import DiffclassError
from diffclass.files import read_json, write_text_atomic
from diffclass.hub import DIDICM_FILE, check_weights_fit, classes_and_size_problem, is_safetensors, resolve_model_folder

CONFIG_FILE = DIDICM_FILE
WEIGHTS_FILE = "model.safetensors"
MAX_PARAMETERS = 200_000_000  # the embedded networks hold about a million; a config past this is refused unbuilt


def _int_in(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def meta_problem(meta: dict) -> str | None:
    """What is wrong with a didicm.json (types, ranges, consistency, size), found before anything is allocated."""
    names, network = meta.get("class_names"), meta.get("network")
    problem = classes_and_size_problem(names, meta.get("image_size"), min_classes=2, min_size=4)
    if problem:
        return problem
    if not isinstance(network, dict):
        return "network must be an object"
    unknown = set(network) - set(DiDiRNConfig.__dataclass_fields__)
    if unknown:
        return f"network has unknown fields {sorted(unknown)}"
    checks = dict(num_classes=(2, 1_000_000), in_channels=(1, 4), width=(1, 1024), embed_dim=(2, 4096))
    for key, (low, high) in checks.items():
        if key in network and not _int_in(network[key], low, high):
            return f"network.{key} must be an integer in [{low}, {high}], got {network[key]!r}"
    if network.get("num_classes") != len(names):
        return f"network.num_classes is {network.get('num_classes')!r} but there are {len(names)} class names"
    stages = network.get("blocks_per_stage", [2, 2, 2])
    if not isinstance(stages, list) or not 1 <= len(stages) <= 6 or not all(_int_in(b, 1, 16) for b in stages):
        return f"network.blocks_per_stage must be 1 to 6 integers in [1, 16], got {stages!r}"
    if not isinstance(network.get("conditioned", True), bool):
        return "network.conditioned must be true or false"
    if network.get("schedule", "loglinear") not in SCHEDULES:
        return f"network.schedule must be one of {', '.join(SCHEDULES)}, got {network.get('schedule')!r}"
    if network.get("head", "p0") not in HEADS:
        return f"network.head must be one of {', '.join(HEADS)}, got {network.get('head')!r}"
    width = network.get("width", 32)
    size = sum(b * 18 * (width * 2**i) ** 2 for i, b in enumerate(stages))  # 3x3 convolutions dominate
    if size > MAX_PARAMETERS:
        return (
            f"the network would hold about {size / 1e6:.0f}M parameters, over the bound of {MAX_PARAMETERS // 10**6}M"
        )
    if not isinstance(meta.get("training", {}), dict):
        return "training must be an object"
    return None


@dataclass
class DiDiCMModel:
    network: DiDiRN
    class_names: list[str]
    image_size: int
    dataset: str | None = None
    training: dict = field(default_factory=dict)

    def save_pretrained(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = dict(
            network=self.network.config.to_dict(),
            class_names=self.class_names,
            image_size=self.image_size,
            dataset=self.dataset,
            training=self.training,
        )
        # weights first, each file written whole then renamed in: a kill never leaves a half-written model
        partial = folder / f".{WEIGHTS_FILE}.partial"
        save_file({k: v.contiguous() for k, v in self.network.state_dict().items()}, str(partial))
        partial.replace(folder / WEIGHTS_FILE)
        write_text_atomic(folder / CONFIG_FILE, json.dumps(meta, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> DiDiCMModel:
        """A folder, or the name of an embedded model (`didicm-glyphs`, `plain-glyphs`). The JSON is validated
        before the network is built, and the weights must be safetensors that fit it tensor for tensor."""
        folder = resolve_model_folder(folder)
        if not (folder / CONFIG_FILE).exists():
            raise DiffclassError(f"{folder}: not a DiDiCM model folder (no {CONFIG_FILE})")
        meta = read_json(folder / CONFIG_FILE, "model file")
        problem = meta_problem(meta) if isinstance(meta, dict) else "the file must hold a JSON object"
        if problem:
            raise DiffclassError(f"{folder / CONFIG_FILE}: {problem}")
        network = DiDiRN(
            DiDiRNConfig(**{**meta["network"], "blocks_per_stage": tuple(meta["network"]["blocks_per_stage"])})
        )
        if not (folder / WEIGHTS_FILE).is_file() or not is_safetensors(folder / WEIGHTS_FILE):
            raise DiffclassError(f"{folder}: {WEIGHTS_FILE} is missing or not a safetensors file")
        check_weights_fit(network, folder)
        try:
            network.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        except (OSError, RuntimeError, SafetensorError) as exc:
            raise DiffclassError(f"{folder}: weights do not fit the config ({str(exc).splitlines()[0]})") from None
        return cls(
            network.eval(), meta["class_names"], meta["image_size"], meta.get("dataset"), meta.get("training", {})
        )

    def log_probabilities(self, images: torch.Tensor, spec: SamplerSpec) -> torch.Tensor:
        """log class probabilities with gradients to the images (what an attack differentiates): the plain
        baseline's log-softmax, or the log of DiDiCM-CP's posterior (a drawn anchor draws from torch's stream)."""
        if not self.network.config.conditioned:
            self.network.eval()
            return torch.log_softmax(self.network(images), dim=-1)
        return self._posterior(images, spec).probabilities.clamp_min(1e-12).log()

    @torch.no_grad()
    def posterior(
        self,
        images: torch.Tensor,
        spec: SamplerSpec = SamplerSpec("cp"),
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
    ) -> Posterior:
        """Class probabilities for a batch: the plain baseline's softmax (1 NFE), DiDiCM-CP or DiDiCM-CL as `spec`
        says (their draws come from `generator`, or from one generator per image)."""
        return self._posterior(images, spec, generator)

    def _posterior(self, images: torch.Tensor, spec: SamplerSpec, generator=None) -> Posterior:
        """`posterior` with gradients kept (what `log_probabilities` differentiates)."""
        self.network.eval()
        if not self.network.config.conditioned:
            probabilities = torch.softmax(self.network(images), dim=-1)
            return Posterior(probabilities, 1, [probabilities], [0.0])
        k, schedule = len(self.class_names), self.network.config.schedule
        if spec.sampler == "cp":
            score_fn = lambda c, s: self.network(images, c, s)  # noqa: E731
            return sample_cp(score_fn, len(images), k, spec.steps, spec.mode, spec.update, generator, schedule)
        if spec.sampler == "cl":
            repeated = images.repeat_interleave(spec.chains, dim=0)
            score_fn = lambda c, s: self.network(repeated, c, s)  # noqa: E731
            return sample_cl(score_fn, len(images), k, spec.chains, spec.steps, generator, spec.update, schedule)
        raise DiffclassError(f"unknown DiDiCM sampler {spec.sampler!r}; choose cp or cl")
