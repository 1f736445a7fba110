"""`auto`: the strategy a model's tuned front (see `diffclass.tuning`) says is best for a budget.

`diffclass tune` stores, with the model, the Pareto front of (top-1, GMACs/image) over many strategies replayed
on images the model never trained on, each point with how many of them it gets right that exhaustive on every
tuned slot gets wrong, and the reverse. `auto` picks from it: by default the cheapest point whose loss against
that exhaustive reference is within `max_loss` points at `confidence` (a paired bound: a front measured on 100
images cannot promise what only 2,000 could show, so with few tuning images it picks a costlier point, or the
reference itself); with `budget` the most accurate within that many NFEs per image (`budget=300`) or GMACs per
image (`budget=5GMAC`, which also prices a prefilter's calls); with `speedup` the most accurate at least that
many times cheaper in compute than exhaustive on the slots the front was tuned on (for a pruned model, on its
unpruned original). The loss counts from exhaustive, not from the front's own best (a maximum over many noisy
replays that sits above what it gives on new images). The strategy it builds is the chosen spec itself, so
tables, records and JSON name what ran.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from statistics import NormalDist

from diffclass.errors import DiffclassError
from diffclass.registry import Option, number, parse_spec
from diffclass.strategies.base import STRATEGIES, Strategy, StrategyContext


def budget(key: str, text: str) -> tuple[float, str]:
    """`300` (NFEs per image) or `5GMAC` (GMACs per image) -> (amount, unit); 0 means no budget."""
    value, unit = text.strip(), "nfe"
    if value.lower().endswith(("gmac", "gmacs")):
        value, unit = value.lower().removesuffix("s").removesuffix("gmac"), "gmac"
    amount = number(0, 1e9)(key, value)
    return amount, unit


budget.kind = "NFEs per image, or GMACs per image as 5GMAC"  # type: ignore[attr-defined]


def loss_bound(point: dict, images: int, confidence: float) -> float:
    """An upper confidence bound on how much top-1 `point` loses against the reference on images like the tuning
    ones, from the paired counts on the same images and slots (`gained`: it right, the reference wrong; `lost`:
    the reverse): the Agresti-Min interval for a difference of paired proportions (half an image added to each
    cell), so zero discordant images out of 100 still leave a loss of about a point possible."""
    n, gained, lost = images + 2, point["gained"] + 0.5, point["lost"] + 0.5
    loss = (lost - gained) / n
    spread = math.sqrt(max((gained + lost) - (lost - gained) ** 2 / n, 0.0)) / n
    return loss + NormalDist().inv_cdf(confidence) * spread


def choose(
    front: list[dict],
    max_loss: float = 0.5,
    budget: float | tuple[float, str] = 0,
    speedup: float = 0.0,
    reference_nfe: float | None = None,
    reference_gmacs: float | None = None,
    reference_top1: float | None = None,
    images: int | None = None,
    reference_spec: str | None = None,
    confidence: float = 0.9,
) -> dict:
    """The front point a budget picks (points: dicts with spec, top1, nfe_per_image, gmacs_per_image); `budget`
    is NFEs per image, or (amount, "gmac"); `speedup` divides the reference's compute (GMACs, which for a pruned
    model is its unpruned original's) or, without it, its NFEs. `max_loss` counts from the reference (exhaustive
    on every tuned slot: `reference_top1`, or, for a front stored without it, the front's best); where the points
    carry their paired counts against it on `images` tuning images, a point qualifies only if its loss is within
    `max_loss` at `confidence`, and when none does, the reference itself (`reference_spec`) is the answer."""
    if not front:
        raise DiffclassError("auto needs a tuned model: run diffclass tune --model FOLDER first")
    points = list(front)
    amount, unit = budget if isinstance(budget, tuple) else (budget, "nfe")
    if speedup and not amount:
        if reference_gmacs:
            amount, unit = reference_gmacs / speedup, "gmac"
        elif reference_nfe:
            amount, unit = reference_nfe / speedup, "nfe"
        else:
            raise DiffclassError("auto(speedup=...) needs the front's reference cost")
    if amount:
        key, label = ("gmacs_per_image", "GMACs") if unit == "gmac" else ("nfe_per_image", "NFEs")
        affordable = [p for p in points if p[key] <= amount]
        if not affordable:
            cheapest = min(p[key] for p in points)
            raise DiffclassError(f"no tuned strategy fits {amount:g} {label}/image; the cheapest needs {cheapest:.4g}")
        return max(affordable, key=lambda p: (p["top1"], -p[key]))
    if images and reference_spec and all("lost" in p for p in points):
        good = [p for p in points if loss_bound(p, images, confidence) <= max_loss / 100 + 1e-9]
        fallback = dict(spec=reference_spec, top1=reference_top1, nfe_per_image=reference_nfe)
        return min(good, key=lambda p: (p["nfe_per_image"], -p["top1"])) if good else fallback
    best = max(p["top1"] for p in points) if reference_top1 is None else reference_top1
    good = [p for p in points if p["top1"] >= best - max_loss / 100 - 1e-9] or [max(points, key=lambda p: p["top1"])]
    return min(good, key=lambda p: (p["nfe_per_image"], -p["top1"]))


@STRATEGIES.register(
    "auto",
    Option("max_loss", 0.5, number(0, 100), "points of top-1 below exhaustive's that may be traded for speed"),
    Option("budget", 0, budget, "NFEs per image to spend at most, or GMACs as 5GMAC (0: none)"),
    Option("speedup", 0.0, number(0, 1e6), "times cheaper than exhaustive on the tuned slots (0: none)"),
    Option("confidence", 0.9, number(0.5, 0.999), "how sure the tuning images must make max_loss (one-sided)"),
    help="the best strategy of the model's tuned front for a budget (diffclass tune); the default once tuned",
)
def _build(options: dict, context: StrategyContext, rest: dict) -> Strategy:
    from diffclass.strategies import make_strategy

    return make_strategy(chosen_spec(options, context), replace(context, front=None))


def chosen_spec(options: dict, context: StrategyContext, kinds: Sequence[str] | None = None) -> str:
    """The spec `auto` with these options picks from the context's front; with `kinds`, among those strategy
    kinds only (a prefilter's later stage cannot be a tree descent)."""
    return pick(context.front or {}, kinds=kinds, **options)["spec"]


def pick(
    front: dict,
    max_loss: float = 0.5,
    budget: float | tuple[float, str] = 0,
    speedup: float = 0.0,
    confidence: float = 0.9,
    kinds: Sequence[str] | None = None,
) -> dict:
    """The point of a stored front (`diffclass tune`'s dict) that `auto` with these options runs."""
    points = front.get("points", [])
    if kinds is not None:
        points = [p for p in points if parse_spec(p["spec"])[0] in kinds]
    return choose(
        points,
        max_loss,
        budget,
        speedup,
        front.get("reference_nfe"),
        front.get("reference_gmacs"),
        front.get("reference_top1"),
        front.get("images"),
        front.get("reference_spec"),
        confidence,
    )
