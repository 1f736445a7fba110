"""Hierarchical diffusion classification (HDC, "Just Leaf It"): descend the label tree level by level, score the
frontier on a few slots, keep nodes by a pruning rule, expand the kept ones, then hand the collected leaves to a
final strategy.

Improvements over the original code: a leaf scored during the descent is scored under its class index, so the
final stage reuses those errors (same noise bank, no call repeated); K * n never rounds to zero; a lone child is
expanded rather than dropped; leaves met at any depth are collected; the frontier is never empty.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace

from diffclass.errors import DiffclassError
from diffclass.hierarchy import LabelTree
from diffclass.registry import Option, choice, integer, parse_spec, text
from diffclass.strategies.base import MAX_SLOTS, STRATEGIES, Outcome, Request, Run, Strategy, StrategyContext
from diffclass.strategies.beam import BEAM_OPTIONS
from diffclass.strategies.rules import RULES, PruningRule

DEFAULT_LEVEL_SLOTS = 8


class Hierarchical(Strategy):
    kind = "hdc"

    def __init__(
        self,
        tree: LabelTree,
        rule: PruningRule,
        final: Callable[[int], Strategy],
        final_name: str,
        slots: int,
        start_depth: int,
    ):
        """`final(k)` builds the last stage for the k collected leaves (so its defaults scale to k, not to all
        classes)."""
        if slots < 1 or start_depth < 0:
            raise DiffclassError(f"hdc needs slots >= 1 and start depth >= 0, got {slots}, {start_depth}")
        self.tree, self.rule, self.final, self.final_name = tree, rule, final, final_name
        self.slots, self.start_depth = slots, start_depth
        self.extra_options: dict[str, object] = {}  # hdc+beam shows its beam's options inline

    def options(self) -> dict[str, object]:
        final = self.extra_options or {"final": self.final_name}
        return {"rule": self.rule.kind, **self.rule.options(), "slots": self.slots, "depth": self.start_depth, **final}

    def key(self, node_id: str) -> Hashable:
        """Leaves are scored as their class index, so their errors are shared with every other stage."""
        node = self.tree.nodes[node_id]
        return node.class_index if node.is_leaf else node_id

    def run(self, candidates: Sequence[Hashable]) -> Run:
        allowed = set(candidates)
        frontier = [node for node in self.tree.frontier(self.start_depth) if self._reaches(node, allowed)]
        leaves: list[int] = []
        pruned: list[list[int]] = []  # per level, leaves below the nodes dropped there, best node first
        scores: dict[Hashable, float] = {}
        trace = []
        while frontier:
            # 1. a lone node needs no scoring: expand it (or collect it) for free
            if len(frontier) == 1:
                node = frontier[0]
                frontier = self._expand([node], leaves, allowed)
                continue
            # 2. score the frontier on the first n slots of the grid
            keys = [self.key(node) for node in frontier]
            errors = yield Request(tuple(keys), tuple(range(self.slots)))
            means = errors.mean(dim=1)
            kept = self.rule.keep(means)
            for i, key in enumerate(keys):
                scores[key] = means[i].item()
            dropped = sorted(set(range(len(frontier))) - set(kept), key=lambda i: means[i].item())
            pruned.append([c for i in dropped for c in self.tree.leaves_under(frontier[i]) if c in allowed])
            trace.append(dict(level=len(trace), candidates=len(frontier), slots=self.slots, kept=len(kept)))
            # 3. kept leaves are collected, kept internal nodes expanded into the next frontier
            frontier = self._expand([frontier[i] for i in kept], leaves, allowed)
        outcome = yield from self.final(len(leaves)).run(leaves)
        ranking = outcome.ranking + [c for level in reversed(pruned) for c in level]
        scores = {k: v for k, v in scores.items() if isinstance(k, int)} | outcome.scores
        return Outcome(ranking, scores, trace + outcome.trace)

    def _reaches(self, node_id: str, allowed: set) -> bool:
        return any(c in allowed for c in self.tree.leaves_under(node_id))

    def _expand(self, nodes: list[str], leaves: list[int], allowed: set) -> list[str]:
        frontier = []
        for node_id in nodes:
            node = self.tree.nodes[node_id]
            if node.is_leaf:
                leaves.append(node.class_index)
            else:
                frontier.extend(c for c in node.children if self._reaches(c, allowed))
        return frontier


FINAL_STAGES = ("exhaustive", "adaptive", "beam", "sequential")
DESCENT_OPTIONS = (
    Option("rule", "top-fraction", choice(*RULES.names()), "how a level's frontier is pruned"),
    *(option for rule in RULES for option in rule.options),
    Option("slots", DEFAULT_LEVEL_SLOTS, integer(1, MAX_SLOTS), "slots each level's frontier is scored on"),
    Option("depth", 1, integer(0, 10_000), "the tree depth the descent starts at"),
)


def _descent(final_spec: str, options: dict, context: StrategyContext, rest: dict) -> Hierarchical:
    """The descent, then `final_spec` on the collected leaves; options the descent does not know go to the final
    stage, so `hdc(final=adaptive(keep=5,1;n=4,16))` and `hdc(keep=5,1;n=4,16)` are the same strategy."""
    final, nested = parse_spec(final_spec)
    if final not in FINAL_STAGES:
        raise DiffclassError(f"unknown final stage {final!r} for hdc; choose one of {', '.join(FINAL_STAGES)}")
    final_raw = {**rest, **nested}
    entry = STRATEGIES.get(final)
    final_options, unknown = entry.parse(final_raw, strict=False)
    if unknown:
        allowed = ", ".join(o.name for o in (*DESCENT_OPTIONS, *entry.options))
        raise DiffclassError(f"unknown option(s) {', '.join(sorted(unknown))} for hdc; allowed: {allowed}, t")
    if context.tree is None:
        raise DiffclassError("hdc needs a label tree: the model has none, pass --tree")
    rule = RULES.get(options["rule"]).build(options)

    def final_stage(k: int) -> Strategy:
        return entry.build(final_options, replace(context, num_classes=k, front=None), {})

    sample = final_stage(context.num_classes)
    strategy = Hierarchical(
        context.tree,
        rule,
        final=final_stage,
        final_name=final if not final_raw else sample.name,
        slots=options["slots"],
        start_depth=options["depth"],
    )
    if final == "beam":
        strategy.kind = "hdc+beam"
        strategy.extra_options = sample.options()
    return strategy


@STRATEGIES.register(
    "hdc",
    *DESCENT_OPTIONS,
    Option("final", "adaptive", text, "the strategy run on the leaves that survive (with options of its own)"),
    help="hierarchical descent of the label tree with a pruning rule, then a final stage (HDC, Just Leaf It)",
    tree=True,
)
def _hdc(options: dict, context: StrategyContext, rest: dict) -> Hierarchical:
    return _descent(options["final"], options, context, rest)


@STRATEGIES.register(
    "hdc+beam",
    *DESCENT_OPTIONS,
    *BEAM_OPTIONS,
    help="the hierarchical descent, then the timestep beam on the surviving leaves",
    tree=True,
)
def _hdc_beam(options: dict, context: StrategyContext, rest: dict) -> Hierarchical:
    beam = {o.name: options[o.name] for o in BEAM_OPTIONS}
    changed = {k: v for k, v in beam.items() if v != next(o.default for o in BEAM_OPTIONS if o.name == k)}
    return _descent("beam", options, context, {**rest, **{k: str(v) for k, v in changed.items()}})
