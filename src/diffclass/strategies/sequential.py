"""Sequential elimination by a paired t-test (Clark & Jaini 2023, "Text-to-Image Diffusion Models are Zero-Shot
Classifiers").

Every surviving candidate is scored on the same next slots of the shared noise bank, so the differences between
a candidate's errors and the leader's are paired: the slot's timestep and noise cancel, and a one-sided paired
t-test can call a candidate worse after far fewer slots than its mean alone. After `min` slots, every candidate
the test calls worse than the current leader at level `p` is dropped; the rest get `step` more slots, until one
remains, `max` slots are spent, or the per-image `budget` of NFEs is.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

from diffclass.errors import DiffclassError
from diffclass.registry import Option, integer, number
from diffclass.strategies.base import MAX_SLOTS, STRATEGIES, Outcome, Request, Run, Strategy, StrategyContext


def worse_than_leader(errors, leader: int, p: float) -> list[bool]:
    """For each row of `errors` [candidates, slots]: does a one-sided paired t-test reject "no worse than the
    leader's row" at level p? (The leader itself never is.) Identical differences are worse exactly when
    positive."""
    from scipy.stats import t as student

    differences = (errors - errors[leader]).double()
    n = errors.shape[1]
    means = differences.mean(dim=1)
    spreads = differences.std(dim=1, correction=1) if n > 1 else differences.new_zeros(len(differences))
    degenerate = (spreads == 0) | ~spreads.isfinite()
    statistics = means / (spreads.where(~degenerate, 1.0) / math.sqrt(n))
    tail = student.sf(statistics.numpy(), max(n - 1, 1))  # one vectorised call: replays run this thousands of times
    return [bool(m > 0) if d else bool(q < p) for m, d, q in zip(means.tolist(), degenerate.tolist(), tail.tolist())]


class Sequential(Strategy):
    kind = "sequential"

    def __init__(self, p: float, min_slots: int, max_slots: int, step: int, budget: int):
        if not 0 < p < 1:
            raise DiffclassError(f"sequential p must be in (0, 1), got {p}")
        if not 2 <= min_slots <= max_slots:
            raise DiffclassError(f"sequential needs 2 <= min <= max slots, got min={min_slots}, max={max_slots}")
        self.p, self.min_slots, self.max_slots, self.step, self.budget = p, min_slots, max_slots, step, budget

    def options(self) -> dict[str, object]:
        return {"p": self.p, "min": self.min_slots, "max": self.max_slots, "step": self.step, "budget": self.budget}

    def run(self, candidates: Sequence[Hashable]) -> Run:
        alive = list(candidates)
        seen: dict[Hashable, list[float]] = {c: [] for c in alive}
        dropped: list[tuple[Hashable, float]] = []  # in the order they were dropped
        used = spent = 0
        trace = []
        while True:
            want = self.min_slots - used if used < self.min_slots else self.step
            want = min(want, self.max_slots - used)
            if self.budget:
                want = min(want, (self.budget - spent) // len(alive))
            if want <= 0:
                break
            errors = yield Request(tuple(alive), tuple(range(used, used + want)))
            for c, row in zip(alive, errors.tolist()):
                seen[c] += row
            used, spent = used + want, spent + want * len(alive)
            if used >= self.min_slots and len(alive) > 1:
                import torch

                table = torch.tensor([seen[c] for c in alive])
                means = table.mean(dim=1).tolist()
                leader = min(range(len(alive)), key=lambda i: (means[i], i))
                worse = worse_than_leader(table, leader, self.p)
                dropped += [(c, means[i]) for i, c in enumerate(alive) if worse[i]]
                alive = [c for i, c in enumerate(alive) if not worse[i]]
            trace.append(dict(candidates=len(alive), slots=used))
            if len(alive) == 1 or used >= self.max_slots:
                break
        means = {c: sum(seen[c]) / len(seen[c]) if seen[c] else math.inf for c in alive}
        ranking = sorted(alive, key=lambda c: (means[c], alive.index(c)))
        ranking += [c for c, _ in reversed(dropped)]  # the last dropped came closest
        scores = {**{c: m for c, m in dropped}, **means}
        return Outcome(ranking, scores, trace)


@STRATEGIES.register(
    "sequential",
    Option("p", 0.002, number(0, 1, low_open=True), "level of the one-sided paired t-test that drops a candidate"),
    Option("min", 8, integer(2, MAX_SLOTS), "slots every candidate gets before the first test"),
    Option("max", 64, integer(2, MAX_SLOTS), "slots after which the lowest mean error wins"),
    Option("step", 4, integer(1, MAX_SLOTS), "slots added to the survivors between tests"),
    Option("budget", 0, integer(0, 100_000_000), "NFEs per image after which it stops (0: none)"),
    help="paired t-test elimination on the shared noise bank (Clark & Jaini 2023)",
)
def _build(options: dict, context: StrategyContext, rest: dict) -> Sequential:
    if options["budget"] and options["budget"] < 2 * context.num_classes:
        raise DiffclassError(
            f"sequential budget={options['budget']} cannot give each of {context.num_classes} "
            f"classes two slots; use at least {2 * context.num_classes} or 0 (none)"
        )
    return Sequential(options["p"], options["min"], options["max"], options["step"], options["budget"])
