"""Strategies decide which candidates to score at which slots, and when to stop; built by name from one registry.

A spec is a name with optional options: `adaptive`, `exhaustive(n=32)`, `beam(b=2;t_s=8)`,
`hdc(rule=within-std;m=2;final=adaptive)`, `hdc+beam(rule=top-fraction;K=0.5;b=2)`; any of them takes a timestep
range of its own, `exhaustive(n=16;t=0-999)`. The CLI and the Python API resolve specs the same way; defaults
live with each strategy's registration and scale to the number of classes where they must
(`diffclass strategies` lists them).
"""

from __future__ import annotations

from dataclasses import replace

from diffclass.registry import parse_spec
from diffclass.strategies import adaptive as _adaptive  # noqa: F401  (each module registers its strategies)
from diffclass.strategies import aligned as _aligned  # noqa: F401
from diffclass.strategies import auto as _auto  # noqa: F401
from diffclass.strategies import beam as _beam  # noqa: F401
from diffclass.strategies import exhaustive as _exhaustive  # noqa: F401
from diffclass.strategies import hierarchical as _hierarchical  # noqa: F401
from diffclass.strategies import prefilter as _prefilter  # noqa: F401
from diffclass.strategies import registered as _registered  # noqa: F401
from diffclass.strategies import sequential as _sequential  # noqa: F401
from diffclass.strategies.adaptive import Adaptive
from diffclass.strategies.base import STRATEGIES, Outcome, Request, Strategy, StrategyContext, drive
from diffclass.strategies.beam import Beam
from diffclass.strategies.exhaustive import Exhaustive
from diffclass.strategies.hierarchical import Hierarchical
from diffclass.strategies.prefilter import Prefilter
from diffclass.strategies.rules import RULES, TopFraction, WithinStd
from diffclass.strategies.sequential import Sequential
from diffclass.timesteps import TimestepGrid


def make_strategy(spec: str | Strategy, context: StrategyContext) -> Strategy:
    """Build a strategy from its spec (see the module docstring); every strategy takes `t=MIN-MAX`."""
    if isinstance(spec, Strategy):
        return spec
    kind, raw = parse_spec(spec)
    entry = STRATEGIES.get(kind)
    grid = TimestepGrid.parse(raw.pop("t")) if "t" in raw else None
    if grid is not None:  # a range of its own: the original method's default sizes, not the calibrated window's
        context = replace(context, timesteps=grid.timesteps, windowed=False)
    options, rest = entry.parse(raw, strict=not entry.extra.get("tree"))  # a descent hands the rest to its final
    strategy = entry.build(options, context, rest)
    if grid is not None:
        strategy.grid = grid
    return strategy


def needs_tree(spec: str) -> bool:
    """Whether a spec names a strategy that descends a label tree (a DiDiCM sampler's name does not)."""
    name = parse_spec(spec)[0]
    return name in STRATEGIES and bool(STRATEGIES.get(name).extra.get("tree"))


__all__ = [
    "RULES",
    "Sequential",
    "STRATEGIES",
    "Adaptive",
    "Beam",
    "Exhaustive",
    "Hierarchical",
    "Outcome",
    "Prefilter",
    "Request",
    "Strategy",
    "StrategyContext",
    "TopFraction",
    "WithinStd",
    "drive",
    "make_strategy",
    "needs_tree",
]
