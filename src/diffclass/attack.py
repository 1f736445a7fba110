"""Adversarial attacks, the way the field runs them: torchattacks' PGD (ℓ∞, ℓ2), APGD and AutoAttack's `rand`
version, on a classifier's differentiable stand-in (`logits_fn`: for a diffusion model, −mean error over K fixed
slots / temperature, gradients through every class's network call; DiDiCM's CP posterior; the plain twin's
softmax). Robust accuracy is then the classifier's own decision on the attacked images, with the same strategy
and image ids, so what is reported is what `classify` answers.

torchattacks declares torchvision (which pins another torch) and an old requests but imports neither, so it is
installed with `pip install --no-deps torchattacks`; `diffclass attack` says so when it is missing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from diffclass.data.base import ImageDataset
from diffclass.errors import DiffclassError
from diffclass.files import read_json, write_text_atomic
from diffclass.records import json_digest
from diffclass.registry import Registry

ATTACKS = Registry("attack")  # name -> build(options, model, eps, steps, classes, seed)
INSTALL = "pip install --no-deps torchattacks"


def _torchattacks():
    try:
        import torchattacks
    except ImportError:
        raise DiffclassError(f"attacks need torchattacks: {INSTALL} (it imports no torchvision)") from None
    return torchattacks


@ATTACKS.register("pgd-linf", help="PGD in an ℓ∞ ball, random start, step 2.5 eps / steps (Madry et al.)")
def _pgd_linf(options, model, eps, steps, classes, seed):
    return _torchattacks().PGD(model, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True)


@ATTACKS.register("pgd-l2", help="PGD in an ℓ2 ball, random start, step 2.5 eps / steps")
def _pgd_l2(options, model, eps, steps, classes, seed):
    return _torchattacks().PGDL2(model, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True)


@ATTACKS.register("apgd-ce", help="APGD on the cross-entropy, ℓ∞ (Croce & Hein), step size adapted", subsets=True)
def _apgd_ce(options, model, eps, steps, classes, seed):
    return _torchattacks().APGD(model, norm="Linf", eps=eps, steps=steps, seed=seed, loss="ce")


@ATTACKS.register("apgd-dlr", help="APGD on the difference-of-logits ratio, ℓ∞ (needs 3+ classes)", subsets=True)
def _apgd_dlr(options, model, eps, steps, classes, seed):
    if classes < 3:
        raise DiffclassError("apgd-dlr needs at least 3 classes")
    return _torchattacks().APGD(model, norm="Linf", eps=eps, steps=steps, seed=seed, loss="dlr")


@ATTACKS.register(
    "autoattack",
    help="AutoAttack's `rand` version: APGD-CE, then APGD-DLR on what survives, 20 EOT draws a step, ℓ∞",
    subsets=True,
)
def _autoattack(options, model, eps, steps, classes, seed):
    """torchattacks' composition of the `rand` version, built here so that --steps reaches both APGD runs (its
    AutoAttack class fixes them at 10; the original runs 100)."""
    if classes < 3:
        raise DiffclassError("autoattack runs APGD-DLR, which needs at least 3 classes")
    ta = _torchattacks()
    return ta.MultiAttack(
        [
            ta.APGD(model, norm="Linf", eps=eps, steps=steps, seed=seed, loss=loss, eot_iter=20, n_restarts=1)
            for loss in ("ce", "dlr")
        ]
    )


def parse_eps(text: str | float) -> float:
    """`8/255`, `0.5` -> a finite budget > 0, in units of [0, 1] pixels."""
    try:
        value = float(text) if not isinstance(text, str) or "/" not in text else _ratio(text)
    except (ValueError, ZeroDivisionError):
        raise DiffclassError(f"--eps takes a number or a fraction such as 8/255, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise DiffclassError(f"--eps must be a finite number > 0, got {text!r}")
    return value


def _ratio(text: str) -> float:
    top, bottom = text.split("/", 1)
    return float(top) / float(bottom)


class _Surrogate(torch.nn.Module):
    """What torchattacks attacks: [0, 1] images -> logits through the model's value range."""

    def __init__(self, logits: Callable[[torch.Tensor], torch.Tensor], value_range):
        super().__init__()
        self.logits = logits
        self.low, self.high = (float(v) for v in value_range)
        self.anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # torchattacks reads its device

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # in float64: a confident model's softmax saturates in float32 and its cross-entropy gradient vanishes
        return self.logits(self.low + (self.high - self.low) * images).double()


@dataclass
class AttackSettings:
    """Everything that changes a row: a record made under other settings is never reused."""

    model: str
    weights: str
    strategy: str
    attack: str
    eps: float
    steps: int
    eot: int
    seed: int

    @property
    def digest(self) -> str:
        return json_digest(asdict(self))


