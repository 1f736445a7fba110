"""Tuning once per model: replay a family of strategies on one error table of training images and keep the Pareto
front of top-1 against NFEs, stored with the model with exhaustive's top-1 on the same table (what `auto`'s
allowed loss counts from), so `auto` can pick a fast strategy for any budget.

The table holds every class (and tree node) on the first `slots` slots of the model's grid under its noise bank,
so every replayed strategy ranks and counts exactly as a live run would; test images are never used. With a
prefilter model, its rankings of the same images are computed once and the family gains prefilter compositions.
A prefilter trained on the tuning images would rank them better than it ranks new ones (a plain classifier gets
nearly all of glyphs' training images right and 94% of its test images), so its rankings come from a twin trained
without them (`--prefilter-ranker`, trained with `--hold-out`), and the table is made of the images it never saw.
The front is kept on compute (GMACs per image), which prices a filter's calls and a pruned network's cheaper ones.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from diffclass.classifier import Classifier
from diffclass.data.base import ImageDataset
from diffclass.errors import DiffclassError
from diffclass.hub import weights_digest
from diffclass.progress import progress_bar
from diffclass.replay import ErrorTable
from diffclass.strategies import Prefilter

PREFILTER_KS = (5, 10, 20)


def cache_folder() -> Path:
    """Where error tables are kept between runs (a rerun of `tune` after an interruption starts from the table)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "diffclass" / "tables"


def slot_counts(slots: int) -> list[int]:
    """Stage sizes about √2 apart (2, 3, 4, 6, 8, 12, …): powers of two alone leave gaps of 2× in cost between
    neighbouring schedules, and the cheapest schedule within a loss often sits in one."""
    return [n for n in (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128) if n <= slots]


