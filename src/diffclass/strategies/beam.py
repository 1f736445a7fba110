"""Timestep beam (the accelerated-sampling seed): visit timesteps in order, N noise draws each, keep the best
ceil(C / b) classes by mean error so far, stop once one class has led for t_s consecutive steps."""

from __future__ import annotations

import math
import struct
from collections.abc import Hashable, Sequence
from typing import Literal

from diffclass.errors import DiffclassError
from diffclass.registry import Option, choice, integer, number
from diffclass.strategies.base import MAX_SLOTS, STRATEGIES, Outcome, Request, Run, Strategy, StrategyContext

Direction = Literal["clean-first", "noisy-first", "middle-out"]
DIRECTIONS = ("clean-first", "noisy-first", "middle-out")


def _float32(value: float) -> float:
    """Rank at single precision, as the beam always has, so near-ties resolve the same way."""
    return struct.unpack("f", struct.pack("f", value))[0]


def visiting_order(timesteps: Sequence[int], direction: Direction) -> list[int]:
    """Grid indices in the order the beam visits their timesteps."""
    by_t = sorted(range(len(timesteps)), key=lambda j: timesteps[j])
    if direction == "clean-first":
        return by_t
    if direction == "noisy-first":
        return by_t[::-1]
    middle = len(by_t) // 2
    order = [by_t[middle]]
    for step in range(1, len(by_t)):
        for j in (middle - step, middle + step):
            if 0 <= j < len(by_t):
                order.append(by_t[j])
    return order


class Beam(Strategy):
    kind = "beam"

    def __init__(
        self,
        timesteps: Sequence[int],
        b: float,
        t_s: int,
        samples: int,
        direction: Direction,
        slots: int | None = None,
    ):
        """`slots` visits only the grid's first that many slots (an evenly spread subset, as exhaustive(n=K) uses),
        in the beam's order: a beam on a fixed budget of timesteps."""
        if b < 1:
            raise DiffclassError(f"beam factor b must be >= 1, got {b}")
        if t_s < 1 or samples < 1:
            raise DiffclassError("beam needs t_s >= 1 and samples >= 1")
        if direction not in DIRECTIONS:
            raise DiffclassError(f"unknown beam direction {direction!r}; choose one of {', '.join(DIRECTIONS)}")
        if slots is not None and not 1 <= slots <= len(timesteps):
            raise DiffclassError(f"beam n={slots} must be between 1 and the grid's {len(timesteps)} slots")
        self.grid_size = len(timesteps)
        self.order = visiting_order(timesteps[:slots], direction)
        self.b, self.t_s, self.samples, self.direction, self.slots = b, t_s, samples, direction, slots

    def options(self) -> dict[str, object]:
        options = {"b": f"{self.b:g}", "t_s": self.t_s, "N": self.samples, "start": self.direction}
        return options if self.slots is None else {**options, "n": self.slots}

    def run(self, candidates: Sequence[Hashable]) -> Run:
        width = max(1, math.ceil(len(candidates) / self.b))
        alive = list(candidates)
        totals = {c: 0.0 for c in candidates}
        counts = {c: 0 for c in candidates}
        dropped: list[list[Hashable]] = []
        leader, streak, trace = None, 0, []
        for step, j in enumerate(self.order):
            # slot j + k * grid_size is the k-th noise draw at the grid's j-th timestep
            slots = tuple(j + k * self.grid_size for k in range(self.samples))
            errors = yield Request(tuple(alive), slots)
            for c, row in zip(alive, errors):
                totals[c] += row.sum().item()
                counts[c] += len(slots)
            means = [_float32(totals[c] / counts[c]) for c in alive]
            order = sorted(range(len(alive)), key=means.__getitem__)  # stable: ties keep their order
            ranked = [alive[i] for i in order]
            alive, out = ranked[:width], ranked[width:]
            if out:
                dropped.append(out)
            streak = streak + 1 if ranked[0] == leader else 1
            leader = ranked[0]
            trace.append(dict(step=step, candidates=len(ranked), slots=len(slots), kept=len(alive)))
            if streak >= self.t_s:
                break
        scores = {c: totals[c] / counts[c] for c in candidates if counts[c]}
        ranking = alive + [c for out in reversed(dropped) for c in out]
        return Outcome(ranking, scores, trace)


BEAM_OPTIONS = (
    Option("b", 2.0, number(1, 1e6), "keep ceil(C / b) classes after every timestep"),
    Option("t_s", 8, integer(1, MAX_SLOTS), "stop once one class has led for t_s timesteps"),
    Option("N", 1, integer(1, 256), "noise draws per timestep"),
    Option("start", "clean-first", choice(*DIRECTIONS), "the order the timesteps are visited in"),
    Option("n", None, integer(1, MAX_SLOTS), "visit only the grid's first n slots (default: all of them)"),
)


@STRATEGIES.register("beam", *BEAM_OPTIONS, help="timestep beam with early stopping (the accelerated-sampling seed)")
def _build(options: dict, context: StrategyContext, rest: dict) -> Beam:
    return Beam(context.timesteps, options["b"], options["t_s"], options["N"], options["start"], options["n"])
