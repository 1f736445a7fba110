"""Tuning once per model: replay a family of strategies on one error table of images the model never trained on
and keep the Pareto front of top-1 against compute, stored with the model with exhaustive's top-1 on the same
table and, per point, the images it gets right that exhaustive gets wrong and the reverse (what `auto`'s paired
bound on the loss rests on), so `auto` can pick a fast strategy for any budget.

The images come from the part of the training data the model's training held out (`diffclass train --hold-out`)
or from images the user names: a model ranks the images it trained on nearly perfectly, so every cheap schedule
looks safe on them and then loses points on new images. The table holds every class (and tree node) on the first
`slots` slots of the model's grid under its noise bank, so every replayed strategy ranks and counts exactly as a
live run would; test images are never used. With a prefilter model, its rankings of the same images are computed
once and the family gains prefilter compositions; the prefilter must not have trained on them either
(`--prefilter-ranker`, a twin trained with the same `--hold-out`). The front is kept on compute (GMACs per
image), which prices a filter's calls and a pruned network's cheaper ones.
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
from diffclass.strategies.families import candidate_specs, prefilter_specs


def cache_folder() -> Path:
    """Where error tables are kept between runs (a rerun of `tune` after an interruption starts from the table)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "diffclass" / "tables"


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
    info = model.info
    if info.dataset != data.name:
        return
    held_out = set((info.training or {}).get("held_out", ()))
    if not held_out or not held_out.issuperset(data.hold_out_keys):
        raise DiffclassError(
            f"{name} may have been trained on these tuning images (it holds none of them out), so it would rank them "
            "better than new ones: pass --prefilter-ranker, its twin trained with --hold-out"
        )


def tune(
    classifier: Classifier,
    data: ImageDataset,
    slots: int | None = None,
    specs: Sequence[str] | None = None,
    prefilter: str | None = None,
    cache: str | Path | None = None,
    progress: bool = True,
    prefilter_ranker: str | None = None,
    tuned_on: str | None = None,
) -> dict:
    """The model's front on `data` (images it never trained on, named by `tuned_on`): what `auto` reads. `slots`
    defaults to the grid's size; `prefilter` names a cheap model whose top-k compositions join the family, priced
    and ranked by `prefilter_ranker` (default: itself), which must not have been trained on `data`; the table is
    kept under `cache`."""
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
    reference_spec = classifier.strategy(f"exhaustive(n={slots})").name  # every slot the table holds
    reference = table.correct(classifier.strategy(reference_spec))
    points = []
    with progress_bar(progress) as bar:
        task = bar.add_task("replay", total=len(specs), status="")
        for spec in specs:
            bar.advance(task)
            try:
                strategy = classifier.strategy(spec)
                run = classifier.replay(table, filters, strategy)
            except DiffclassError:  # asks for more slots than the table holds (a beam that did not stop)
                continue
            points.append(
                dict(
                    spec=strategy.name,
                    top1=round(run.top1, 4),
                    nfe_per_image=round(run.nfe_per_image, 2),
                    gmacs_per_image=round(run.gmacs_per_image, 4),
                    **run.against(reference),
                )
            )
    reference_nfe = classes * slots
    # a pruned model is priced against its unpruned original
    original_macs = classifier.info.pruning.get("macs_before", classifier.macs_per_call)
    return dict(
        weights=classifier.weights,
        images=len(data),
        tuned_on=tuned_on or data.name,
        seed=classifier.scorer.seed,
        grid=repr(classifier.scorer.grid),
        slots=slots,
        reference_spec=reference_spec,
        reference_nfe=reference_nfe,
        reference_gmacs=round(reference_nfe * original_macs / 1e9, 4),
        reference_top1=round(reference.top1, 4),
        prefilter=prefilter,
        prefilter_ranker=prefilter_ranker and weights_digest(prefilter_ranker),
        candidates=len(specs),
        points=pareto(points),
    )
