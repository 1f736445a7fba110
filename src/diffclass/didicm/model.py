"""A trained DiDiCM (or plain baseline) classifier: DiDiRN weights + config, saved as JSON + safetensors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from diffclass.didicm.network import DiDiRN, DiDiRNConfig
from diffclass.didicm.samplers import Posterior, sample_cl, sample_cp
from diffclass.errors import DiffclassError
from diffclass.hub import DIDICM_FILE, resolve_model_folder

CONFIG_FILE = DIDICM_FILE
WEIGHTS_FILE = "model.safetensors"


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
        meta = dict(network=self.network.config.to_dict(), class_names=self.class_names, image_size=self.image_size,
                    dataset=self.dataset, training=self.training)  # fmt: skip
        (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        save_file({k: v.contiguous() for k, v in self.network.state_dict().items()}, str(folder / WEIGHTS_FILE))

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> DiDiCMModel:
        """A folder, or the name of an embedded model (`didicm-glyphs`, `plain-glyphs`)."""
        folder = resolve_model_folder(folder)
        try:
            meta = json.loads((folder / CONFIG_FILE).read_text())
            config = DiDiRNConfig(**{**meta["network"], "blocks_per_stage": tuple(meta["network"]["blocks_per_stage"])})
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DiffclassError(f"{folder}: not a DiDiCM model folder ({exc})") from None
        network = DiDiRN(config)
        try:
            network.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        except (OSError, RuntimeError) as exc:
            raise DiffclassError(f"{folder}: weights do not fit the config ({str(exc).splitlines()[0]})") from None
        return cls(
            network.eval(), meta["class_names"], meta["image_size"], meta.get("dataset"), meta.get("training", {})
        )

    @torch.no_grad()
    def posterior(self, images: torch.Tensor, sampler: str = "cp", steps: int = 8, chains: int = 16,
                  generator: torch.Generator | None = None) -> Posterior:  # fmt: skip
        """Class probabilities for a batch: the plain baseline's softmax (1 NFE), DiDiCM-CP or DiDiCM-CL."""
        self.network.eval()
        if not self.network.config.conditioned:
            probabilities = torch.softmax(self.network(images), dim=-1)
            return Posterior(probabilities, 1, [probabilities], [0.0])
        k = len(self.class_names)
        if sampler == "cp":
            return sample_cp(lambda c, s: self.network(images, c, s), len(images), k, steps)
        if sampler == "cl":
            repeated = images.repeat_interleave(chains, dim=0)
            return sample_cl(lambda c, s: self.network(repeated, c, s), len(images), k, chains, steps, generator)
        raise DiffclassError(f"unknown DiDiCM sampler {sampler!r}; choose cp or cl")
