"""Tuning a model once (a Pareto front replayed on training images) and `auto` picking from it."""

import json

import pytest

from diffclass.errors import DiffclassError
from diffclass.strategies.auto import choose
from tests.test_cli import run_cli

FRONT = [
    dict(spec="exhaustive(n=2)", top1=0.80, nfe_per_image=20),
    dict(spec="adaptive(keep=2,1;n=2,8)", top1=0.90, nfe_per_image=36),
    dict(spec="exhaustive(n=8)", top1=0.903, nfe_per_image=80),
    dict(spec="exhaustive(n=16)", top1=0.92, nfe_per_image=160),
]


def test_auto_picks_what_the_front_says_for_each_kind_of_budget():
    assert choose(FRONT)["spec"] == "exhaustive(n=16)"  # nothing else within 0.5 points of 92%
    assert choose(FRONT, max_loss=2.0)["spec"] == "adaptive(keep=2,1;n=2,8)"  # cheapest within 2 points
    assert choose(FRONT, budget=100)["spec"] == "exhaustive(n=8)"  # most accurate within 100 NFEs
    assert choose(FRONT, speedup=4, reference_nfe=160)["spec"] == "adaptive(keep=2,1;n=2,8)"  # <= 40 NFEs
    with pytest.raises(DiffclassError, match="no tuned strategy fits 10 NFEs/image; the cheapest needs 20"):
        choose(FRONT, budget=10)
    with pytest.raises(DiffclassError, match="needs a tuned model"):
        choose([])


def test_tune_stores_a_front_that_auto_then_runs_by_default(monkeypatch, capsys, model_dir, tmp_path):
    code, out, err = run_cli(monkeypatch, capsys, "tune", "--model", model_dir, "--images", 6, "--slots", 8)
    assert code == 0, err
    front = json.loads((model_dir / "diffclass.json").read_text())["front"]
    points = front["points"]
    assert front["images"] == 6 and front["split"] == "train" and front["candidates"] > 50 and points
    assert [p["nfe_per_image"] for p in points] == sorted(p["nfe_per_image"] for p in points)
    assert all(a["top1"] < b["top1"] for a, b in zip(points, points[1:]))  # a front: each costlier point is better
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", "--model", model_dir, "--limit", 3, "--json",
                             tmp_path / "s.json")  # fmt: skip
    assert code == 0, err
    ran = json.loads((tmp_path / "s.json").read_text())["strategy"]
    assert ran == choose(points)["spec"]  # the chosen spec is what tables and JSON name


def test_a_front_for_other_weights_or_no_front_is_one_line(monkeypatch, capsys, model_dir):
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", "--model", model_dir, "--strategy", "auto", "--limit", 1)
    assert code == 2 and "auto needs a tuned model" in err
    info = json.loads((model_dir / "diffclass.json").read_text())
    info["front"] = dict(weights="0" * 12, points=FRONT, reference_nfe=160)
    (model_dir / "diffclass.json").write_text(json.dumps(info))
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", "--model", model_dir, "--limit", 1)
    assert code == 2 and "was made for other weights" in err and len(err.strip().splitlines()) == 1


def test_an_embedded_model_is_not_tuned_in_place(monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "tune", "--model", "digits")
    assert code == 2 and "is an embedded model; copy it first" in err
