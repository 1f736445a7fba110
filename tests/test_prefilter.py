"""A prefilter names each image's top k classes; the diffusion strategy ranks only those; both costs count."""

import pytest
import torch

import diffclass
from diffclass.errors import DiffclassError
from tests.conftest import tiny_backbone


@pytest.fixture
def filter_dir(tmp_path):
    backbone = tiny_backbone(seed=3, classes=[str(d) for d in range(10)])
    backbone.info.dataset = "digits"
    backbone.save_pretrained(tmp_path / "filter")
    return tmp_path / "filter"


def test_the_strategy_ranks_only_the_filters_top_k_and_pays_for_both(model_dir, filter_dir):
    clf, sieve = diffclass.load(model_dir), diffclass.load(filter_dir)
    images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    ids = ["a", "b", "c"]
    spec = f"prefilter(by={filter_dir};k=3;then=exhaustive(n=2))"
    decisions = clf.classify(images, spec, ids)
    filtered = sieve.classify(images, "exhaustive(n=1)", ids)
    alone = sieve.classify(images, None, ids)
    for d, f, a in zip(decisions, filtered, alone):
        assert set(d.ranking[:3]) == set(a.ranking[:3]) and set(d.scores) == set(a.ranking[:3])
        assert d.ranking[3:] == a.ranking[3:] and sorted(d.ranking) == list(range(10))
        assert d.nfe == 3 * 2 + a.nfe
        assert d.macs == 6 * clf.macs_per_call + a.nfe * sieve.macs_per_call
        assert f.nfe == 10  # (the filter's own strategy is its default, not the one after `then`)
    from diffclass.data import load_dataset

    summary = clf.evaluate(load_dataset("digits", "test", 8), spec, limit=4, show_progress=False)
    assert summary.strategy == f"prefilter(by={filter_dir};k=3;then=exhaustive(n=2))"
    assert summary.gmacs_per_image == pytest.approx(sum(r.macs for r in summary.records) / 4 / 1e9, abs=1e-4)


def test_a_filter_with_other_classes_is_refused(model_dir, tmp_path):
    tiny_backbone(classes=list("abcdefghij")).save_pretrained(tmp_path / "other")
    clf = diffclass.load(model_dir)
    with pytest.raises(DiffclassError, match="knows other classes"):
        clf.classify(torch.zeros(1, 1, 8, 8), f"prefilter(by={tmp_path / 'other'};k=2)", ["x"])
    with pytest.raises(DiffclassError, match="needs by=MODEL"):
        clf.strategy("prefilter(k=2)")
    with pytest.raises(DiffclassError, match="then= must be one of"):
        clf.strategy(f"prefilter(by={model_dir};then=hdc)")
