"""The seams: every registered backbone and every classifier kind keeps its written protocol, a model is resolved
once per command, and a re-saved folder is never answered from what its old weights made."""

import json

import pytest
import torch

import diffclass
from diffclass.backbones import BACKBONES, load_backbone
from diffclass.backbones.all_class import AllClassUNet
from diffclass.backbones.tiny import (
    save_tiny_clip,
    save_tiny_dit,
    save_tiny_stable_diffusion,
    save_tiny_stable_diffusion3,
)
from diffclass.errors import DiffclassError
from diffclass.hierarchy import load_tree
from diffclass.hub import MODEL_KINDS, resolve_model
from tests.conftest import CLASSES, five_class_tree, run_cli, tiny_backbone

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

# registered backbone name -> a tiny instance; a newly registered kind must add its builder here
TINY_BACKBONES = {
    "class_unet": lambda tmp: tiny_backbone(),
    "all_class_unet": lambda tmp: AllClassUNet.from_teacher(tiny_backbone()),
    "dit": lambda tmp: load_backbone(save_tiny_dit(tmp / "dit"), class_names=CIFAR10),
    "stable_diffusion": lambda tmp: load_backbone(save_tiny_stable_diffusion(tmp / "sd"), class_names=CIFAR10),
    "stable_diffusion3": lambda tmp: load_backbone(save_tiny_stable_diffusion3(tmp / "sd3"), class_names=CIFAR10),
}


def test_every_registered_backbone_has_a_tiny_builder():
    assert set(BACKBONES.names()) == set(TINY_BACKBONES)


@pytest.mark.parametrize("kind", sorted(TINY_BACKBONES))
def test_every_backbone_keeps_the_protocol(kind, tmp_path):
    backbone = TINY_BACKBONES[kind](tmp_path)
    classes = len(backbone.info.class_names)
    assert isinstance(backbone.denoiser, torch.nn.Module) and isinstance(backbone.scores_all_classes, bool)
    assert backbone.vae is None or isinstance(backbone.vae, torch.nn.Module)
    assert len(backbone.ancestor_rows()) == classes
    size, channels = backbone.info.image_size, backbone.info.channels
    x0 = backbone.encode(torch.zeros(2, channels, size, size))
    t = torch.tensor([10, 500])
    eps = backbone.predict_noise(x0, t, backbone.condition([0, 1]))
    assert eps.shape == x0.shape and torch.isfinite(eps).all()
    if backbone.scores_all_classes:
        assert backbone.predict_all(x0, t).shape == (2, classes, *x0.shape[1:])
    else:
        with pytest.raises(DiffclassError):
            backbone.predict_all(x0, t)
    assert backbone.node_keys() == []  # no tree yet: no nodes scored beside the classes
    words = backbone.word_attention(x0[:1], t[:1], 0)
    assert words is None or torch.isfinite(words).all()
    prompts = backbone.prompts(0)
    assert prompts is None or all(isinstance(p, str) for p in prompts)
    tree = load_tree("cifar10", 10) if classes == 10 else five_class_tree()
    if backbone.node_modes:
        assert backbone.use_tree(tree) in backbone.node_modes  # one meaning: condition the nodes, say how
        node = tree.internal_nodes()[0]
        if backbone.scores_all_classes:  # no head per node: its error is derived from its classes' on one call
            nodes, errors = backbone.node_errors(torch.rand(2, classes))
            assert node in nodes and errors.shape == (2, len(nodes)) and nodes == backbone.node_keys()
        else:
            assert backbone.predict_noise(x0[:1], t[:1], backbone.condition([node])).shape == x0[:1].shape
        with pytest.raises(DiffclassError):
            backbone.use_tree(tree, "telepathic")
    else:
        with pytest.raises(DiffclassError):
            backbone.use_tree(tree)


def _saved_didicm(folder):
    from diffclass.data.base import ImageDataset
    from diffclass.didicm.training import DiDiCMTrainConfig, train_didicm

    images = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    data = ImageDataset("toy", images, torch.arange(10) % 5, CLASSES, [f"toy/{i}" for i in range(10)])
    train_didicm(data, DiDiCMTrainConfig(steps=1, batch_size=4, width=8), show_progress=False).save_pretrained(folder)
    return folder


def _didicm(tmp):
    return diffclass.load(_saved_didicm(tmp))


def _clip(tmp):
    from diffclass.clip_filter import ClipFilter

    prompts = [[f"a photo of a {c}."] for c in CLASSES]
    return ClipFilter.from_pretrained(save_tiny_clip(tmp / "clip"), CLASSES, prompts)


def _prefiltered(tmp):
    tiny_backbone(seed=3).save_pretrained(tmp / "sieve")
    inner = diffclass.load(_saved(tmp / "inner"), batch_size=32)
    return inner.strategy(f"prefilter(by={tmp / 'sieve'};k=2;then=exhaustive(n=2))").runner(inner)


