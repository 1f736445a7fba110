"""`auto`: the strategy a model's tuned front (see `diffclass.tuning`) says is best for a budget.

`diffclass tune` stores, with the model, the Pareto front of (top-1, NFEs/image) over many strategies replayed
on training images. `auto` picks from it: by default the cheapest point within `max_loss` points of the front's
most accurate; with `budget` the most accurate within that many NFEs per image; with `speedup` the most accurate
at least that many times cheaper than exhaustive on the model's whole grid. The strategy it builds is the chosen
spec itself, so tables, records and JSON name what ran.
"""

from __future__ import annotations

from diffclass.errors import DiffclassError
from diffclass.registry import Option, integer, number
from diffclass.strategies.base import STRATEGIES, Strategy, StrategyContext


def choose(front: list[dict], max_loss: float = 0.5, budget: int = 0, speedup: float = 0.0,
           reference_nfe: float | None = None) -> dict:  # fmt: skip
    """The front point a budget picks (points: dicts with spec, top1, nfe_per_image)."""
    if not front:
        raise DiffclassError("auto needs a tuned model: run diffclass tune --model FOLDER first")
    points = list(front)
    if speedup:
        if not reference_nfe:
            raise DiffclassError("auto(speedup=...) needs the front's reference cost")
        budget = max(budget, 0) or int(reference_nfe / speedup)
    if budget:
        affordable = [p for p in points if p["nfe_per_image"] <= budget]
        if not affordable:
            cheapest = min(p["nfe_per_image"] for p in points)
            raise DiffclassError(f"no tuned strategy fits {budget} NFEs/image; the cheapest needs {cheapest:.0f}")
        return max(affordable, key=lambda p: (p["top1"], -p["nfe_per_image"]))
    best = max(p["top1"] for p in points)
    good = [p for p in points if p["top1"] >= best - max_loss / 100]
    return min(good, key=lambda p: (p["nfe_per_image"], -p["top1"]))


@STRATEGIES.register(
    "auto",
    Option("max_loss", 0.5, number(0, 100), "points of top-1 below the front's best that may be traded for speed"),
    Option("budget", 0, integer(0, 100_000_000), "NFEs per image to spend at most (0: none)"),
    Option("speedup", 0.0, number(0, 1e6), "times cheaper than exhaustive on the whole grid (0: none)"),
    help="the best strategy of the model's tuned front for a budget (diffclass tune); the default once tuned",
)
def _build(options: dict, context: StrategyContext, rest: dict) -> Strategy:
    from diffclass.strategies import make_strategy

    front = context.front or {}
    point = choose(front.get("points", []), options["max_loss"], options["budget"], options["speedup"],
                   front.get("reference_nfe"))  # fmt: skip
    return make_strategy(point["spec"], StrategyContext(context.num_classes, context.timesteps, context.tree))
