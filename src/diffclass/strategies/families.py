"""The families of strategy specs that benches and tunings run: `diffclass bench`'s default runs and budget sweep,
and the candidates `diffclass tune` replays (with prefilter compositions when a prefilter is named)."""

from __future__ import annotations

DEFAULT_SPECS = (
    "exhaustive",
    "adaptive",
    "hdc(rule=top-fraction)",
    "hdc(rule=within-std)",
    "beam",
    "hdc+beam",
)
# The adaptive budgets run from aggressive to the paper's default stages; the hierarchical entries name a small
# adaptive final stage, since the default one's budget is sized for a full-range grid.
SWEEP_SPECS = (
    *(f"exhaustive(n={n})" for n in (4, 8, 16, 32, 64)),
    *(
        f"adaptive(keep={k},1;n={n1},{n})"
        for k, n1, n in ((5, 4, 16), (10, 4, 16), (10, 8, 32), (10, 8, 64), (22, 8, 64))
    ),
    *(f"hdc(rule=top-fraction;K={k};slots=8;final=adaptive(keep=10,1;n=8,16))" for k in (0.5, 0.75, 0.9)),
    *(f"hdc(rule=within-std;m={m};slots=4;final=adaptive(keep=5,1;n=4,16))" for m in (1, 2, 3)),
    *(f"beam(b={b};start=middle-out)" for b in (2, 4, 8)),
    *(f"hdc+beam(rule=within-std;m=2;slots=4;b={b};start=middle-out)" for b in (2, 4)),
)

PREFILTER_KS = (5, 10, 20)


def slot_counts(slots: int) -> list[int]:
    """Stage sizes about √2 apart (2, 3, 4, 6, 8, 12, …): powers of two alone leave gaps of 2× in cost between
    neighbouring schedules, and the cheapest schedule within a loss often sits in one."""
    return [n for n in (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128) if n <= slots]


def candidate_families(num_classes: int, slots: int, tree: bool) -> dict[str, list[str]]:
    """The families a tuning replays, by name: exhaustive budgets, two- and three-stage adaptive schedules,
    sequential t-tests, middle-out beams, and (with a tree) dynamic HDC descents into small final stages. The
    benchmarks that search a family (`benchmarks/fast_default.py`, `benchmarks/budget_strategy.py`) take it here."""
    ns = slot_counts(slots)
    keeps = sorted({k for k in (2, 3, 5, *(max(2, num_classes // d) for d in (20, 10, 7, 5))) if k < num_classes})
    adaptive = []
    for k in keeps:
        for first in (1, 2, 3, 4, 6, 8):
            adaptive += [f"adaptive(keep={k},1;n={first},{n})" for n in ns if n > first]
            adaptive += [
                f"adaptive(keep={k},{k2},1;n={first},{mid},{n})"
                for k2 in (2, 3)
                if k2 < k
                for mid in ns
                if first < mid
                for n in ns
                if n > mid
            ]
    families = dict(
        exhaustive=[f"exhaustive(n={n})" for n in ns],
        adaptive=adaptive,
        sequential=[
            f"sequential(p={p};min={m};max={slots};step={s})"
            for p in (0.001, 0.01, 0.05)
            for m in (2, 4, 8)
            if m <= slots
            for s in (1, 2, 4)
        ],
        beam=[f"beam(b={b};t_s={t};start=middle-out)" for b in (2, 4, 8) for t in (4, 8)],
    )
    if tree:
        families["hdc"] = [
            f"hdc(rule=within-std;m={m};slots={s};final=adaptive(keep={k},1;n={f},{n}))"
            for m in (1, 2, 3)
            for s in (2, 4)
            if s <= slots
            for k in keeps[-2:]
            for f in (2, 4)
            for n in ns
            if f < n <= 32
        ]
    return {name: list(dict.fromkeys(specs)) for name, specs in families.items()}


def candidate_specs(num_classes: int, slots: int, tree: bool) -> list[str]:
    """Every family of `candidate_families` in one list, each spec once."""
    families = candidate_families(num_classes, slots, tree)
    return list(dict.fromkeys(spec for specs in families.values() for spec in specs))


def prefilter_specs(by: str, num_classes: int, slots: int) -> list[str]:
    """Prefilter compositions: the filter's top k, then exhaustive, a two-stage adaptive or a sequential test."""
    specs = []
    for k in (k for k in PREFILTER_KS if k < num_classes):
        thens = [f"exhaustive(n={n})" for n in (4, 8, 16, 32, 64) if n <= slots]
        thens += [
            f"adaptive(keep={keep},1;n={first},{n})"
            for keep in (2, 3, 5)
            if keep < k
            for first in (2, 4)
            for n in (8, 16, 32)
            if first < n <= slots
        ]
        thens += [f"sequential(p={p};min=4;max={slots};step=2)" for p in (0.01, 0.05)]
        specs += [f"prefilter(by={by};k={k};then={then})" for then in thens]
    return specs
