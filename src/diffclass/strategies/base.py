"""What a strategy is: a generator that asks the scorer for errors and ends with a ranking.

A strategy never touches a network. It yields `Request(candidates, slots)`, receives the
[len(candidates), len(slots)] error matrix, and finally returns an `Outcome`. Written this way, the same
strategy code runs one image at a time or many images in lockstep (their requests are batched together).
"""

from __future__ import annotations

from collections.abc import Generator, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from diffclass.hierarchy import LabelTree
from diffclass.registry import Registry, format_option
from diffclass.timesteps import TimestepGrid

if TYPE_CHECKING:  # strategies see error matrices, never the network: importing them stays free of torch
    import torch

    from diffclass.scoring import ImageErrors

# name -> build(options, context, rest): each strategy file registers its spec name, options and defaults
STRATEGIES = Registry("strategy")
MAX_SLOTS = 20_000  # slots per candidate: past the grid they are fresh noise draws; more only exhausts memory


@dataclass
class StrategyContext:
    """What a spec needs to become a strategy: the class count, the scorer's grid and the model's tree."""

    num_classes: int
    timesteps: list[int]
    tree: LabelTree | None = None
    front: dict | None = None  # the model's tuned front, for `auto`
    windowed: bool = False  # the grid is a calibrated window, not the whole timestep range: defaults need fewer slots
    anchors: list[list[float]] | None = None  # per class, where its training images put their content (`registered`)


@dataclass(frozen=True)
class Placement:
    """Where the engine reads each candidate besides the image as it is: at every whole-pixel shift up to `shifts`
    in x and y (`aligned`), and with the image's content moved to where the candidate's training images put theirs
    (`registered`, by `anchors`: candidate -> (y, x)), and up to `slack` pixels above and below that move. Each
    candidate is read where its mean error, times (1 + prior·k) for a move of k pixels in x plus y, is lowest."""

    shifts: int = 0
    prior: float = 0.0
    slack: int = 0
    anchors: dict[Hashable, tuple[float, float]] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Request:
    candidates: tuple[Hashable, ...]
    slots: tuple[int, ...]


@dataclass
class Outcome:
    """A strategy's verdict: candidates best first, each with the mean error it was last ranked by."""

    ranking: list[Hashable]
    scores: dict[Hashable, float]
    trace: list[dict] = field(default_factory=list)  # per stage: candidates scored, slots used, survivors


Run = Generator[Request, "torch.Tensor", Outcome]


class Strategy:
    """Base class: subclasses set `kind` and implement `run`; `name` shows the resolved options."""

    kind: str = ""
    grid: TimestepGrid | None = None  # a timestep range of its own (option t=MIN-MAX); None: the scorer's grid
    placement: Placement | None = None  # read each class on moved copies of the image too (`aligned`, `registered`)

    def options(self) -> dict[str, object]:
        return {}

    @property
    def name(self) -> str:
        options = dict(self.options())
        if self.grid is not None:
            options["t"] = self.grid.range_text
        opts = ";".join(f"{k}={format_option(v)}" for k, v in options.items())
        return f"{self.kind}({opts})" if opts else self.kind

    def run(self, candidates: Sequence[Hashable]) -> Run:
        raise NotImplementedError

    def runner(self, classifier):
        """What runs this strategy for `classifier`: the classifier itself, or a composition built around it (a
        prefilter puts a sieve in front)."""
        return classifier

    def __repr__(self) -> str:
        return self.name


def placed_stage(kind: str, spec: str, context: StrategyContext) -> Strategy:
    """The diffusion strategy a placement strategy (`aligned`, `registered`) runs on its errors: `then=SPEC`,
    never a composition, which would move its sieve's images too."""
    from diffclass.errors import DiffclassError
    from diffclass.strategies import make_strategy

    try:
        then = make_strategy(spec, context)
    except DiffclassError as exc:
        raise DiffclassError(f"{kind} then={spec}: {exc}") from None
    if then.kind in ("aligned", "registered", "prefilter"):  # `auto` may resolve to a composition tuned with one
        raise DiffclassError(f"{kind} then= takes a diffusion strategy, not {then.name!r}: name one instead")
    return then


def rank_by_mean(candidates: Sequence[Hashable], errors: torch.Tensor) -> tuple[list[Hashable], dict]:
    """Candidates sorted by mean error (stable: ties keep the candidates' order)."""
    means = errors.mean(dim=1).tolist()
    order = sorted(range(len(candidates)), key=lambda i: (means[i], i))
    return [candidates[i] for i in order], {candidates[i]: means[i] for i in order}


def drive(
    memos: Sequence[ImageErrors],
    strategy: Strategy,
    candidates: Sequence[Hashable],
    per_image: Sequence[Sequence[Hashable]] | None = None,
) -> list[Outcome]:
    """Run one strategy per image in lockstep, batching every round's requests into shared forward passes; each
    image ranks `candidates`, or its own list of `per_image` (after a prefilter)."""
    runs = [strategy.run(list(per_image[i] if per_image is not None else candidates)) for i in range(len(memos))]
    outcomes: list[Outcome | None] = [None] * len(memos)
    pending: dict[int, Request] = {}
    for i, run in enumerate(runs):
        try:
            pending[i] = next(run)
        except StopIteration as stop:
            outcomes[i] = stop.value
    while pending:
        memos[0].scorer.compute([(memos[i], r.candidates, r.slots) for i, r in pending.items()])
        for i, request in list(pending.items()):
            try:
                pending[i] = runs[i].send(memos[i].lookup(request.candidates, request.slots))
            except StopIteration as stop:
                outcomes[i] = stop.value
                del pending[i]
    return outcomes  # type: ignore[return-value]
