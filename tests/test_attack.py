"""Attacks: the differentiable score is the classifier's own decision, its gradient is real, an attack lowers the
margin, and everything without a gradient (or torchattacks) is refused in one line."""

import json
import sys

import pytest
import torch

from diffclass.attack import attack, parse_eps
from diffclass.backbones.all_class import AllClassUNet
from diffclass.classifier import Classifier
from diffclass.data.base import ImageDataset
from diffclass.errors import DiffclassError
from tests.conftest import CLASSES, run_cli, tiny_backbone

IDS = [f"img{i}" for i in range(9)]


@pytest.mark.parametrize("all_class", [False, True])
def test_the_differentiable_score_is_exhaustives_decision_on_the_same_slots(images, all_class):
    backbone = AllClassUNet.from_teacher(tiny_backbone()) if all_class else tiny_backbone()
    clf = Classifier(backbone, batch_size=7)  # several forward passes per slot
    x = images.clone().requires_grad_(True)
    logits = clf.logits_fn("exhaustive(n=3)", IDS)(x)
    decisions = clf.classify(images, "exhaustive(n=3)", IDS)
    assert logits.argmax(1).tolist() == [d.label for d in decisions]
    errors = torch.tensor([[d.scores[c] for c in range(len(CLASSES))] for d in decisions], dtype=torch.float64)
    assert torch.allclose(-logits.detach() * clf.info.temperature, errors, rtol=1e-4, atol=1e-6)
    (gradient,) = torch.autograd.grad(logits[:, 0].sum(), x)
    assert (gradient.flatten(1).norm(dim=1) > 0).all()  # no detached step masks it


def test_eot_draws_fresh_noise_and_stays_differentiable(images):
    clf = Classifier(tiny_backbone(), batch_size=64)
    own = clf.logits_fn("exhaustive(n=2)", IDS)(images)
    fresh = clf.logits_fn("exhaustive(n=2)", IDS, eot=2)
    first, second = fresh(images), fresh(images)
    assert not torch.allclose(own, first) and not torch.allclose(first, second)
    x = images.clone().requires_grad_(True)
    assert torch.autograd.grad(fresh(x).sum(), x)[0].abs().sum() > 0


def _toy(clf, images) -> ImageDataset:
    """The images labelled with the classifier's own answers, so every one starts correct."""
    labels = torch.tensor([d.label for d in clf.classify(images, "exhaustive(n=2)", IDS)])
    return ImageDataset("toy", images, labels, CLASSES, IDS)


def test_an_attack_lowers_the_margin_and_never_leaves_its_ball(images):
    pytest.importorskip("torchattacks")
    clf = Classifier(tiny_backbone(), batch_size=64)
    data = _toy(clf, images)
    runs = list(attack(clf, data, "pgd-linf", eps=0.3, steps=5, strategy="exhaustive(n=2)", batch=4))
    run = runs[-1]
    assert len(runs) == 3 and run.images == 9 and run.clean_top1 == 1.0 and run.gradient_nonzero == 1.0
    assert max(r["linf"] for r in run.rows) <= 0.3 + 1e-6 and run.robust_top1 < 1.0


def test_an_l2_attack_takes_images_not_stored_row_major(images):
    """Emoji's array is stored height x width x channel; torchattacks' l2 step reshapes with .view()."""
    pytest.importorskip("torchattacks")
    clf = Classifier(tiny_backbone(), batch_size=64)
    data = _toy(clf, images)
    data.images = data.images.transpose(2, 3).contiguous().transpose(2, 3)  # same values, strides not row-major
    assert not data.images.is_contiguous()
    run = list(attack(clf, data, "pgd-l2", eps=0.5, steps=2, strategy="exhaustive(n=2)", batch=9))[-1]
    assert run.images == 9 and max(r["l2"] for r in run.rows) <= 0.5 + 1e-5


def test_the_margin_falls_under_attack(images):
    torchattacks = pytest.importorskip("torchattacks")
    from diffclass.attack import _Surrogate

    clf = Classifier(tiny_backbone(), batch_size=64)
    data = _toy(clf, images)
    model = _Surrogate(clf.logits_fn("exhaustive(n=2)", IDS), clf.info.value_range)
    clean01 = (data.images + 1) / 2

    def margin(x01):
        logits = model(x01).detach()
        true = logits.gather(1, data.labels[:, None]).squeeze(1)
        return (true - logits.scatter(1, data.labels[:, None], float("-inf")).max(1).values).mean()

    torch.manual_seed(0)
    attacked = torchattacks.PGD(model, eps=8 / 255, alpha=2 / 255, steps=5)(clean01, data.labels)
    assert margin(attacked) < margin(clean01)


