"""`prefilter`: a cheap discriminative classifier names each image's top k classes, and a diffusion strategy then
scores only those (Li et al. 2023 prefilter ImageNet with CLIP's top 20). Any model diffclass loads can filter:
the plain twin or a DiDiCM model costs one to a few calls. A strategy never sees images, so this one names its
runner instead: `diffclass.prefiltered.Prefiltered`, the composition of the filter and the diffusion classifier,
which adds the filter's calls and MACs to each image's cost. For zero-shot models, CLIP
(`by=clip:HUB_ID_OR_FOLDER`) ranks the classes by their prompts (`diffclass.clip_filter`)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import replace

from diffclass.errors import DiffclassError
from diffclass.hub import resolve_model_folder
from diffclass.registry import Option, integer, parse_spec, text
from diffclass.strategies.auto import chosen_spec
from diffclass.strategies.base import STRATEGIES, Run, Strategy, StrategyContext

THEN_STAGES = ("exhaustive", "adaptive", "beam", "sequential")
PLACED_STAGES = ("aligned", "registered")
CLIP_PREFIX = "clip:"  # by=clip:HUB_ID_OR_FOLDER


class Prefilter(Strategy):
    kind = "prefilter"

    def __init__(self, by: str, k: int, then: Strategy):
        self.by, self.k, self.then = by, k, then

    def options(self) -> dict[str, object]:
        return {"by": self.by, "k": self.k, "then": self.then.name}

    @property
    def placement(self):
        """Where its stage reads each kept class (`explain` draws the errors there)."""
        return self.then.placement

    def run(self, candidates: Sequence[Hashable]) -> Run:
        return (yield from self.then.run(candidates))

    def runner(self, classifier):
        return classifier.prefiltered(self)


@STRATEGIES.register(
    "prefilter",
    Option(
        "by", None, text, "the model that names the top k classes: an embedded name, a folder, or clip:HUB_ID_OR_FOLDER"
    ),
    Option("k", 10, integer(1, 1_000_000), "classes the filter keeps per image"),
    Option(
        "then",
        "exhaustive",
        text,
        "what ranks the kept classes: exhaustive, adaptive, beam, sequential, aligned, registered or auto",
    ),
    help="a cheap classifier keeps each image's top k classes, then a diffusion strategy ranks them",
)
def _build(options: dict, context: StrategyContext, rest: dict) -> Prefilter:
    from diffclass.strategies import make_strategy

    if not options["by"]:
        raise DiffclassError("prefilter needs by=MODEL, e.g. prefilter(by=plain-glyphs;k=10;then=exhaustive(n=32))")
    if not options["by"].startswith(CLIP_PREFIX):  # CLIP: a hub id or folder, loaded (or refused) when it runs
        try:
            resolve_model_folder(options["by"])  # an embedded or saved model: a filter must be local and cheap
        except DiffclassError as exc:
            raise DiffclassError(f"prefilter by={options['by']}: {exc}") from None
    then, then_options = parse_spec(options["then"])
    if then == "auto":  # the most accurate stage of the model's front that a prefilter can run, for the budget
        values, _ = STRATEGIES.get("auto").parse(then_options)
        then = chosen_spec(values, context, kinds=THEN_STAGES)
    elif then in (*THEN_STAGES, *PLACED_STAGES):  # the kept classes, each read where it fits the image best
        then = options["then"]
    else:
        allowed = ", ".join((*THEN_STAGES, *PLACED_STAGES, "auto"))
        raise DiffclassError(f"prefilter then= must be one of {allowed}, got {options['then']!r}")
    k = min(options["k"], context.num_classes)
    return Prefilter(options["by"], k, make_strategy(then, replace(context, num_classes=k, tree=None, front=None)))
