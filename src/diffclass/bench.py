"""Many strategies on one dataset, one model, one seed, in one process: the accuracy-vs-compute comparison."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import diffclass.evaluation
from diffclass.data.base import ImageDataset
from diffclass.evaluation import EvalSummary, ImageClassifier, evaluate
from diffclass.records import RecordStore
from diffclass.registry import parse_spec
from diffclass.strategies import needs_tree
from diffclass.strategies.families import SWEEP_SPECS
from diffclass.timesteps import TimestepGrid

logger = logging.getLogger(__name__)

KINDS = ("exhaustive", "adaptive")  # the original method's runs, whose costs are the baselines


@dataclass
class Baselines:
    """On one timestep grid: E*, the best exhaustive top-1; C_E / C_A, the NFEs/image of the cheapest exhaustive /
    adaptive run within 0.5 points of it (None when no run of that kind gets there)."""

    grid: str  # the runs' `t` option, or "" for the model's own grid
    best_exhaustive_top1: float
    cheapest_exhaustive_nfe: float | None
    cheapest_adaptive_nfe: float | None

    @property
    def grid_label(self) -> str:
        """How the printed line and the plot name this grid."""
        return f"timesteps {self.grid}" if self.grid else "the model's timesteps"


def on_grid(spec: str, t_range: str) -> str:
    """The spec with its own timestep range, e.g. `exhaustive(n=16)` -> `exhaustive(n=16;t=0-999)`."""
    kind, options = parse_spec(spec)
    return f"{kind}({';'.join(f'{k}={v}' for k, v in {**options, 't': t_range}.items())})"


def with_original_grid(specs: Sequence[str], t_range: str) -> list[str]:
    """The original method's runs (exhaustive, adaptive) once more on `t_range`, ahead of the others, so that the
    sweep reports every baseline both on the original grid and on the model's calibrated window."""
    originals = [on_grid(s, t_range) for s in specs if parse_spec(s)[0] in KINDS]
    return originals + list(specs)


def run_folder(root: str | Path, strategy_name: str) -> Path:
    """Where one run's records live under `bench --out`: a readable slug of the strategy plus a short hash, since
    two names may slug alike."""
    slug = re.sub(r"[^A-Za-z0-9.=-]+", "_", strategy_name).strip("_")
    return Path(root) / f"{slug}-{hashlib.sha256(strategy_name.encode()).hexdigest()[:6]}"


def bench_specs(
    classifier, specs: Sequence[str] | None = None, sweep: bool = False, original_grid: bool = False
) -> list[str]:
    """The runs of a bench: `specs`, else the model's standard ones (the budget sweep with `sweep`); with `sweep` or
    `original_grid` on a calibrated model, the original method's runs once more on the full timestep range."""
    if classifier.scorer is None:  # no timestep grid to sweep: the model's own runs
        return list(specs or classifier.bench_specs)
    specs = list(specs or (SWEEP_SPECS if sweep else classifier.bench_specs))
    if sweep or original_grid:
        full = TimestepGrid(0, len(classifier.backbone.alphas_cumprod) - 1).range_text
        if classifier.scorer.grid.range_text != full:  # a calibrated window: the original grid's baselines too
            specs = with_original_grid(specs, full)
    return specs


def run_bench(
    classifier: ImageClassifier,
    dataset: ImageDataset,
    specs,
    limit: int | None = None,
    store_for: Callable[[str], RecordStore | None] = lambda strategy_name: None,
    on_result: Callable[[list[EvalSummary]], None] = lambda summaries: None,
) -> list[EvalSummary]:
    """Every spec in turn. `store_for` gives a run its resumable record store (images already recorded are not
    redone), `on_result` sees the summaries after each run, so an interrupted bench keeps what it finished."""
    runnable = []
    for spec in specs:
        if needs_tree(spec) and classifier.tree is None:
            logger.warning(f"skipping {spec}: the model has no label tree (pass --tree)")
        else:
            runnable.append(classifier.strategy(spec))
    if runnable:  # untimed: lazy initialisation should not be charged to the first run
        classifier.classify(dataset.images[:1], runnable[0], dataset.ids[:1])
        warn_if_long_bench(classifier, dataset, runnable, min(limit or len(dataset), len(dataset)))
    summaries = []
    for strategy in runnable:
        with store_for(strategy.name) or nullcontext() as store:
            summaries.append(evaluate(classifier, dataset, strategy, limit=limit, store=store))
        on_result(summaries)
    return summaries


def warn_if_long_bench(classifier, dataset: ImageDataset, strategies: Sequence, images: int) -> None:
    """Before the first run, one image through each strategy, timed: one line when the whole bench would take
    over an hour at that pace, naming the strategy that costs most, while there is still time to stop it."""
    paces = []
    for strategy in strategies:
        began = time.perf_counter()
        decision = classifier.classify(dataset.images[:1], strategy, dataset.ids[:1])[0]
        paces.append((time.perf_counter() - began, strategy.name, decision.nfe))
    expected = sum(seconds for seconds, _, _ in paces) * images
    if expected > diffclass.evaluation.LONG_RUN:  # read at call time: one threshold for every run
        _, name, nfe = max(paces)
        logger.warning(
            f"bench: about {expected / 3600:.1f} h for {images} images and {len(strategies)} strategies at one "
            f"image's pace; the costliest, {name}, makes {nfe:,} network calls per image; --limit N or fewer "
            "--strategy options shorten it"
        )


def baselines(summaries: list[EvalSummary], tolerance: float = 0.005) -> list[Baselines]:
    """E*, C_E and C_A for every timestep grid the exhaustive runs used."""
    grids: dict[str, list[EvalSummary]] = {}
    for s in summaries:
        grids.setdefault(parse_spec(s.strategy)[1].get("t", ""), []).append(s)
    found = []
    for grid, runs in grids.items():
        exhaustive = [s for s in runs if s.strategy.startswith("exhaustive")]
        if not exhaustive:
            continue
        best = max(s.top1 for s in exhaustive)
        found.append(Baselines(grid, best, *(_cheapest(runs, kind, best - tolerance) for kind in KINDS)))
    return found


def _cheapest(runs: list[EvalSummary], kind: str, at_least: float) -> float | None:
    good = [s.nfe_per_image for s in runs if s.strategy.startswith(kind) and s.top1 >= at_least]
    return min(good) if good else None
