"""`registered(prior=…;slack=…;then=…)`: each class read with the image's content moved to where that class's training
images put theirs. A class-conditional diffusion model learns the place with the shape, so a crop whose content
sits elsewhere (a character centred on its box, an object off-centre) fits every class worse, its own most of all.
The model's anchors (`diffclass fit-anchors`: each class's mean ink centre, `diffclass.placement`) say where each
class expects it: each class is read on the image as it is and on the image moved so that its ink centre lands on
the class's anchor, whichever fits better once the move has paid (1 + prior·k) for its k pixels (in x plus y).
Unlike `aligned`, which tries every shift up to d pixels for every class, one move per class reaches any distance:
a class-conditional network pays at most twice the calls of `then`, an all-class one a call per distinct move.
Typefaces set a character's baseline and height a pixel or so apart, which the class's mean anchor cannot know:
`slack=1` also reads each class a pixel above and below its move, at up to twice as many calls again."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from diffclass.errors import DiffclassError
from diffclass.registry import Option, format_option, integer, number, text
from diffclass.strategies.base import STRATEGIES, Placement, Run, Strategy, StrategyContext, placed_stage

DEFAULT_PRIOR = 0.05


class Registered(Strategy):
    kind = "registered"

    def __init__(
        self, anchors: dict[Hashable, tuple[float, float]], then: Strategy, prior: float = DEFAULT_PRIOR, slack: int = 0
    ):
        self.then, self.grid = then, then.grid
        self.placement = Placement(prior=prior, anchors=anchors, slack=slack)

    @property
    def name(self) -> str:
        slack = f";slack={self.placement.slack}" if self.placement.slack else ""  # names from before slack stay valid
        return f"registered(prior={format_option(self.placement.prior)}{slack};then={self.then.name})"

    def run(self, candidates: Sequence[Hashable]) -> Run:
        return (yield from self.then.run(candidates))


def class_anchors(anchors: list[list[float]], tree) -> dict[Hashable, tuple[float, float]]:
    """Every candidate's anchor: a class's own, an internal tree node's the mean of its leaves'."""
    own: dict[Hashable, tuple[float, float]] = {c: (float(y), float(x)) for c, (y, x) in enumerate(anchors)}
    for node in tree.internal_nodes() if tree is not None else ():
        leaves = tree.leaves_under(node)
        own[node] = tuple(sum(own[c][i] for c in leaves) / len(leaves) for i in range(2))  # type: ignore[assignment]
    return own


@STRATEGIES.register(
    "registered",
    Option("prior", DEFAULT_PRIOR, number(0, 10), "relative error a class pays per pixel the image is moved"),
    Option("slack", 0, integer(0, 2), "also read each class up to this many pixels above and below its move"),
    Option("then", "exhaustive", text, "the strategy that ranks the classes on the registered errors"),
    help="each class also read with the image's content moved to where its training images put theirs (the "
    "model's anchors; at most 2x then's calls per class, (2 + 2·slack)x with slack)",
)
def _build(options: dict, context: StrategyContext, rest: dict) -> Registered:
    then = placed_stage("registered", options["then"], context)
    if context.anchors is None:
        raise DiffclassError(
            "registered needs the model's anchors, where each class's training images put their content: "
            "run diffclass fit-anchors --model MODEL"
        )
    return Registered(class_anchors(context.anchors, context.tree), then, options["prior"], options["slack"])
