"""`aligned(d=…;then=…)`: each class scored at the image's best whole-pixel alignment. A generative classifier
learns where its training images put the object (a glyph on its baseline, an emoji in the middle), and an image
whose object sits elsewhere fits every class worse, its own most of all. Here the image is shifted by every offset
up to d pixels in x and y, all on the image's own noise, and each class is read at the offset where it fits best
(`diffclass.scoring.AlignedErrors`): the translation is treated as a nuisance the classifier maximises over. It
costs (2d + 1)² times the calls of `then`, which runs unchanged on the aligned errors. With `prior=P` a class
moved by k pixels (in x plus y) pays (1 + P·k) times its error there: a prior that the object sits where the
training images put it, so a move is taken only where it fits that much better."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from diffclass.errors import DiffclassError
from diffclass.registry import Option, format_option, integer, number, text
from diffclass.strategies.base import STRATEGIES, Run, Strategy, StrategyContext


class Aligned(Strategy):
    kind = "aligned"

    def __init__(self, shifts: int, then: Strategy, prior: float = 0.0):
        self.shifts, self.then, self.grid, self.shift_prior = shifts, then, then.grid, prior

    @property
    def name(self) -> str:
        prior = f";prior={format_option(self.shift_prior)}" if self.shift_prior else ""
        return f"aligned(d={self.shifts}{prior};then={self.then.name})"

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
    from diffclass.strategies import make_strategy

    try:
        then = make_strategy(options["then"], context)
    except DiffclassError as exc:
        raise DiffclassError(f"aligned then={options['then']}: {exc}") from None
    if then.kind in ("aligned", "prefilter"):  # `auto` may resolve to a composition on a model tuned with one
        raise DiffclassError(f"aligned then= takes a diffusion strategy, not {then.name!r}: name one instead")
    return Aligned(options["d"], then, options["prior"])