def test_what_has_no_gradient_is_refused_in_one_line(images, tmp_path):
    clf = Classifier(tiny_backbone(), batch_size=64)
    with pytest.raises(DiffclassError, match="exhaustive"):
        clf.logits_fn("adaptive(keep=2,1;n=1,2)", IDS)
    tiny_backbone(seed=3).save_pretrained(tmp_path / "sieve")  # a diffusion sieve ranks with a staged default
    composed = clf.strategy(f"prefilter(by={tmp_path / 'sieve'};k=2;then=exhaustive(n=2))").runner(clf)
    with pytest.raises(DiffclassError, match="cannot be attacked: attacks differentiate exhaustive"):
        composed.logits_fn(None, IDS)
    with pytest.raises(DiffclassError, match="prefilter's exhaustive"):
        clf.logits_fn(f"prefilter(by={tmp_path / 'sieve'};k=2;then=adaptive(keep=1;n=2))", IDS)
    for text in ("abc", "0", "-1/255", "1/0", "nan"):
        with pytest.raises(DiffclassError, match="--eps"):
            parse_eps(text)
    assert parse_eps("8/255") == pytest.approx(8 / 255)


def test_the_attack_command_resumes_refuses_other_settings_and_names_the_install(
    monkeypatch, capsys, model_dir, tmp_path
):
    pytest.importorskip("torchattacks")
    out = tmp_path / "attack.json"
    args = ["attack", "--model", model_dir, "--limit", 3, "--steps", 2, "--batch", 2, "--json", out]
    code, printed, _ = run_cli(monkeypatch, capsys, *args)
    saved = json.loads(out.read_text())
    assert code == 0 and saved["summary"]["images"] == 3 and "robust top-1" in printed
    assert saved["summary"]["strategy"] == "exhaustive(n=8)" and saved["summary"]["gradient_nonzero"] == 1.0
    code, _, _ = run_cli(monkeypatch, capsys, *args)  # nothing left to attack: the same rows, read back
    assert code == 0 and json.loads(out.read_text())["rows"] == saved["rows"]
    code, _, err = run_cli(monkeypatch, capsys, *args, "--eps", "4/255")
    assert code == 2 and "other settings" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(monkeypatch, capsys, "attack", "--model", model_dir, "--eps", "lots")
    assert code == 2 and "--eps" in err
    monkeypatch.setitem(sys.modules, "torchattacks", None)  # not installed
    code, _, err = run_cli(monkeypatch, capsys, "attack", "--model", model_dir, "--limit", 1, "--json", tmp_path / "b")
    assert code == 2 and "pip install --no-deps torchattacks" in err


def test_apgd_attacks_a_batch_some_of_whose_images_are_already_wrong(images):
    """APGD calls the model again on the images still classified right only: a diffusion stand-in (each image's own
    noise) must then stand for exactly those images."""
    pytest.importorskip("torchattacks")
    clf = Classifier(tiny_backbone(), batch_size=64)
    data = _toy(clf, images)
    data.labels[1] = (data.labels[1] + 1) % len(CLASSES)  # already wrong: APGD leaves it out of its later calls
    run = list(attack(clf, data, "apgd-dlr", eps=0.3, steps=3, strategy="exhaustive(n=2)", batch=4))[-1]
    assert run.images == 9 and run.clean_top1 == 8 / 9 and run.gradient_nonzero == 1.0
    assert max(r["linf"] for r in run.rows) <= 0.3 + 1e-6 and run.robust_top1 <= run.clean_top1


@pytest.fixture
def twin_sieve(images, tmp_path):
    """A plain twin (one call, a log-softmax) of the tiny classes, to stand in front of the diffusion model."""
    from diffclass.didicm.training import DiDiCMTrainConfig, train_didicm

    labels = torch.arange(len(images)) % len(CLASSES)
    data = ImageDataset("toy", images, labels, CLASSES, IDS)
    config = DiDiCMTrainConfig(steps=2, batch_size=4, width=8, baseline=True)
    train_didicm(data, config, show_progress=False).save_pretrained(tmp_path / "twin")
    return tmp_path / "twin"


