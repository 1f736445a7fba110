"""Many strategies on one dataset, one model, one seed, in one process: the accuracy-vs-compute comparison."""

from __future__ import annotations

from dataclasses import dataclass

from diffclass.classifier import Classifier
from diffclass.data.base import ImageDataset
from diffclass.evaluation import EvalSummary, evaluate
from diffclass.progress import err_console

DEFAULT_SPECS = (
    "exhaustive",
    "adaptive",
    "hdc(rule=top-fraction)",
    "hdc(rule=within-std)",
    "beam",
    "hdc+beam",
)
SWEEP_SPECS = (
    *(f"exhaustive(n={n})" for n in (4, 8, 16, 32, 64)),
    *(f"adaptive(keep={k},1;n={n1},{n})" for k, n1, n in ((2, 4, 16), (3, 4, 32), (3, 8, 64), (5, 8, 64))),
    *(f"hdc(rule=top-fraction;K={k})" for k in (0.25, 0.5, 0.75)),
    *(f"hdc(rule=within-std;m={m})" for m in (1, 2, 3)),
    *(f"beam(b={b})" for b in (2, 4, 8)),
    *(f"hdc+beam(K=0.5;b={b})" for b in (2, 4)),
)


@dataclass
class Baselines:
    """E*: the best exhaustive top-1; C_E / C_A: NFEs/image of the cheapest exhaustive / adaptive run within
    0.5 points of it (None when no run of that kind gets there)."""

    best_exhaustive_top1: float
    cheapest_exhaustive_nfe: float | None
    cheapest_adaptive_nfe: float | None


def needs_tree(spec: str) -> bool:
    return spec.startswith("hdc")


def run_bench(classifier: Classifier, dataset: ImageDataset, specs, limit: int | None = None) -> list[EvalSummary]:
    summaries = []
    for spec in specs:
        if needs_tree(spec) and classifier.tree is None:
            err_console.print(f"skipping {spec}: the model has no label tree (pass --tree)")
            continue
        summaries.append(evaluate(classifier, dataset, spec, limit=limit))
    return summaries


def baselines(summaries: list[EvalSummary], tolerance: float = 0.005) -> Baselines | None:
    exhaustive = [s for s in summaries if s.strategy.startswith("exhaustive")]
    if not exhaustive:
        return None
    best = max(s.top1 for s in exhaustive)

    def cheapest(kind: str) -> float | None:
        good = [s.nfe_per_image for s in summaries if s.strategy.startswith(kind) and s.top1 >= best - tolerance]
        return min(good) if good else None

    return Baselines(best, cheapest("exhaustive"), cheapest("adaptive("))


def reference(summaries: list[EvalSummary], kind: str) -> EvalSummary | None:
    """The first run of a kind: the reference its ratios are computed against."""
    return next((s for s in summaries if s.strategy.startswith(kind + "(") or s.strategy == kind), None)
