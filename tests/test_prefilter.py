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


COLOURS = {"red": (1, -1, -1), "green": (-1, 1, -1), "blue": (-1, -1, 1), "yellow": (1, 1, -1)}


def _colour_images(n, seed):
    labels = torch.arange(n) % len(COLOURS)
    base = torch.tensor([COLOURS[name] for name in list(COLOURS)], dtype=torch.float32)[labels, :, None, None]
    noise = torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))
    return (0.8 * base + 0.2 * noise).clamp(-1, 1), labels


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    """A tiny CLIP, trained here for a few contrastive steps on solid colours captioned by their names."""
    from diffclass.backbones.tiny import save_tiny_clip
    from diffclass.clip_filter import ClipFilter

    folder = save_tiny_clip(tmp_path_factory.mktemp("clip") / "clip")
    names = list(COLOURS)
    sieve = ClipFilter.from_pretrained(folder, names, [[f"a photo of a {n}."] for n in names])
    images, labels = _colour_images(64, seed=0)
    tokens = sieve.tokenizer([f"a photo of a {names[y]}." for y in labels], padding=True, return_tensors="pt")
    pixels, optimizer = sieve.pixels(images), torch.optim.AdamW(sieve.model.parameters(), lr=3e-3)
    sieve.model.train()
    for _ in range(40):
        loss = sieve.model(**tokens, pixel_values=pixels, return_loss=True).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    sieve.model.save_pretrained(folder)
    return folder


def test_a_clip_prefilter_keeps_the_right_class_and_pays_for_its_call(clip_folder, tmp_path):
    from diffclass.backbones.tiny import save_tiny_stable_diffusion3

    names = list(COLOURS)
    clf = diffclass.load(
        save_tiny_stable_diffusion3(tmp_path / "sd3"), class_names=names, templates=["a photo of a {}."]
    )
    images, labels = _colour_images(8, seed=1)
    sieve = clf.prefilter_model(f"clip:{clip_folder}")
    ranked = sieve.classify(images)
    assert all(y in d.ranking[:2] for d, y in zip(ranked, labels.tolist()))  # held-out images: right class kept
    assert sieve.text.shape[0] == 4 and sieve.macs_per_call > 0
    decisions = clf.classify(images, f"prefilter(by=clip:{clip_folder};k=2;then=exhaustive(n=3))")
    for d, r in zip(decisions, ranked):
        assert set(d.scores) == set(r.ranking[:2]) and d.ranking[2:] == r.ranking[2:]
        assert d.nfe == 2 * 3 + 1 and d.macs == 2 * 3 * clf.macs_per_call + sieve.macs_per_call


def test_an_unreachable_clip_is_one_line(model_dir):
    clf = diffclass.load(model_dir)
    with pytest.raises(DiffclassError, match=r"cannot load the CLIP model of no-such/clip"):
        clf.classify(torch.zeros(1, 1, 8, 8), "prefilter(by=clip:no-such/clip;k=2;then=exhaustive(n=1))")


def test_a_prefilter_can_hand_its_top_k_to_aligned(model_dir, filter_dir):
    clf, sieve = diffclass.load(model_dir), diffclass.load(filter_dir)
    images = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    ids = ["a", "b"]
    then = "aligned(d=1;then=exhaustive(n=2))"
    decisions = clf.classify(images, f"prefilter(by={filter_dir};k=3;then={then})", ids)
    sieved = sieve.classify(images, None, ids)
    kept = [d.ranking[:3] for d in sieved]
    alone = clf.classify(images, then, ids, kept)  # the same classes aligned without the sieve in front
    for d, a, k, s in zip(decisions, alone, kept, sieved):
        assert d.scores == a.scores and d.ranking[:3] == a.ranking and set(a.ranking) == set(k)
        assert d.nfe == 9 * 3 * 2 + s.nfe  # nine offsets x three classes x two slots, plus the sieve's calls
