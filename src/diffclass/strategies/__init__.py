"""Strategies decide which candidates to score at which slots, and when to stop; built by name from one factory.

A spec is a name with optional options: `adaptive`, `exhaustive(n=32)`, `beam(b=2;t_s=8)`,
`hdc(rule=within-std;m=2;final=adaptive)`, `hdc+beam(rule=top-fraction;K=0.5;b=2)`; any of them takes a timestep
range of its own, `exhaustive(n=16;t=0-999)`. The CLI and the Python API
resolve specs the same way; defaults scale to the number of classes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from diffclass.errors import DiffclassError
from diffclass.hierarchy import LabelTree
from diffclass.scoring import TimestepGrid
from diffclass.strategies.adaptive import Adaptive
from diffclass.strategies.base import Outcome, Request, Strategy, drive, parse_spec
from diffclass.strategies.beam import Beam
from diffclass.strategies.exhaustive import Exhaustive
from diffclass.strategies.hierarchical import DEFAULT_LEVEL_SLOTS, Hierarchical
from diffclass.strategies.rules import RULES, TopFraction, WithinStd


@dataclass
class StrategyContext:
    """What a spec needs to become a strategy: the class count, the scorer's grid and the model's tree."""

    num_classes: int
    timesteps: list[int]
    tree: LabelTree | None = None


FLAT_OPTIONS = {"exhaustive": {"n"}, "adaptive": {"keep", "n"}, "beam": {"b", "t_s", "N", "start"}}
HDC_OPTIONS = {"rule", "K", "m", "slots", "depth", "final"}
STRATEGY_NAMES = (*FLAT_OPTIONS, "hdc", "hdc+beam")


def _number(options: dict[str, str], key: str, kind=int, default=None):
    if key not in options:
        return default
    try:
        return kind(options[key])
    except ValueError:
        raise DiffclassError(f"option {key}={options[key]!r} must be a {kind.__name__}") from None


def _ints(options: dict[str, str], key: str) -> list[int]:
    try:
        return [int(v) for v in options[key].split(",")]
    except ValueError:
        raise DiffclassError(f"option {key}={options[key]!r} must be comma-separated integers") from None


def _flat(kind: str, options: dict[str, str], num_classes: int, timesteps: list[int]) -> Strategy:
    if kind == "exhaustive":
        return Exhaustive(_number(options, "n", int, Exhaustive().n))
    if kind == "adaptive":
        if not {"keep", "n"} & set(options):
            return Adaptive.for_classes(num_classes)
        if not {"keep", "n"} <= set(options):
            raise DiffclassError("adaptive needs both keep and n, e.g. adaptive(keep=5,1;n=8,64)")
        return Adaptive(_ints(options, "keep"), _ints(options, "n"))
    return Beam(
        timesteps,
        b=_number(options, "b", float, 2.0),
        t_s=_number(options, "t_s", int, 8),
        samples=_number(options, "N", int, 1),
        direction=options.get("start", "clean-first"),
    )


def make_strategy(spec: str | Strategy, context: StrategyContext) -> Strategy:
    """Build a strategy from its spec (see the module docstring); every strategy takes `t=MIN-MAX`."""
    if isinstance(spec, Strategy):
        return spec
    kind, options = parse_spec(spec)
    if kind not in STRATEGY_NAMES:
        raise DiffclassError(f"unknown strategy {kind!r}; known: {', '.join(STRATEGY_NAMES)}")
    grid = _grid(options.pop("t")) if "t" in options else None
    if grid is not None:
        context = replace(context, timesteps=grid.timesteps)
    strategy = _build(kind, options, context)
    strategy.grid = grid
    return strategy


def _grid(value: str) -> TimestepGrid:
    """`t=0-999`: the strategy's own timestep range, e.g. the original method's full grid beside a calibrated one."""
    try:
        t_min, t_max = (int(v) for v in value.split("-"))
    except ValueError:
        raise DiffclassError(f"option t={value!r} must be a timestep range MIN-MAX, e.g. t=0-999") from None
    return TimestepGrid(t_min, t_max)


def _build(kind: str, options: dict[str, str], context: StrategyContext) -> Strategy:
    if kind in FLAT_OPTIONS:
        _check(kind, options, FLAT_OPTIONS[kind])
        return _flat(kind, options, context.num_classes, context.timesteps)
    # hierarchical: descent options plus the options of its final stage
    final, nested = parse_spec("beam" if kind == "hdc+beam" else options.pop("final", "adaptive"))
    options = {**options, **nested}  # `final=adaptive(keep=5,1;n=4,16)` is `keep=5,1;n=4,16` for the final stage
    if final not in FLAT_OPTIONS:
        raise DiffclassError(f"unknown final stage {final!r} for hdc; choose one of {', '.join(FLAT_OPTIONS)}")
    _check(kind, options, HDC_OPTIONS | FLAT_OPTIONS[final])
    if context.tree is None:
        raise DiffclassError(f"{kind} needs a label tree: the model has none, pass --tree")
    rule_kind = options.get("rule", "top-fraction")
    if rule_kind not in RULES:
        raise DiffclassError(f"unknown pruning rule {rule_kind!r}; choose one of {', '.join(RULES)}")
    rule = (
        TopFraction(_number(options, "K", float, 0.5))
        if rule_kind == "top-fraction"
        else WithinStd(_number(options, "m", float, 2.0))
    )
    final_options = {k: v for k, v in options.items() if k in FLAT_OPTIONS[final]}
    sample = _flat(final, final_options, context.num_classes, context.timesteps)
    strategy = Hierarchical(
        context.tree,
        rule,
        final=lambda k: _flat(final, final_options, k, context.timesteps),
        final_name=final if not final_options else sample.name,
        slots=_number(options, "slots", int, DEFAULT_LEVEL_SLOTS),
        start_depth=_number(options, "depth", int, 1),
    )
    if final == "beam":
        strategy.kind = "hdc+beam"
        strategy.extra_options = sample.options()
    return strategy


def _check(kind: str, options: dict[str, str], allowed: set[str]) -> None:
    unknown = set(options) - allowed
    if unknown:
        raise DiffclassError(
            f"unknown option(s) {', '.join(sorted(unknown))} for {kind}; allowed: {', '.join(sorted(allowed | {'t'}))}"
        )


__all__ = [
    "Adaptive",
    "Beam",
    "Exhaustive",
    "Hierarchical",
    "Outcome",
    "Request",
    "Strategy",
    "StrategyContext",
    "TopFraction",
    "WithinStd",
    "drive",
    "make_strategy",
]
