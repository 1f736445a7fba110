"""Beam and hierarchical (HDC) strategies, alone and composed."""

import pytest
import torch

from diffclass.errors import DiffclassError
from diffclass.hierarchy import LabelTree, TreeNode
from diffclass.registry import parse_spec
from diffclass.strategies import Beam, Hierarchical, TopFraction, WithinStd, make_strategy
from diffclass.strategies.adaptive import Adaptive
from diffclass.strategies.beam import visiting_order
from diffclass.strategies.exhaustive import Exhaustive
from tests.conftest import CallRecorder, animal_tree, ctx, play, tree_classifier

TIMESTEPS = [62, 562, 312, 812, 187, 687, 437, 937]


def test_visiting_orders():
    assert [TIMESTEPS[j] for j in visiting_order(TIMESTEPS, "clean-first")] == sorted(TIMESTEPS)
    assert [TIMESTEPS[j] for j in visiting_order(TIMESTEPS, "noisy-first")] == sorted(TIMESTEPS, reverse=True)
    middle = [TIMESTEPS[j] for j in visiting_order(TIMESTEPS, "middle-out")]
    assert middle[0] == 562 and sorted(middle) == sorted(TIMESTEPS) and set(middle[1:3]) == {437, 687}


def test_beam_keeps_a_fixed_width_and_stops_when_one_class_leads():
    errors = {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0, 4: 5.0}
    beam = Beam(TIMESTEPS, b=2, t_s=3, samples=1, direction="clean-first")
    outcome, requests = play(beam, [0, 1, 2, 3, 4], lambda c, s: errors[c])
    assert len(requests) == 3  # class 0 led at steps 1, 2, 3: stop before the 8 timesteps are used
    assert [len(r.candidates) for r in requests] == [5, 3, 3]
    assert [TIMESTEPS[r.slots[0]] for r in requests] == [62, 187, 312]
    assert outcome.ranking == [0, 1, 2, 3, 4]


def test_beam_uses_every_timestep_when_the_lead_keeps_changing_and_n_draws_each():
    def error(c, s):
        return float((c + s) % 3)  # the leader changes with every slot

    outcome, requests = play(Beam(TIMESTEPS, b=1, t_s=99, samples=2, direction="clean-first"), [0, 1, 2], error)
    assert len(requests) == len(TIMESTEPS) and all(len(r.slots) == 2 for r in requests)
    assert requests[0].slots == (0, 8)  # the second draw at a timestep is the slot one grid further
    assert sorted(outcome.ranking) == [0, 1, 2]


def test_rules_never_keep_nothing():
    errors = torch.tensor([3.0, 1.0, 2.0, 10.0])
    assert TopFraction(0.5).keep(errors) == [1, 2]
    assert TopFraction(0.01).keep(errors) == [1]  # K * n < 1 still keeps the best
    assert WithinStd(0.0).keep(errors) == [1]
    assert WithinStd(0.5).keep(errors) == [1, 2, 0]
    assert TopFraction(1.0).keep(torch.tensor([5.0])) == [0]


def _hdc(tree, rule=None, final=None, slots=2):
    final = final or (lambda k: Exhaustive(n=6))
    return Hierarchical(tree, rule or TopFraction(0.5), final, "exhaustive(n=6)", slots=slots, start_depth=1)


def test_hdc_descends_expands_lone_children_and_ranks_everyone():
    # "wild" is the best group, and inside it eel beats bee
    node_error = {"pets": 2.0, "wild": 1.0, "lone": 3.0, 0: 0.5, 1: 1.5, 2: 2.0, 3: 2.5, 4: 1.0}
    outcome, requests = play(_hdc(animal_tree()), [0, 1, 2, 3, 4], lambda k, s: node_error[k])
    assert requests[0].candidates == ("pets", "wild", "lone")
    # K=0.5 of 3 keeps 2 groups (wild, pets); their 4 leaves are scored on the same 2 slots, 2 are kept
    assert requests[1].candidates == (1, 4, 2, 3) and requests[1].slots == (0, 1)
    assert set(requests[2].candidates) == {4, 1} and requests[2].slots == tuple(range(6))
    # final stage first, then the leaves pruned at level 2, then those pruned at level 1
    assert outcome.ranking == [4, 1, 2, 3, 0]


def test_hdc_collects_leaves_at_any_depth_and_a_lone_chain_costs_nothing():
    node_error = {"pets": 2.0, "wild": 5.0, "lone": 1.0, 0: 0.5, 1: 9, 2: 2.0, 3: 2.5, 4: 9}
    outcome, requests = play(_hdc(animal_tree(), WithinStd(0.0)), [0, 1, 2, 3, 4], lambda k, s: node_error[k])
    # lone -> chain -> ant is expanded without scoring "chain"; ant is collected as a leaf
    assert all("chain" not in r.candidates for r in requests)
    assert outcome.ranking[0] == 0


