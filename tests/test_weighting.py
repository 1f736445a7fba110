"""Timestep weighting: uniform, Clark & Jaini's exp(-7t/T), and per-bin weights learned on labelled images."""

import json
import math

import numpy as np
import pytest
import torch

from diffclass.classifier import Classifier
from diffclass.errors import DiffclassError
from diffclass.timesteps import TimestepGrid
from diffclass.weighting import TimestepWeighting, fit_weights, resolve
from tests.conftest import run_cli


def test_clark_weights_follow_exp_minus_7t_and_average_one_on_the_grid():
    grid = TimestepGrid(0, 999, 16)
    weights = TimestepWeighting("clark").per_timestep(grid.timesteps, 1000)
    assert sum(weights.values()) / len(weights) == pytest.approx(1.0)
    a, b = sorted(weights)[:2]
    assert weights[a] / weights[b] == pytest.approx(math.exp(-7 * (a - b) / 1000))
    assert set(TimestepWeighting().per_timestep(grid.timesteps, 1000).values()) == {1.0}


def test_the_scorer_multiplies_each_slots_error_by_its_weight(classifier, images):
    plain = classifier.scorer.start(images[:1], ["x"])[0]
    raw = plain.errors([0, 1], range(4))
    weighted = Classifier(classifier.backbone, weighting="clark", batch_size=64)
    memo = weighted.scorer.start(images[:1], ["x"])[0]
    factors = torch.tensor([weighted.scorer.weights[weighted.scorer.grid.timestep(s)] for s in range(4)])
    assert torch.allclose(memo.errors([0, 1], range(4)), raw * factors.double(), rtol=1e-6)


def test_learned_weights_favour_the_bin_that_tells_classes_apart():
    rng = np.random.default_rng(0)
    images, classes, timesteps = 60, 5, list(range(0, 800, 50))  # 16 slots, 4 bins of 4
    labels = rng.integers(0, classes, images)
    errors = rng.normal(1.0, 0.3, (images, classes, len(timesteps)))
    informative = [j for j, t in enumerate(timesteps) if 200 <= t < 400]
    for i, y in enumerate(labels):
        errors[i, y, informative] -= 0.5  # only the second bin knows the class
    learned = fit_weights(errors, labels, timesteps, bins=4)
    assert learned.kind == "learned" and len(learned.weights) == 4 and learned.images == images
    assert max(range(4), key=lambda b: learned.weights[b]) == 1
    assert sum(learned.weights) / 4 == pytest.approx(1.0)
    assert learned.raw(250, 1000) == learned.weights[1] and learned.raw(5000, 1000) == learned.weights[-1]


def test_resolving_and_validating_weightings():
    stored = TimestepWeighting("learned", [0, 10, 20], [0.5, 1.5], 3).to_dict()
    assert resolve(None, stored).kind == "learned" and resolve(None, None).kind == "uniform"
    assert resolve("clark", stored).kind == "clark" and resolve("learned", stored).weights == [0.5, 1.5]
    with pytest.raises(DiffclassError, match="no learned timestep weights"):
        resolve("learned", None)
    with pytest.raises(DiffclassError, match="unknown timestep weighting"):
        resolve("cubic", None)
    for bad in (
        dict(kind="learned", edges=[0, 10], weights=[1, 2]),
        dict(kind="learned", edges=[5, 1], weights=[1]),
        dict(kind="learned", edges=[0, 9], weights=[float("nan")]),
        dict(kind="clark", rate=3),
    ):
        with pytest.raises(DiffclassError, match="timestep weighting"):
            TimestepWeighting.from_dict(bad)


def test_calibrate_weights_stores_them_and_evaluate_uses_them(monkeypatch, capsys, model_dir, tmp_path):
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "calibrate",
        "--model",
        model_dir,
        "--images",
        8,
        "--grid-size",
        8,
        "--window",
        4,
        "--weights",
        "--bins",
        2,
    )
    assert code == 0, err
    info = json.loads((model_dir / "diffclass.json").read_text())
    assert info["weighting"]["kind"] == "learned" and len(info["weighting"]["weights"]) == 2
    window = info["timestep_range"]
    assert info["weighting"]["edges"][0] == window[0] and info["weighting"]["edges"][-1] == window[1] + 1
    clf = Classifier.load(model_dir)
    assert clf.scorer.weighting.kind == "learned"  # stored weights are the default
    args = ("evaluate", "--model", model_dir, "--limit", 2, "--strategy", "exhaustive(n=4)", "--out", tmp_path / "a")
    code, out, err = run_cli(monkeypatch, capsys, *args, "--weighting", "learned", "--json", tmp_path / "learned.json")
    assert code == 0, err
    code, out, err = run_cli(monkeypatch, capsys, *args, "--weighting", "uniform")
    assert code == 0 and "other options (weighting)" in err  # records made under one weighting are not reused
    assert sum(len(f.read_text().splitlines()) for f in (tmp_path / "a").glob("records*.jsonl")) == 4
    code, out, err = run_cli(
        monkeypatch, capsys, *args[:-1], tmp_path / "b", "--weighting", "uniform", "--json", tmp_path / "uniform.json"
    )
    assert code == 0, err
    runs = {kind: json.loads((tmp_path / f"{kind}.json").read_text()) for kind in ("learned", "uniform")}
    assert runs["learned"]["n_images"] == runs["uniform"]["n_images"] == 2


def test_a_bad_stored_weighting_is_one_line(monkeypatch, capsys, model_dir):
    info = json.loads((model_dir / "diffclass.json").read_text())
    info["weighting"] = {"kind": "learned", "edges": [0], "weights": []}
    (model_dir / "diffclass.json").write_text(json.dumps(info))
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", "--model", model_dir, "--limit", 1)
    assert code == 2 and "timestep weighting" in err and len(err.strip().splitlines()) == 1
