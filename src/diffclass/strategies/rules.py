"""Pruning rules: which of a frontier's nodes survive, given their mean errors (lower is better)."""

from __future__ import annotations

import math

import torch

from diffclass.errors import DiffclassError


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

    def __init__(self, fraction: float = 0.5):
        if not 0 < fraction <= 1:
            raise DiffclassError(f"top-fraction K must be in (0, 1], got {fraction}")
        self.fraction = fraction

    def keep(self, errors: torch.Tensor) -> list[int]:
        order = torch.argsort(errors, stable=True).tolist()
        return order[: max(1, math.ceil(self.fraction * len(order)))]

    def options(self) -> dict[str, object]:
        return {"K": f"{self.fraction:g}"}


class WithinStd(PruningRule):
    """Keep every node whose error is at most min + m * std of the frontier: the dynamic rule of HDC."""

    kind = "within-std"

    def __init__(self, m: float = 2.0):
        if m < 0:
            raise DiffclassError(f"within-std m must be >= 0, got {m}")
        self.m = m

    def keep(self, errors: torch.Tensor) -> list[int]:
        order = torch.argsort(errors, stable=True).tolist()
        spread = errors.std().item() if len(errors) > 1 else 0.0
        limit = errors.min().item() + self.m * spread
        return [i for i in order if errors[i].item() <= limit]

    def options(self) -> dict[str, object]:
        return {"m": f"{self.m:g}"}


RULES = {"top-fraction": TopFraction, "within-std": WithinStd}