def test_single_leaf_tree_and_a_tree_of_one_level():
    single = LabelTree([TreeNode("r", "r", ["a"]), TreeNode("a", "a", class_index=0)])
    outcome, requests = play(_hdc(single), [0], lambda k, s: 1.0)
    assert outcome.ranking == [0] and all(r.candidates == (0,) for r in requests)
    flat = LabelTree(
        [TreeNode("r", "r", ["a", "b"]), TreeNode("a", "a", class_index=0), TreeNode("b", "b", class_index=1)]
    )
    outcome, _ = play(_hdc(flat), [0, 1], lambda k, s: float(k == 0))
    assert outcome.ranking == [1, 0]


def test_hdc_never_scores_a_pair_twice_and_reuses_descent_errors(images):
    clf = tree_classifier()
    recorder = CallRecorder(clf.backbone)
    decisions = clf.classify(images[:3], "hdc(rule=top-fraction;K=0.5;slots=2;final=exhaustive;n=6)")
    keys = [(t, c, x.sum().item()) for x, t, c in recorder.triples]
    assert len(keys) == len(set(keys)) == sum(d.nfe for d in decisions)
    for d in decisions:
        assert sorted(d.ranking) == [0, 1, 2, 3, 4]
        # level 1: 3 nodes x 2 slots; level 2: 2 leaves x 2 slots; final: 6 slots for kept leaves, 2 already done
        assert d.nfe <= 3 * 2 + 2 * 2 + 2 * (6 - 2) + 1 * 6


@pytest.mark.parametrize(
    "spec",
    [
        "exhaustive(n=4)",
        "adaptive(keep=2,1;n=2,6)",
        "beam(b=2;t_s=2)",
        "beam(start=noisy-first;N=2)",
        "hdc",
        "hdc(rule=within-std;m=1;final=beam)",
        "hdc+beam(K=0.5;b=2;t_s=2)",
    ],
)
def test_every_strategy_returns_a_full_ranking_and_its_nfes(images, spec):
    clf = tree_classifier()
    recorder = CallRecorder(clf.backbone)
    decisions = clf.classify(images[:2], spec)
    assert len(recorder.triples) == sum(d.nfe for d in decisions) > 0
    for d in decisions:
        assert sorted(d.ranking) == [0, 1, 2, 3, 4] and d.label == d.ranking[0]


def test_composed_names_show_every_option():
    context = ctx(5, animal_tree())
    assert make_strategy("hdc", context).name == "hdc(rule=top-fraction;K=0.5;slots=8;depth=1;final=adaptive)"
    assert (
        make_strategy("hdc+beam(rule=within-std;m=2;b=3)", context).name
        == "hdc+beam(rule=within-std;m=2;slots=8;depth=1;b=3;t_s=8;N=1;start=clean-first)"
    )
    assert make_strategy("beam", context).name == "beam(b=2;t_s=8;N=1;start=clean-first)"
    assert isinstance(make_strategy("hdc(final=adaptive;keep=3,1;n=4,8)", context).final(5), Adaptive)
    for spec in ("hdc(final=adaptive;keep=3,1;n=4,8)", "hdc(final=exhaustive(n=4))", "hdc+beam(b=3;t=10-500)"):
        name = make_strategy(spec, context).name  # a printed name is a spec that builds the same strategy
        assert make_strategy(name, context).name == name and "(" in name.split("final=")[-1]
    assert parse_spec("hdc(m=2;final=adaptive(keep=3,1;n=4,8))")[1] == {"m": "2", "final": "adaptive(keep=3,1;n=4,8)"}


@pytest.mark.parametrize(
    "spec, context, message",
    [
        ("hdc", ctx(5), "needs a label tree"),
        ("hdc(final=magic)", ctx(5, animal_tree()), "unknown final stage"),
        ("hdc(rule=vibes)", ctx(5, animal_tree()), r"option rule='vibes': choose one of top-fraction, within-std"),
        ("hdc(K=2)", ctx(5, animal_tree()), r"option K=2 must be a finite number in \(0, 1\]"),
        ("beam(start=sideways)", ctx(5), r"option start='sideways': choose one of clean-first"),
        ("beam(b=0.5)", ctx(5), r"option b=0.5 must be a finite number in \[1,"),
        ("beam(t_s=x)", ctx(5), r"option t_s='x' must be an integer"),
        ("hdc+beam(keep=3)", ctx(5, animal_tree()), r"unknown option\(s\) keep for hdc"),
    ],
)
def test_bad_accelerated_specs(spec, context, message):
    with pytest.raises(DiffclassError, match=message):
        make_strategy(spec, context)
