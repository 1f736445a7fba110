"""Every candidate on the same n slots, ranked by mean error: the original diffusion classifier."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from diffclass.errors import DiffclassError
from diffclass.strategies.base import Outcome, Request, Run, Strategy, rank_by_mean

DEFAULT_EXHAUSTIVE_N = 64


class Exhaustive(Strategy):
    kind = "exhaustive"

    def __init__(self, n: int = DEFAULT_EXHAUSTIVE_N):
        if n < 1:
            raise DiffclassError(f"exhaustive needs n >= 1, got {n}")
        self.n = n

    def options(self) -> dict[str, object]:
        return {"n": self.n}

    def run(self, candidates: Sequence[Hashable]) -> Run:
        errors = yield Request(tuple(candidates), tuple(range(self.n)))
        ranking, scores = rank_by_mean(candidates, errors)
        return Outcome(ranking, scores, [dict(candidates=len(candidates), slots=self.n)])
