import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"  # no test downloads anything: an unreachable hub id fails at once, not after retries

import pytest
import torch

from diffclass.backbones import ClassConditionalUNet
from diffclass.classifier import Classifier
from diffclass.cli import main
from diffclass.hierarchy import LabelTree, TreeNode
from diffclass.scoring import TimestepGrid
from diffclass.strategies import Request, StrategyContext

CLASSES = ["ant", "bee", "cat", "dog", "eel"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Error tables that tests compute go to a temporary cache, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


def tiny_backbone(seed: int = 0, classes=CLASSES) -> ClassConditionalUNet:
    torch.manual_seed(seed)
    return ClassConditionalUNet.create(classes, image_size=8, channels=1, width=8)


@pytest.fixture
def backbone() -> ClassConditionalUNet:
    return tiny_backbone()


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(9, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1


@pytest.fixture
def classifier(backbone) -> Classifier:
    return Classifier(backbone, batch_size=64)


class CallRecorder:
    """Wraps a backbone's predict_noise and records every (x_t, t, class) triple it sees."""

    def __init__(self, backbone):
        self.calls = []
        self.triples = []
        original = backbone.predict_noise

        def recording(x_t, t, cond):
            self.calls.append(len(x_t))
            for i in range(len(x_t)):
                self.triples.append((x_t[i].clone(), int(t[i]), int(cond[i])))
            return original(x_t, t, cond)

        backbone.predict_noise = recording


@pytest.fixture
def model_dir(tmp_path):
    """A tiny random model for the 10 digits classes, saved as a diffclass model folder, as if trained on digits
    with a fifth of each class held out (what fit-temperature, calibrate and tune fit on)."""
    from diffclass.data import load_dataset

    backbone = tiny_backbone(classes=[str(d) for d in range(10)])
    backbone.info.dataset = "digits"
    backbone.info.training["held_out"] = load_dataset("digits", "train").held_out(0.2, seed=0)
    backbone.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def run_cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["diffclass", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def ctx(num_classes, tree=None):
    return StrategyContext(num_classes, TimestepGrid(size=16).timesteps, tree)


def play(strategy, candidates, error_of):
    """Drive a strategy by hand: error_of(candidate, slot) -> float; returns the outcome and the requests."""
    run = strategy.run(candidates)
    requests = []
    request = next(run)
    try:
        while True:
            assert isinstance(request, Request)
            requests.append(request)
            matrix = torch.tensor([[error_of(c, s) for s in request.slots] for c in request.candidates])
            request = run.send(matrix)
    except StopIteration as stop:
        return stop.value, requests


def animal_tree() -> LabelTree:
    """root -> {pets -> {cat, dog}, wild -> {bee, eel}, lone -> chain -> ant} over 5 classes."""
    return LabelTree(
        [
            TreeNode("root", "animal", ["pets", "wild", "lone"]),
            TreeNode("pets", "pet", ["cat", "dog"]),
            TreeNode("wild", "wild", ["bee", "eel"]),
            TreeNode("lone", "lone", ["chain"]),
            TreeNode("chain", "chain", ["ant"]),
            TreeNode("ant", "ant", class_index=0),
            TreeNode("bee", "bee", class_index=1),
            TreeNode("cat", "cat", class_index=2),
            TreeNode("dog", "dog", class_index=3),
            TreeNode("eel", "eel", class_index=4),
        ]
    )


def tree_classifier():
    tree = animal_tree()
    backbone = tiny_backbone()
    backbone = type(backbone).create(
        backbone.info.class_names, image_size=8, channels=1, width=8, tree=tree
    )  # embeddings for internal nodes
    return Classifier(backbone, batch_size=16)


def five_class_tree():
    from diffclass.hierarchy import LabelTree, TreeNode

    nodes = [
        TreeNode("root", "animal", ["pets", "wild"]),
        TreeNode("pets", "pet", ["cat", "dog"]),
        TreeNode("wild", "wild", ["ant", "bee", "eel"]),
    ]
    nodes += [TreeNode(n, n, class_index=i) for i, n in enumerate(["ant", "bee", "cat", "dog", "eel"])]
    return LabelTree(nodes, 5)
