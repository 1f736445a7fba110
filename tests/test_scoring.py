import math

import pytest
import torch

from diffclass.errors import DiffclassError
from diffclass.scoring import ErrorScorer, NonFiniteError, TimestepGrid
from tests.conftest import CallRecorder


def test_grid_prefixes_are_evenly_spaced_and_nest():
    grid = TimestepGrid(0, 999, size=64)
    assert sorted(grid.timesteps) == sorted(set(grid.timesteps)) and len(grid.timesteps) == 64
    for k in range(1, 7):
        prefix = sorted(grid.timesteps[: 2**k])
        gaps = {b - a for a, b in zip(prefix, prefix[1:])}
        assert max(gaps) - min(gaps) <= 1, (k, prefix)
        assert prefix[0] < 1000 / 2**k and prefix[-1] > 999 - 1000 / 2**k
    assert grid.timestep(64) == grid.timestep(0) and grid.timestep(70) == grid.timestep(6)


def test_grid_respects_range_and_rejects_bad_ones():
    grid = TimestepGrid(100, 300, size=10)
    assert all(100 <= t <= 300 for t in grid.timesteps) and len(set(grid.timesteps)) == 10
    with pytest.raises(DiffclassError):
        TimestepGrid(500, 100)


def test_every_candidate_sees_the_same_noise_and_timesteps(backbone, images):
    recorder = CallRecorder(backbone)
    scorer = ErrorScorer(backbone, batch_size=13)
    (memo,) = scorer.start(images[:1], ["img"])
    memo.errors([0, 1, 2, 3, 4], 6)
    by_class = {}
    for x_t, t, c in recorder.triples:
        by_class.setdefault(c, []).append((t, x_t))
    assert sorted(by_class) == [0, 1, 2, 3, 4]
    reference = sorted(by_class[0], key=lambda p: p[0])
    for c in range(1, 5):
        pairs = sorted(by_class[c], key=lambda p: p[0])
        assert [t for t, _ in pairs] == [t for t, _ in reference]
        for (_, x), (_, y) in zip(pairs, reference):
            assert torch.equal(x, y)


def test_no_pair_is_evaluated_twice_and_nfe_counts_triples(backbone, images):
    recorder = CallRecorder(backbone)
    scorer = ErrorScorer(backbone, batch_size=10)
    (memo,) = scorer.start(images[:1], ["img"])
    memo.errors([0, 1, 2], 4)
    memo.errors([1, 2, 3], 8)  # (1..2, slots 0..3) are memoised
    memo.errors([2], [0, 5, 9])
    expected = 3 * 4 + (2 * 4 + 1 * 8) + 1
    assert memo.nfe == expected == len(recorder.triples) == sum(recorder.calls)
    assert all(n <= 10 for n in recorder.calls)
    keys = [(t, c, x.sum().item()) for x, t, c in recorder.triples]
    assert len(set(keys)) == len(keys)


def test_noise_depends_only_on_seed_image_and_slot(backbone, images):
    a = ErrorScorer(backbone, seed=3).start(images[:2], ["x", "y"])
    b = ErrorScorer(backbone, seed=3, batch_size=1).start(images[1:2], ["y"])
    c = ErrorScorer(backbone, seed=4).start(images[1:2], ["y"])
    assert torch.equal(a[1].noise(5), b[0].noise(5))
    assert not torch.equal(a[1].noise(5), c[0].noise(5))
    assert not torch.equal(a[0].noise(5), a[1].noise(5))
    assert not torch.equal(a[1].noise(5), a[1].noise(6))


@pytest.mark.parametrize("loss", ["l1", "l2", "huber"])
def test_errors_match_the_definition(backbone, images, loss):
    scorer = ErrorScorer(backbone, TimestepGrid(size=8), loss=loss)
    (memo,) = scorer.start(images[:1], ["img"])
    got = memo.errors([2], [3])[0, 0].item()
    t = scorer.grid.timestep(3)
    a = backbone.alphas_cumprod[t].float()
    eps = memo.noise(3)
    x_t = a.sqrt() * memo.x0 + (1 - a).sqrt() * eps
    with torch.no_grad():
        eps_hat = backbone.predict_noise(x_t[None], torch.tensor([t]), torch.tensor([2]))[0]
    diff = eps_hat - eps
    want = {
        "l1": diff.abs().mean(),
        "l2": diff.pow(2).mean(),
        "huber": torch.nn.functional.huber_loss(eps_hat, eps),
    }[loss].item()
    assert math.isclose(got, want, rel_tol=1e-5)


def test_errors_are_batch_size_invariant(backbone, images):
    results = []
    for batch_size in (1, 7, 64):
        memos = ErrorScorer(backbone, batch_size=batch_size).start(images[:3], ["a", "b", "c"])
        memos[0].scorer.compute([(m, [0, 1, 2, 3, 4], range(5)) for m in memos])
        results.append(torch.stack([m.lookup([0, 1, 2, 3, 4], range(5)) for m in memos]))
    assert torch.allclose(results[0], results[1], atol=1e-5) and torch.allclose(results[0], results[2], atol=1e-5)


def test_nan_from_the_network_is_detected(backbone, images):
    backbone.predict_noise = lambda x_t, t, cond: torch.full_like(x_t, float("nan"))
    (memo,) = ErrorScorer(backbone).start(images[:1], ["img"])
    with pytest.raises(NonFiniteError, match="NaN/Inf"):
        memo.errors([0], 2)


def test_bad_options_are_refused(backbone):
    with pytest.raises(DiffclassError, match="unknown loss"):
        ErrorScorer(backbone, loss="l3")
    with pytest.raises(DiffclassError, match="batch size"):
        ErrorScorer(backbone, batch_size=0)
