"""What a strategy is: a generator that asks the scorer for errors and ends with a ranking.

A strategy never touches a network. It yields `Request(candidates, slots)`, receives the
[len(candidates), len(slots)] error matrix, and finally returns an `Outcome`. Written this way, the same
strategy code runs one image at a time or many images in lockstep (their requests are batched together).
"""

from __future__ import annotations

from collections.abc import Generator, Hashable, Sequence
from dataclasses import dataclass, field

import torch

from diffclass.errors import DiffclassError
from diffclass.scoring import ImageErrors, TimestepGrid


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


Run = Generator[Request, torch.Tensor, Outcome]


class Strategy:
    """Base class: subclasses set `kind` and implement `run`; `name` shows the resolved options."""

    kind: str = ""
    grid: TimestepGrid | None = None  # a timestep range of its own (option t=MIN-MAX); None: the scorer's grid

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

    def __repr__(self) -> str:
        return self.name


def format_option(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(format_option(v) for v in value)
    return str(value)


def rank_by_mean(candidates: Sequence[Hashable], errors: torch.Tensor) -> tuple[list[Hashable], dict]:
    """Candidates sorted by mean error (stable: ties keep the candidates' order)."""
    means = errors.mean(dim=1)
    order = sorted(range(len(candidates)), key=lambda i: (means[i].item(), i))
    return [candidates[i] for i in order], {candidates[i]: means[i].item() for i in order}


def drive(memos: Sequence[ImageErrors], strategy: Strategy, candidates: Sequence[Hashable]) -> list[Outcome]:
    """Run one strategy per image in lockstep, batching every round's requests into shared forward passes."""
    runs = [strategy.run(list(candidates)) for _ in memos]
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


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """`adaptive(keep=10,1;n=10,100)` -> ("adaptive", {"keep": "10,1", "n": "10,100"})."""
    spec = spec.strip()
    if "(" not in spec:
        return spec, {}
    if not spec.endswith(")"):
        raise DiffclassError(f"malformed strategy {spec!r}: expected name(option=value;...)")
    kind, body = spec[:-1].split("(", 1)
    options = {}
    for part in filter(None, (p.strip() for p in _split_top_level(body))):
        if "=" not in part:
            raise DiffclassError(f"malformed option {part!r} in strategy {spec!r}: expected option=value")
        key, value = part.split("=", 1)
        options[key.strip()] = value.strip()
    return kind.strip(), options


def _split_top_level(body: str) -> list[str]:
    """Split options at `;` outside parentheses, so a nested stage like `final=adaptive(keep=5,1;n=4,16)` stays
    one option (strategy names print it that way, and a name must parse back)."""
    parts, depth, current = [], 0, []
    for char in body:
        if char == ";" and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += (char == "(") - (char == ")")
        current.append(char)
    return parts + ["".join(current)]