@dataclass
class AttackRun:
    """Per image: its id, label, the decision on the clean and on the attacked image, the perturbation's ℓ∞ and ℓ2
    size in [0, 1] pixels, and the norm of the surrogate's input gradient at the clean image."""

    settings: AttackSettings
    rows: list[dict] = field(default_factory=list)

    @property
    def images(self) -> int:
        return len(self.rows)

    def _rate(self, key: str) -> float:
        return sum(r[key] == r["label"] for r in self.rows) / max(1, self.images)

    @property
    def clean_top1(self) -> float:
        return self._rate("clean")

    @property
    def robust_top1(self) -> float:
        return self._rate("attacked")

    @property
    def gradient_nonzero(self) -> float:
        """Share of images whose surrogate has a non-zero input gradient (0 would mean masked gradients)."""
        return sum(r["gradient_norm"] > 0 for r in self.rows) / max(1, self.images)

    def summary(self) -> dict:
        n = max(1, self.images)
        return dict(
            asdict(self.settings),
            images=self.images,
            clean_top1=round(self.clean_top1, 4),
            robust_top1=round(self.robust_top1, 4),
            robust_standard_error=round(math.sqrt(self.robust_top1 * (1 - self.robust_top1) / n), 4),
            gradient_nonzero=round(self.gradient_nonzero, 4),
            max_linf=round(max((r["linf"] for r in self.rows), default=0.0), 6),
            max_l2=round(max((r["l2"] for r in self.rows), default=0.0), 6),
        )

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps(dict(summary=self.summary(), rows=self.rows), indent=1) + "\n")

    @classmethod
    def resumed(cls, path: Path | None, settings: AttackSettings) -> AttackRun:
        """The rows an earlier run under the same settings wrote to `path`, else none."""
        if path is None or not path.exists():
            return cls(settings)
        saved = read_json(path, "the attack results")
        summary = saved.get("summary") if isinstance(saved, dict) else None
        rows = saved.get("rows") if isinstance(saved, dict) else None
        if not isinstance(summary, dict) or not isinstance(rows, list):
            raise DiffclassError(f"{path} is not an attack result; pass another --json")
        if any(summary.get(k) != v for k, v in asdict(settings).items()):
            raise DiffclassError(f"{path} holds an attack with other settings; pass another --json")
        return cls(settings, [r for r in rows if isinstance(r, dict) and {"id", "label", "attacked"} <= set(r)])


def attack(
    classifier,
    data: ImageDataset,
    name: str,
    eps: float,
    steps: int = 10,
    strategy: str | None = None,
    eot: int = 0,
    batch: int = 16,
    seed: int = 0,
    out: Path | None = None,
) -> Iterator[AttackRun]:
    """Attack every image of `data` in batches, yielding the run after each (saved to `out` first, so an
    interrupted run loses at most a batch; a rerun with the same settings goes on from what `out` holds)."""
    entry = ATTACKS.get(name)
    if steps < 1 or eot < 0 or batch < 1:
        raise DiffclassError("--steps and --batch must be at least 1 and --eot at least 0")
    spec = classifier.strategy(strategy)
    settings = AttackSettings(classifier.model_name, classifier.weights, spec.name, name, float(eps), steps, eot, seed)
    classifier.logits_fn(spec, [])  # refuses, in one line, a model or strategy without a gradient
    run = AttackRun.resumed(out, settings)
    done = {r["id"] for r in run.rows}
    todo = [i for i, image_id in enumerate(data.ids) if image_id not in done]
    value, classes = classifier.info.value_range, len(classifier.class_names)
    low, high = (float(v) for v in value)
    if not todo:
        yield run  # everything was attacked before
    for start in range(0, len(todo), batch):
        index = torch.tensor(todo[start : start + batch])
        images, labels = data.images[index], data.labels[index]
        ids = [data.ids[i] for i in index.tolist()]
        logits = classifier.logits_fn(spec, ids, eot)
        model = _Surrogate(logits, value)
        clean01 = ((images - low) / (high - low)).clamp(0, 1).contiguous()  # torchattacks' l2 steps .view() it
        gradient = _input_gradient(model, clean01, labels)
        # APGD and AutoAttack call the model again on the images it still classifies right; a stand-in whose
        # noise is its images' own (keyed by id) holds for its whole batch only, so those attack one image a time
        one_by_one = entry.extra.get("subsets", False) and getattr(logits, "by_id", False)
        pieces = []
        for part in [[k] for k in range(len(ids))] if one_by_one else [list(range(len(ids)))]:
            part_ids = [ids[k] for k in part]
            stand_in = model if len(part) == len(ids) else _Surrogate(classifier.logits_fn(spec, part_ids, eot), value)
            with torch.random.fork_rng():  # the random start draws from torch's global stream: seeded per part
                torch.manual_seed(int(json_digest([seed, part_ids], 15), 16))
                pieces.append(entry.build({}, stand_in, eps, steps, classes, seed)(clean01[part], labels[part]))
        attacked01 = torch.cat(pieces)
        attacked = low + (high - low) * attacked01.detach()
        clean_decisions = classifier.classify(images, spec, ids)
        attacked_decisions = classifier.classify(attacked, spec, ids)
        delta = (attacked01 - clean01).detach().flatten(1)
        for k, image_id in enumerate(ids):
            run.rows.append(
                dict(
                    id=image_id,
                    label=int(labels[k]),
                    clean=clean_decisions[k].label,
                    attacked=attacked_decisions[k].label,
                    linf=round(float(delta[k].abs().max()), 6),
                    l2=round(float(delta[k].norm()), 6),
                    gradient_norm=float(gradient[k]),
                )
            )
        if out is not None:
            run.save(out)
        yield run


def _input_gradient(model: torch.nn.Module, images01: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """‖∂ cross-entropy / ∂ image‖ per image at the clean images: zero everywhere means a masked gradient."""
    images01 = images01.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(model(images01), labels, reduction="sum")
    (gradient,) = torch.autograd.grad(loss, images01)
    return gradient.flatten(1).norm(dim=1)