def _saved(folder):
    tiny_backbone().save_pretrained(folder)
    return folder


TINY_CLASSIFIERS = {
    "diffusion": lambda tmp: diffclass.load(_saved(tmp / "m"), batch_size=32),
    "didicm": _didicm,
    "clip": _clip,
    "prefiltered": _prefiltered,
}


@pytest.mark.parametrize("kind", sorted(TINY_CLASSIFIERS))
def test_every_classifier_kind_keeps_the_protocol(kind, tmp_path):
    clf = TINY_CLASSIFIERS[kind](tmp_path)
    assert clf.class_names == CLASSES and clf.info.class_names == CLASSES and clf.macs_per_call > 0
    assert clf.images_per_pass() >= 1 and clf.bench_specs
    for spec in (None, clf.default_strategy, *clf.bench_specs[:1]):
        strategy = clf.strategy(spec)
        assert strategy.name and strategy.kind
    size, channels = clf.info.image_size, clf.info.channels
    images = torch.rand(3, channels, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    decisions = clf.classify(images, None, ["a", "b", "c"])
    assert [sorted(d.ranking) for d in decisions] == [list(range(5))] * 3 and all(d.nfe >= 1 for d in decisions)
    identity = clf.identity()
    assert {"model", "weights", "classes", "temperature"} <= set(identity) and json.dumps(identity)
    assert (clf.scorer is None) == (kind in ("didicm", "clip"))


# registered model kind -> a tiny saved folder of that kind; a newly registered kind must add its maker here
TINY_MODEL_FOLDERS = {"diffusion": _saved, "didicm": _saved_didicm}


def test_every_registered_model_kind_loads_through_the_front_door(tmp_path):
    assert set(MODEL_KINDS.names()) == set(TINY_MODEL_FOLDERS)
    for kind, make in TINY_MODEL_FOLDERS.items():
        folder = make(tmp_path / kind)
        assert resolve_model(folder).kind == kind
        clf = diffclass.load(folder)
        assert clf.class_names == CLASSES and clf.classify(torch.zeros(1, 1, 8, 8), None, ["x"])[0].nfe >= 1


def test_a_model_kind_refuses_by_name_the_options_it_cannot_take(tmp_path):
    folder = _saved_didicm(tmp_path / "didicm")
    with pytest.raises(DiffclassError, match="^loss, tree apply to diffusion models, not to the DiDiCM model"):
        diffclass.load(folder, loss="l1", tree="cifar10")
    with pytest.raises(DiffclassError, match="unknown loss 'l9'"):
        diffclass.load(_saved(tmp_path / "unet"), loss="l9")


def test_a_model_is_resolved_read_and_hashed_once_per_command(monkeypatch, capsys, tmp_path):
    import diffclass.hub as hub

    calls = {"resolve": 0, "info": 0}
    resolve, info_load = hub.resolve_model_folder, hub.ModelInfo.load.__func__

    def counted_resolve(name):
        calls["resolve"] += 1
        return resolve(name)

    def counted_info(cls, folder):
        calls["info"] += 1
        return info_load(cls, folder)

    monkeypatch.setattr(hub, "resolve_model_folder", counted_resolve)
    monkeypatch.setattr(hub.ModelInfo, "load", classmethod(counted_info))
    hub._hashed.cache_clear()
    code, _, err = run_cli(monkeypatch, capsys, "evaluate", "--model", "glyphs", "--limit", 3, "--out", tmp_path)
    assert code == 0, err
    assert calls == {"resolve": 1, "info": 1}
    assert hub._hashed.cache_info().misses == 1  # every safetensors byte read once, however many layers ask


@pytest.mark.parametrize("prefix", ["sd3", "sd", "dit"])
def test_a_resaved_hub_layout_folder_is_never_answered_from_its_old_records(prefix, tmp_path):
    """Records, error tables and tuned fronts are keyed by the identity's weights digest: a folder named through
    its hub prefix is digested by content, so saving other weights into it changes the key."""
    save = {"sd3": save_tiny_stable_diffusion3, "sd": save_tiny_stable_diffusion, "dit": save_tiny_dit}[prefix]
    folder = tmp_path / "pipeline"
    keys = []
    for seed in (0, 1, 1):  # the same folder, saved again with other weights, then again with the same ones
        save(folder, seed=seed)
        clf = diffclass.load(f"{prefix}:{folder}", class_names=CIFAR10[:2])
        keys.append(clf.identity()["weights"])
    assert keys[0] != keys[1] == keys[2] and not keys[0].startswith(prefix)


def test_models_lists_each_embedded_model_with_its_kind(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "models")
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") == 4}
    assert code == 0 and "didicm" in rows["didicm-glyphs"] and "class_unet" in rows["glyphs"]
    assert "all_class_unet" in rows["glyphs-allclass"] and "diffusion" in rows["glyphs-allclass"]
