"""`aligned(d=…;then=…)`: each class scored at the image's best whole-pixel alignment. A generative classifier
learns where its training images put the object (a glyph on its baseline, an emoji in the middle), and an image
whose object sits elsewhere fits every class worse, its own most of all. Here the image is shifted by every offset
up to d pixels in x and y, all on the image's own noise, and each class is read at the offset where it fits best
(`diffclass.scoring.PlacedErrors`): the translation is treated as a nuisance the classifier maximises over. It
costs (2d + 1)² times the calls of `then`, which runs unchanged on the aligned errors. With `prior=P` a class
moved by k pixels (in x plus y) pays (1 + P·k) times its error there: a prior that the object sits where the
training images put it, so a move is taken only where it fits that much better."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from diffclass.registry import Option, format_option, integer, number, text
from diffclass.strategies.base import STRATEGIES, Placement, Run, Strategy, StrategyContext, placed_stage


class Aligned(Strategy):
    kind = "aligned"

    def __init__(self, shifts: int, then: Strategy, prior: float = 0.0):
        self.then, self.grid, self.placement = then, then.grid, Placement(shifts=shifts, prior=prior)

    @property
    def name(self) -> str:
        prior = f";prior={format_option(self.placement.prior)}" if self.placement.prior else ""
        return f"aligned(d={self.placement.shifts}{prior};then={self.then.name})"

    def run(self, candidates: Sequence[Hashable]) -> Run:
        return (yield from self.then.run(candidates))


@STRATEGIES.register(
    "aligned",
    Option("d", 1, integer(1, 3), "largest shift in pixels, in x and in y: (2d + 1)² shifted copies"),
    Option("prior", 0.0, number(0, 10), "relative error a class pays per pixel it is moved (0: any move is free)"),
    Option("then", "exhaustive", text, "the strategy that ranks the classes on the aligned errors"),
    help="each class scored at the image's best alignment over whole-pixel shifts up to d (costs (2d+1)² x then)",
)
def _build(options: dict, context: StrategyContext, rest: dict) -> Aligned:
    then = placed_stage("aligned", options["then"], context)
    return Aligned(options["d"], then, options["prior"])
