"""Strategies decide which candidates to score at which slots, and when to stop; found by name."""

from __future__ import annotations

from diffclass.errors import DiffclassError
from diffclass.strategies.adaptive import Adaptive
from diffclass.strategies.base import Outcome, Request, Strategy, drive, int_list, parse_spec
from diffclass.strategies.exhaustive import Exhaustive

STRATEGY_NAMES = ("exhaustive", "adaptive")


def make_strategy(spec: str | Strategy, num_classes: int) -> Strategy:
    """Build a strategy from `name` or `name(option=value;...)`; defaults are scaled to the class count."""
    if isinstance(spec, Strategy):
        return spec
    kind, options = parse_spec(spec)
    allowed = {"exhaustive": {"n"}, "adaptive": {"keep", "n"}}
    if kind not in allowed:
        raise DiffclassError(f"unknown strategy {kind!r}; known: {', '.join(STRATEGY_NAMES)}")
    unknown = set(options) - allowed[kind]
    if unknown:
        raise DiffclassError(
            f"unknown option(s) {', '.join(sorted(unknown))} for {kind}; allowed: {', '.join(sorted(allowed[kind]))}"
        )
    if kind == "exhaustive":
        return Exhaustive(**{k: int(int_list(v, k)[0]) for k, v in options.items()})
    if not options:
        return Adaptive.for_classes(num_classes)
    if set(options) != {"keep", "n"}:
        raise DiffclassError("adaptive needs both keep and n, e.g. adaptive(keep=5,1;n=8,64)")
    return Adaptive(int_list(options["keep"], "keep"), int_list(options["n"], "n"))


__all__ = ["Adaptive", "Exhaustive", "Outcome", "Request", "Strategy", "drive", "make_strategy"]