def candidate_specs(num_classes: int, slots: int, tree: bool) -> list[str]:
    """The family a tuning replays: exhaustive budgets, two- and three-stage adaptive schedules, sequential
    t-tests, middle-out beams, and (with a tree) dynamic HDC descents into small final stages."""
    ns = slot_counts(slots)
    keeps = sorted({k for k in (2, 3, 5, *(max(2, num_classes // d) for d in (20, 10, 7, 5))) if k < num_classes})
    specs = [f"exhaustive(n={n})" for n in ns]
    for k in keeps:
        for first in (1, 2, 3, 4, 6, 8):
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


def prefilter_specs(by: str, num_classes: int, slots: int) -> list[str]:
    """Prefilter compositions: the filter's top k, then exhaustive, a two-stage adaptive or a sequential test."""
    specs = []
    for k in (k for k in PREFILTER_KS if k < num_classes):
        thens = [f"exhaustive(n={n})" for n in (4, 8, 16, 32, 64) if n <= slots]
        thens += [f"adaptive(keep={keep},1;n={first},{n})" for keep in (2, 3, 5) if keep < k for first in (2, 4)
                  for n in (8, 16, 32) if first < n <= slots]  # fmt: skip
        thens += [f"sequential(p={p};min=4;max={slots};step=2)" for p in (0.01, 0.05)]
        specs += [f"prefilter(by={by};k={k};then={then})" for then in thens]
    return specs


def pareto(points: Sequence[dict]) -> list[dict]:
    """The points no other point beats on both top-1 (higher) and compute (GMACs per image, lower), cheapest
    first (for one model, NFEs order points the same way)."""
    front, best = [], -math.inf
    for point in sorted(points, key=lambda p: (p["gmacs_per_image"], p["nfe_per_image"], -p["top1"])):
        if point["top1"] > best:
            front.append(point)
            best = point["top1"]
    return front


@dataclass
class FilterRun:
    """A prefilter's rankings of the table's images, computed once, with what its calls cost per image."""

    rankings: list[list[int]]
    nfe_per_image: float
    macs_per_call: int

    @classmethod
    def of(cls, sieve, data: ImageDataset) -> FilterRun:
        decisions = sieve.classify(data.images, None, data.ids)
        return cls([d.ranking for d in decisions], sum(d.nfe for d in decisions) / len(decisions), sieve.macs_per_call)


def unseen_by(model, name: str, data: ImageDataset) -> None:
    """Refuse a prefilter ranker that was trained on any of the tuning images: its tuned accuracy would not hold
    on new images. Models trained on another dataset (or none: zero-shot filters) pass."""
    info = getattr(model, "info", None)
    if info is None or info.dataset != data.name:
        return
    held_out = set((info.training or {}).get("held_out", ()))
    if not held_out or not held_out.issuperset(data.hold_out_keys):
        raise DiffclassError(
            f"{name} may have been trained on these tuning images (it holds none of them out), so it would rank them "
            "better than new ones: pass --prefilter-ranker, its twin trained with --hold-out"
        )


def replay_cost(table: ErrorTable, strategy, macs_per_call: int, filters: dict[str, FilterRun] | None = None
                ) -> tuple[float, float, float]:  # fmt: skip
    """(top-1, NFEs per image, GMACs per image) of a strategy replayed on the table, as a live run gives them; a
    prefilter's stage ranks the filter's top k per image and its calls are added to the cost."""
    if isinstance(strategy, Prefilter):
        run = (filters or {}).get(strategy.by)
        if run is None:
            raise DiffclassError(f"no rankings of prefilter {strategy.by} for this table")
        top1, nfe = table.top1(strategy.then, [r[: strategy.k] for r in run.rankings])
        return top1, nfe + run.nfe_per_image, (nfe * macs_per_call + run.nfe_per_image * run.macs_per_call) / 1e9
    top1, nfe = table.top1(strategy)
    return top1, nfe, nfe * macs_per_call / 1e9


def tune(
    classifier: Classifier,
    data: ImageDataset,
    slots: int | None = None,
    specs: Sequence[str] | None = None,
    prefilter: str | None = None,
    cache: str | Path | None = None,
    progress: bool = True,
    prefilter_ranker: str | None = None,
) -> dict:
    """The model's front on `data` (training images): what `auto` reads. `slots` defaults to the grid's size;
    `prefilter` names a cheap model whose top-k compositions join the family, priced and ranked by
    `prefilter_ranker` (default: itself), which must not have been trained on `data`; the table is kept under
    `cache`."""
    slots = slots or classifier.scorer.grid.size
    if slots > classifier.scorer.grid.size:
        raise DiffclassError(f"--slots {slots} is more than the model's grid of {classifier.scorer.grid.size}")
    classes = len(classifier.class_names)
    specs = list(specs or candidate_specs(classes, slots, classifier.tree is not None))
    filters = {}
    if prefilter:
        ranker_name = prefilter_ranker or prefilter
        ranker = classifier.prefilter_model(ranker_name)
        unseen_by(ranker, ranker_name, data)  # before the table's hours of work
        specs += prefilter_specs(prefilter, classes, slots)
        filters[prefilter] = FilterRun.of(ranker, data)
    table = ErrorTable.cached(cache or cache_folder(), classifier, data, slots=slots, progress=progress)
    points = []
    with progress_bar(progress) as bar:
        task = bar.add_task("replay", total=len(specs), status="")
        for spec in specs:
            bar.advance(task)
            try:
                strategy = classifier.strategy(spec)
                top1, nfe, gmacs = replay_cost(table, strategy, classifier.macs_per_call, filters)
            except DiffclassError:  # asks for more slots than the table holds (a beam that did not stop)
                continue
            points.append(dict(spec=strategy.name, top1=round(top1, 4), nfe_per_image=round(nfe, 2),
                               gmacs_per_image=round(gmacs, 4)))  # fmt: skip
    reference = classes * slots  # exhaustive on every slot the table holds
    reference_top1, _ = table.top1(classifier.strategy(f"exhaustive(n={slots})"))
    # a pruned model is priced against its unpruned original
    original_macs = classifier.info.pruning.get("macs_before", classifier.macs_per_call)
    return dict(
        weights=weights_digest(classifier.model_name), images=len(data), split="train",
        seed=classifier.scorer.seed, grid=repr(classifier.scorer.grid), slots=slots, reference_nfe=reference,
        reference_gmacs=round(reference * original_macs / 1e9, 4), reference_top1=round(reference_top1, 4),
        prefilter=prefilter, prefilter_ranker=prefilter_ranker and weights_digest(prefilter_ranker),
        candidates=len(specs), points=pareto(points),
    )  # fmt: skip
