"""Sequential paired t-test elimination: the test it runs, the pairs it asks for, its budget."""

import math

import pytest
import torch
from scipy.stats import ttest_rel

from diffclass.strategies import Sequential, StrategyContext, make_strategy
from tests.conftest import play


def _errors(num_candidates: int, slots: int, offsets, seed: int = 0) -> torch.Tensor:
    """A shared per-slot difficulty (what the common noise bank gives), plus each candidate's offset and noise."""
    gen = torch.Generator().manual_seed(seed)
    shared = torch.rand(slots, generator=gen) * 3
    noise = torch.randn(num_candidates, slots, generator=gen) * 0.05
    return shared + torch.tensor(offsets).view(-1, 1) + noise


@pytest.mark.parametrize("seed", range(5))
def test_a_candidate_is_dropped_exactly_when_the_paired_t_test_rejects(seed):
    offsets = [0.0, 0.08, 0.01, -0.005, 0.3, 0.02]
    errors = _errors(6, 10, offsets, seed)
    p = 0.01
    outcome, requests = play(
        Sequential(p, min_slots=10, max_slots=10, step=1, budget=0), list(range(6)), lambda c, s: float(errors[c, s])
    )
    assert requests[0].slots == tuple(range(10)) and len(requests) == 1  # one test, after min = max slots
    means = errors.double().mean(1)
    leader = int(means.argmin())
    expected_alive = {
        c
        for c in range(6)
        if c == leader or ttest_rel(errors[c].double(), errors[leader].double(), alternative="greater").pvalue >= p
    }
    survivors = set(outcome.ranking[: len(expected_alive)])
    assert survivors == expected_alive and outcome.trace[-1]["candidates"] == len(expected_alive)
    assert outcome.ranking[0] == leader and sorted(outcome.ranking) == list(range(6))


def test_no_pair_is_asked_for_twice_and_survivors_get_the_same_slots():
    errors = _errors(8, 64, [0.0, 0.5, 0.02, 0.4, 0.3, 0.01, 0.6, 0.2])
    outcome, requests = play(Sequential(0.01, 4, 40, 3, 0), list(range(8)), lambda c, s: float(errors[c, s]))
    pairs = [(c, s) for r in requests for c in r.candidates for s in r.slots]
    assert len(pairs) == len(set(pairs))
    for earlier, later in zip(requests, requests[1:]):
        assert set(later.candidates) <= set(earlier.candidates) and later.slots[0] == earlier.slots[-1] + 1
    assert 1 in outcome.ranking[-3:]  # far worse candidates go first and rank last
    assert max(s for r in requests for s in r.slots) < 40


@pytest.mark.parametrize("budget", [20, 37, 100, 333])
def test_the_nfe_budget_is_never_exceeded(budget):
    errors = _errors(10, 200, [0.0] * 10)  # indistinguishable: only the budget or max stops it
    outcome, requests = play(Sequential(0.001, 2, 200, 2, budget), list(range(10)), lambda c, s: float(errors[c, s]))
    spent = sum(len(r.candidates) * len(r.slots) for r in requests)
    assert spent <= budget and budget - spent < 2 * 10
    assert all(math.isfinite(v) for v in outcome.scores.values())


def test_bad_sequential_specs_say_why():
    from diffclass.errors import DiffclassError

    context = StrategyContext(10, list(range(0, 1000, 10)))
    for spec, message in [
        ("sequential(p=1)", "p must be in"),
        ("sequential(min=9;max=4)", "min <= max"),
        ("sequential(budget=5)", "cannot give each of 10 classes two slots"),
    ]:
        with pytest.raises(DiffclassError, match=message):
            make_strategy(spec, context)
    assert make_strategy("sequential", context).name == "sequential(p=0.002;min=8;max=64;step=4;budget=0)"
