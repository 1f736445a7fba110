"""Tuning once per model: replay a family of strategies on one error table of training images and keep the Pareto
front of top-1 against NFEs, stored with the model, so `auto` can pick a fast strategy for any budget.

The table holds every class (and tree node) on the first `slots` slots of the model's grid under its noise bank,
so every replayed strategy ranks and counts exactly as a live run would; test images are never used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from diffclass.classifier import Classifier
from diffclass.data.base import ImageDataset
from diffclass.errors import DiffclassError
from diffclass.hub import weights_digest
from diffclass.progress import progress_bar
from diffclass.replay import ErrorTable


def candidate_specs(num_classes: int, slots: int, tree: bool) -> list[str]:
    """The family a tuning replays: exhaustive budgets, two- and three-stage adaptive schedules, sequential
    t-tests, middle-out beams, and (with a tree) dynamic HDC descents into small final stages."""
    ns = [n for n in (2, 4, 8, 16, 32, 64, 128) if n <= slots]
    keeps = sorted({k for k in (2, 3, 5, max(2, num_classes // 20), max(2, num_classes // 10), max(2, num_classes // 5))
                    if k < num_classes})  # fmt: skip
    specs = [f"exhaustive(n={n})" for n in ns]
    for k in keeps:
        for first in (1, 2, 4, 8):
            specs += [f"adaptive(keep={k},1;n={first},{n})" for n in ns if n > first]
            specs += [f"adaptive(keep={k},{k2},1;n={first},{mid},{n})" for k2 in (2, 3) if k2 < k
                      for mid in ns if first < mid for n in ns if n > mid]  # fmt: skip
    specs += [f"sequential(p={p};min={m};max={slots};step={s})"
              for p in (0.001, 0.01, 0.05) for m in (2, 4, 8) if m <= slots for s in (1, 2, 4)]  # fmt: skip
    specs += [f"beam(b={b};t_s={t};start=middle-out)" for b in (2, 4, 8) for t in (4, 8)]
    if tree:
        specs += [f"hdc(rule=within-std;m={m};slots={s};final=adaptive(keep={k},1;n={f},{n}))"
                  for m in (1, 2, 3) for s in (2, 4) if s <= slots for k in keeps[-2:] for f in (2, 4)
                  for n in ns if f < n <= 32]  # fmt: skip
    return list(dict.fromkeys(specs))


def pareto(points: Sequence[dict]) -> list[dict]:
    """The points no other point beats on both top-1 (higher) and NFEs (lower), cheapest first."""
    front, best = [], -math.inf
    for point in sorted(points, key=lambda p: (p["nfe_per_image"], -p["top1"])):
        if point["top1"] > best:
            front.append(point)
            best = point["top1"]
    return front


def tune(
    classifier: Classifier,
    data: ImageDataset,
    slots: int | None = None,
    specs: Sequence[str] | None = None,
    progress: bool = True,
) -> dict:
    """The model's front on `data` (training images): what `auto` reads. `slots` defaults to the grid's size."""
    slots = slots or classifier.scorer.grid.size
    if slots > classifier.scorer.grid.size:
        raise DiffclassError(f"--slots {slots} is more than the model's grid of {classifier.scorer.grid.size}")
    table = ErrorTable.compute(classifier, data, slots=slots, progress=progress)
    specs = list(specs or candidate_specs(len(classifier.class_names), slots, classifier.tree is not None))
    macs = classifier.macs_per_call
    points = []
    with progress_bar(progress) as bar:
        task = bar.add_task("replay", total=len(specs), status="")
        for spec in specs:
            bar.advance(task)
            try:
                strategy = classifier.strategy(spec)
                top1, nfe = table.top1(strategy)
            except DiffclassError:  # asks for more slots than the table holds (a beam that did not stop)
                continue
            points.append(dict(spec=strategy.name, top1=round(top1, 4), nfe_per_image=round(nfe, 2),
                               gmacs_per_image=round(nfe * macs / 1e9, 4)))  # fmt: skip
    reference = len(classifier.class_names) * slots  # exhaustive on every slot the table holds
    return dict(
        weights=weights_digest(classifier.model_name), images=len(data), split="train",
        seed=classifier.scorer.seed, grid=repr(classifier.scorer.grid), slots=slots, reference_nfe=reference,
        candidates=len(specs), points=pareto(points),
    )  # fmt: skip
