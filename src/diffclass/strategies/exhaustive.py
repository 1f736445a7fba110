"""Every candidate on the same n slots, ranked by mean error: the original diffusion classifier."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from diffclass.errors import DiffclassError
from diffclass.registry import Option, integer
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

DEFAULT_EXHAUSTIVE_N = 64


class Exhaustive(Strategy):
    kind = "exhaustive"

    def __init__(self, n: int):
        if n < 1:
            raise DiffclassError(f"exhaustive needs n >= 1, got {n}")
        self.n = n

    def options(self) -> dict[str, object]:
        return {"n": self.n}

    def run(self, candidates: Sequence[Hashable]) -> Run:
        errors = yield Request(tuple(candidates), tuple(range(self.n)))
        ranking, scores = rank_by_mean(candidates, errors)
        return Outcome(ranking, scores, [dict(candidates=len(candidates), slots=self.n)])


@STRATEGIES.register(
    "exhaustive",
    Option("n", DEFAULT_EXHAUSTIVE_N, integer(1, MAX_SLOTS), "slots (timestep, noise) per class"),
    help="every class on the same n slots; argmin of the mean error (Li et al. 2023)",
)
def _build(options: dict, context: StrategyContext, rest: dict) -> Exhaustive:
    return Exhaustive(options["n"])
