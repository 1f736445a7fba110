"""Staged elimination (Li et al. 2023): score everyone on few slots, keep the best k_i, add slots, repeat.

Stage prefixes nest on the grid, so stage i+1 only evaluates the slots the survivors have not seen yet.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

from diffclass.errors import DiffclassError
from diffclass.registry import Option, integers
from diffclass.strategies.base import (
    MAX_SLOTS,
    STRATEGIES,
    Outcome,
    Request,
    Run,
    Strategy,
    StrategyContext,
    rank_by_mean,
)
from diffclass.strategies.exhaustive import DEFAULT_EXHAUSTIVE_N

WINDOW_FINAL_N = 32  # on a calibrated window every timestep is informative: exhaustive saturates by 32 slots


def default_stages(num_classes: int, n_final: int = DEFAULT_EXHAUSTIVE_N) -> tuple[list[int], list[int]]:
    """Keep about a fifth of the classes after a cheap first look, then shrink tenfold per stage; `n_final`
    slots in the last stage (the original method's 64 on the whole range, fewer on a calibrated window)."""
    keep, n = [1], [n_final]
    survivors = max(2, math.ceil(num_classes / 5))
    slots = max(4, n_final // 8)
    while survivors < num_classes:
        keep.insert(0, survivors)
        n.insert(0, slots)
        if survivors * 10 >= num_classes:
            break
        survivors, slots = survivors * 10, max(2, slots // 2)
    return keep, n


class Adaptive(Strategy):
    kind = "adaptive"

    def __init__(self, keep: Sequence[int], n: Sequence[int]):
        keep, n = list(keep), list(n)
        if len(keep) != len(n) or not keep:
            raise DiffclassError(f"adaptive needs as many keep values as n values, got keep={keep} n={n}")
        if any(b <= a for a, b in zip(n, n[1:])) or n[0] < 1:
            raise DiffclassError(f"adaptive n must be positive and increasing, got {n}")
        if any(b > a for a, b in zip(keep, keep[1:])) or min(keep) < 1:
            raise DiffclassError(f"adaptive keep must be positive and non-increasing, got {keep}")
        self.keep, self.n = keep, n

    @classmethod
    def for_classes(cls, num_classes: int, windowed: bool = False) -> Adaptive:
        return cls(*default_stages(num_classes, WINDOW_FINAL_N if windowed else DEFAULT_EXHAUSTIVE_N))

    def options(self) -> dict[str, object]:
        return {"keep": self.keep, "n": self.n}

    def run(self, candidates: Sequence[Hashable]) -> Run:
        survivors = list(candidates)
        eliminated: list[list[Hashable]] = []
        scores: dict[Hashable, float] = {}
        trace = []
        for keep, n in zip(self.keep, self.n):
            errors = yield Request(tuple(survivors), tuple(range(n)))
            ranking, stage_scores = rank_by_mean(survivors, errors)
            scores.update(stage_scores)
            survivors, dropped = ranking[:keep], ranking[keep:]
            eliminated.append(dropped)
            trace.append(dict(candidates=len(ranking), slots=n, kept=len(survivors)))
        ranking = survivors + [c for dropped in reversed(eliminated) for c in dropped]
        return Outcome(ranking, scores, trace)


@STRATEGIES.register(
    "adaptive",
    Option("keep", None, integers(1, 1_000_000), "classes kept after each stage (default: by classes and grid)"),
    Option("n", None, integers(1, MAX_SLOTS), "slots each stage has seen in total, increasing"),
    help="staged elimination: score all classes on few slots, keep the best, add slots (Li et al. 2023)",
)
def _build(options: dict, context: StrategyContext, rest: dict) -> Adaptive:
    keep, n = options["keep"], options["n"]
    if keep is None and n is None:
        return Adaptive.for_classes(context.num_classes, context.windowed)
    if keep is None or n is None:
        raise DiffclassError("adaptive needs both keep and n, e.g. adaptive(keep=5,1;n=8,64)")
    return Adaptive(keep, n)
