"""Pruning rules: which of a frontier's nodes survive, given their mean errors (lower is better)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from diffclass.errors import DiffclassError
from diffclass.registry import Option, Registry, number

if TYPE_CHECKING:
    import torch

# name -> build(options): which frontier nodes a hierarchical descent keeps; their options are HDC's options
RULES = Registry("pruning rule")


class PruningRule:
    kind = ""

    def keep(self, errors: torch.Tensor) -> list[int]:
        """Indices of the survivors, best first; never empty for a non-empty frontier."""
        raise NotImplementedError

    def options(self) -> dict[str, object]:
        raise NotImplementedError


class TopFraction(PruningRule):
    """Keep the best ceil(K * n) nodes (at least one): the fixed-ratio rule of HDC."""

    kind = "top-fraction"

    def __init__(self, fraction: float):
        if not 0 < fraction <= 1:
            raise DiffclassError(f"top-fraction K must be in (0, 1], got {fraction}")
        self.fraction = fraction

    def keep(self, errors: torch.Tensor) -> list[int]:
        order = errors.argsort(stable=True).tolist()
        return order[: max(1, math.ceil(self.fraction * len(order)))]

    def options(self) -> dict[str, object]:
        return {"K": f"{self.fraction:g}"}


class WithinStd(PruningRule):
    """Keep every node whose error is at most min + m * std of the frontier: the dynamic rule of HDC."""

    kind = "within-std"

    def __init__(self, m: float):
        if m < 0:
            raise DiffclassError(f"within-std m must be >= 0, got {m}")
        self.m = m

    def keep(self, errors: torch.Tensor) -> list[int]:
        order = errors.argsort(stable=True).tolist()
        spread = errors.std().item() if len(errors) > 1 else 0.0
        limit = errors.min().item() + self.m * spread
        return [i for i in order if errors[i].item() <= limit]

    def options(self) -> dict[str, object]:
        return {"m": f"{self.m:g}"}


RULES.register(
    "top-fraction",
    Option("K", 0.5, number(0, 1, low_open=True), "fraction of the frontier kept"),
    help="keep the best ceil(K n) nodes (HDC's fixed ratio)",
)(lambda o: TopFraction(o["K"]))
RULES.register(
    "within-std",
    Option("m", 2.0, number(0, 1e3), "standard deviations above the best kept"),
    help="keep every node within min + m std (HDC's dynamic rule)",
)(lambda o: WithinStd(o["m"]))