def test_a_prefilter_stand_in_is_the_compositions_decision_and_reaches_both_networks(images, twin_sieve):
    clf = Classifier(tiny_backbone(), batch_size=5)  # (image, class) pairs split over several passes
    spec = f"prefilter(by={twin_sieve};k=2;then=exhaustive(n=3))"
    x = images.clone().requires_grad_(True)
    logits = clf.logits_fn(spec, IDS)(x)
    decisions = clf.classify(images, spec, IDS)
    assert logits.argmax(1).tolist() == [d.label for d in decisions]
    kept = [d.ranking[:2] for d in decisions]  # the sieve's top 2, each read by its diffusion error
    for row, decision, pair in zip(logits.detach(), decisions, kept):
        scored = torch.tensor([-decision.scores[c] / clf.info.temperature for c in pair], dtype=torch.float64)
        assert torch.allclose(row[pair], scored, rtol=1e-4)
        assert (row[[c for c in range(len(CLASSES)) if c not in pair]] < row[pair].min()).all()
    dropped = torch.ones_like(logits, dtype=torch.bool).scatter(1, torch.tensor(kept), False)
    (through_sieve,) = torch.autograd.grad(logits[dropped].sum(), x, retain_graph=True)
    assert (through_sieve.flatten(1).norm(dim=1) > 0).all()
    # a kept class's logit moves with its sieve margin too: the true class can be pushed out of the top k
    first = torch.tensor(kept)[:, :1]
    (both,) = torch.autograd.grad(logits.gather(1, first).sum(), x)
    sieved = clf.prefilter_model(str(twin_sieve)).logits_fn(None, IDS)(x).double()
    third = sieved.argsort(1, descending=True)[:, 2:3]  # the best class the sieve dropped
    margin = (sieved.gather(1, first) - sieved.gather(1, third)).sum()
    diffusion = clf.logits_fn("exhaustive(n=3)", IDS)(x).gather(1, first).sum()
    (expected,) = torch.autograd.grad(margin + diffusion, x)
    assert torch.allclose(both, expected, atol=1e-6) and through_sieve.abs().sum() > 0


def test_an_attack_on_a_prefilter_composition_lowers_what_it_gets_right(images, twin_sieve):
    pytest.importorskip("torchattacks")
    clf = Classifier(tiny_backbone(), batch_size=64)
    spec = f"prefilter(by={twin_sieve};k=2;then=exhaustive(n=2))"
    labels = torch.tensor([d.label for d in clf.classify(images, spec, IDS)])
    data = ImageDataset("toy", images, labels, CLASSES, IDS)
    run = list(attack(clf, data, "pgd-linf", eps=0.5, steps=5, strategy=spec, batch=9))[-1]
    assert run.clean_top1 == 1.0 and run.gradient_nonzero == 1.0 and run.robust_top1 < 1.0
    assert run.settings.strategy == spec and max(r["linf"] for r in run.rows) <= 0.5 + 1e-6


def test_attack_takes_the_default_where_it_has_a_gradient():
    import diffclass

    emoji, glyphs = diffclass.load("emoji"), diffclass.load("glyphs")
    assert emoji.strategy(None).kind == "prefilter" and emoji.attack_strategy == emoji.strategy(None).name
    assert glyphs.strategy(None).kind != "exhaustive" and glyphs.attack_strategy == "exhaustive(n=8)"


def test_autoattack_is_the_rand_version_with_the_steps_asked(images):
    pytest.importorskip("torchattacks")
    from diffclass.attack import ATTACKS, _Surrogate

    clf = Classifier(tiny_backbone(), batch_size=64)
    model = _Surrogate(clf.logits_fn("exhaustive(n=2)", IDS), clf.info.value_range)
    built = ATTACKS.get("autoattack").build({}, model, 0.3, 7, len(CLASSES), 0)
    assert [(a.loss, a.steps, a.eot_iter) for a in built.attacks] == [("ce", 7, 20), ("dlr", 7, 20)]
    with pytest.raises(DiffclassError, match="at least 3 classes"):
        ATTACKS.get("autoattack").build({}, model, 0.3, 7, 2, 0)
    data = _toy(clf, images).subset(range(4))  # 40 gradient draws an image and attack: a few images
    run = list(attack(clf, data, "autoattack", eps=0.3, steps=1, strategy="exhaustive(n=2)", batch=4))[-1]
    assert run.images == 4 and run.clean_top1 == 1.0 and run.robust_top1 < 1.0
    assert max(r["linf"] for r in run.rows) <= 0.3 + 1e-6
