"""Tuning a model once (a Pareto front replayed on held-out images) and `auto` picking from it."""

import json
import os
from pathlib import Path

import pytest

import diffclass
from diffclass.errors import DiffclassError
from diffclass.loading import unseen_images
from diffclass.strategies.auto import choose, pick
from tests.conftest import run_cli

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


def test_the_allowed_loss_counts_from_exhaustive_so_more_candidates_never_make_the_default_costlier():
    # exhaustive scored 90.5% on the tuning images: the cheapest within 0.5 points of it is the 90% schedule
    assert choose(FRONT, reference_top1=0.905)["spec"] == "adaptive(keep=2,1;n=2,8)"
    lucky = [*FRONT, dict(spec="exhaustive(n=32)", top1=0.95, nfe_per_image=320)]  # a maximum over noisy replays
    assert choose(lucky, reference_top1=0.905)["spec"] == "adaptive(keep=2,1;n=2,8)"
    assert choose(lucky)["spec"] == "exhaustive(n=32)"  # counted from the front's best, the lucky point decides
    # nothing within the loss of exhaustive (a family tuned without it): the front's most accurate
    assert choose(FRONT[:2], reference_top1=0.99)["spec"] == "adaptive(keep=2,1;n=2,8)"


def test_tune_stores_a_front_that_auto_then_runs_by_default(monkeypatch, capsys, model_dir, tmp_path):
    code, out, err = run_cli(monkeypatch, capsys, "tune", "--model", model_dir, "--images", 6, "--slots", 8)
    assert code == 0, err
    front = json.loads((model_dir / "diffclass.json").read_text())["front"]
    assert f"auto now runs {front['reference_spec']}" in out.replace("\n", " ")
    points = front["points"]
    assert front["images"] == 6 and front["tuned_on"] == "the held-out part of digits" and front["candidates"] > 50
    assert points and all(p["gained"] >= 0 and p["lost"] >= 0 for p in points)
    assert [p["nfe_per_image"] for p in points] == sorted(p["nfe_per_image"] for p in points)
    assert all(a["top1"] < b["top1"] for a, b in zip(points, points[1:]))  # a front: each costlier point is better
    code, out, err = run_cli(
        monkeypatch, capsys, "evaluate", "--model", model_dir, "--limit", 3, "--json", tmp_path / "s.json"
    )
    assert code == 0, err
    ran = json.loads((tmp_path / "s.json").read_text())["strategy"]
    assert ran == pick(front)["spec"]  # what tables and JSON name
    assert ran == front["reference_spec"] == "exhaustive(n=8)"  # 6 images cannot show any cheaper one loses <= 0.5
    clf = diffclass.load(model_dir)  # the reference is exhaustive on every tuned slot of the same held-out images
    data = unseen_images(clf, 6, 0)
    live = clf.classify(data.images, "exhaustive(n=8)", data.ids)
    assert front["reference_top1"] == round(sum(d.label == int(y) for d, y in zip(live, data.labels)) / 6, 4)


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


def test_auto_prices_budgets_in_gmacs_and_speedups_against_the_unpruned_original():
    front = [dict(p, gmacs_per_image=p["nfe_per_image"] * 0.01) for p in FRONT]
    assert choose(front, budget=(0.5, "gmac"))["spec"] == "adaptive(keep=2,1;n=2,8)"  # <= 0.5 GMACs: 36 NFEs
    assert choose(front, budget=(1.0, "gmac"))["spec"] == "exhaustive(n=8)"
    # a pruned model's reference is its unpruned original's exhaustive: 3 GMACs / 5 = 0.6 GMACs, not 160 / 5 NFEs
    assert choose(front, speedup=5, reference_nfe=160, reference_gmacs=3.0)["spec"] == "adaptive(keep=2,1;n=2,8)"
    assert choose(front, speedup=5, reference_nfe=160)["spec"] == "exhaustive(n=2)"  # no GMACs: <= 32 NFEs
    with pytest.raises(DiffclassError, match="no tuned strategy fits 0.1 GMACs/image; the cheapest needs 0.2"):
        choose(front, budget=(0.1, "gmac"))


def test_budget_option_reads_nfes_or_gmacs():
    from diffclass.strategies.auto import budget

    assert budget("budget", "300") == (300.0, "nfe")
    assert budget("budget", "5GMAC") == (5.0, "gmac") and budget("budget", "2.5gmacs") == (2.5, "gmac")
    with pytest.raises(DiffclassError, match="must be a"):
        budget("budget", "fast")


def test_window_aware_fallback_and_auto_options_on_the_command_line(monkeypatch, capsys, model_dir, tmp_path):
    info = json.loads((model_dir / "diffclass.json").read_text())
    info["timestep_range"] = [100, 400]  # a calibrated window: the untuned default needs 32 slots, not 64
    (model_dir / "diffclass.json").write_text(json.dumps(info))
    code, out, err = run_cli(
        monkeypatch, capsys, "evaluate", "--model", model_dir, "--limit", 1, "--json", tmp_path / "s.json"
    )
    assert code == 0, err
    assert "is not tuned: running adaptive(keep=2,1;n=4,32)" in err
    assert json.loads((tmp_path / "s.json").read_text())["strategy"] == "adaptive(keep=2,1;n=4,32)"
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "evaluate",
        "--model",
        model_dir,
        "--timesteps",
        "0-999",
        "--limit",
        1,
        "--json",
        tmp_path / "s.json",
    )
    assert json.loads((tmp_path / "s.json").read_text())["strategy"] == "adaptive(keep=2,1;n=8,64)"  # whole range
    code, out, err = run_cli(
        monkeypatch, capsys, "evaluate", "--model", model_dir, "--strategy", "exhaustive", "--budget", "100"
    )
    assert code == 2 and "drop --strategy" in err
    from diffclass.hub import weights_digest

    info["front"] = dict(weights=weights_digest(model_dir), points=FRONT, reference_nfe=160, images=6)
    (model_dir / "diffclass.json").write_text(json.dumps(info))
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "evaluate",
        "--model",
        model_dir,
        "--budget",
        "100",
        "--limit",
        1,
        "--json",
        tmp_path / "s.json",
    )
    assert code == 0, err
    assert "auto chose exhaustive(n=8) (front of 4 strategies on 6 images: training images)" in err
    assert json.loads((tmp_path / "s.json").read_text())["strategy"] == "exhaustive(n=8)"


def test_prefilter_then_auto_takes_the_best_stage_a_prefilter_can_run(model_dir):
    from diffclass.strategies import StrategyContext, make_strategy

    front = dict(points=[*FRONT, dict(spec="hdc(rule=within-std;m=1)", top1=0.99, nfe_per_image=30)])
    context = StrategyContext(10, list(range(0, 1000, 50)), None, front)
    strategy = make_strategy(f"prefilter(by={model_dir};k=4;then=auto(budget=100))", context)
    assert strategy.then.name == "exhaustive(n=8)" and strategy.k == 4  # the hdc point is not a later stage


def held_out_twin(folder, image_size: int, hold_out: float = 0.25):
    """A tiny plain classifier of the digits classes trained without a quarter of the training images."""
    from diffclass.data import load_dataset
    from diffclass.didicm.training import DiDiCMTrainConfig, train_didicm

    config = DiDiCMTrainConfig(steps=2, batch_size=4, width=8, baseline=True, hold_out=hold_out)
    data = load_dataset("digits", "train", image_size)
    train_didicm(data, config, show_progress=False).save_pretrained(folder)
    return folder


def test_tune_with_a_prefilter_adds_priced_compositions_and_reuses_its_table(monkeypatch, capsys, model_dir, tmp_path):
    from diffclass.data import load_dataset
    from diffclass.hub import weights_digest

    size = diffclass.load(model_dir).info.image_size
    twin, seen = held_out_twin(tmp_path / "twin", size), held_out_twin(tmp_path / "seen", size, hold_out=0.0)
    code, out, err = run_cli(
        monkeypatch, capsys, "tune", "--model", model_dir, "--images", 6, "--slots", 8, "--prefilter", seen
    )  # a prefilter trained on every image, the held-out ones too
    assert code == 2 and "may have been trained on these tuning images" in err and "Traceback" not in err, err
    cached = Path(os.environ["XDG_CACHE_HOME"]) / "diffclass" / "tables"
    assert json.loads((model_dir / "diffclass.json").read_text())["front"] is None
    assert not list(cached.glob("errors-*"))  # refused before the table's work
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "tune",
        "--model",
        model_dir,
        "--images",
        6,
        "--slots",
        8,
        "--prefilter",
        twin,
        "--prefilter-ranker",
        twin,
    )
    assert code == 0, err
    front = json.loads((model_dir / "diffclass.json").read_text())["front"]
    assert front["prefilter"] == str(twin) and front["prefilter_ranker"] == weights_digest(twin)
    held_out = set(json.loads((twin / "didicm.json").read_text())["training"]["held_out"])
    train = load_dataset("digits", "train")
    per_class = [sum(1 for i, y in zip(train.ids, train.labels.tolist()) if y == c) for c in range(10)]
    assert len(held_out) == sum(round(0.25 * n) for n in per_class)  # digits has no groups: images, per class
    from diffclass.classifier import Classifier

    clf = Classifier.load(model_dir)
    tuned_on = unseen_images(clf, 6, 0, prefilter_ranker=str(twin))
    both = held_out & set(clf.info.training["held_out"])
    assert len(tuned_on) == 6 and both.issuperset(tuned_on.ids)  # neither model saw an image tuned on
    assert front["reference_gmacs"] > 0
    for point in front["points"]:
        if point["spec"].startswith("prefilter"):  # the filter's calls are paid for in NFEs and GMACs
            assert point["nfe_per_image"] > 0 and point["gmacs_per_image"] > 0
    tables = list(cached.glob("errors-*.safetensors"))
    assert len(tables) == 1
    stamp = tables[0].stat().st_mtime_ns
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "tune",
        "--model",
        model_dir,
        "--images",
        6,
        "--slots",
        8,
        "--prefilter",
        twin,
        "--prefilter-ranker",
        twin,
    )
    assert code == 0 and tables[0].stat().st_mtime_ns == stamp  # the same weights, images and slots: reused
    code, out, err = run_cli(monkeypatch, capsys, "tune", "--model", model_dir, "--images", 6, "--slots", 8)
    assert code == 0, err
    plain = json.loads((model_dir / "diffclass.json").read_text())["front"]
    assert plain["prefilter"] is None and front["candidates"] > plain["candidates"]  # rerunning replaces the front


def test_a_prefilter_ranker_ranks_and_is_priced_in_place_of_the_prefilter(model_dir, tmp_path):
    """The front names the prefilter but its points are the held-out twin's: one call, not the prefilter's own."""
    import re

    from diffclass.classifier import Classifier
    from diffclass.tuning import tune

    clf = Classifier.load(model_dir, batch_size=64)
    twin = str(held_out_twin(tmp_path / "twin", clf.info.image_size))
    data = unseen_images(clf, 5, 0, prefilter_ranker=twin)
    front = tune(
        clf,
        data,
        slots=4,
        specs=["exhaustive(n=4)"],
        prefilter=str(model_dir),
        prefilter_ranker=twin,
        cache=tmp_path / "tables",
        progress=False,
    )
    priced = [(p, re.search(r"k=(\d+);then=exhaustive\(n=(\d+)\)", p["spec"])) for p in front["points"]]
    priced = [(p, int(m[1]) * int(m[2])) for p, m in priced if m]
    assert priced and all(p["spec"].startswith(f"prefilter(by={model_dir};") for p, _ in priced)
    assert all(p["nfe_per_image"] == stage + 1 for p, stage in priced)  # the twin's one call per image


def test_a_replayed_prefilter_costs_and_ranks_as_a_live_run(model_dir):
    from diffclass.classifier import Classifier
    from diffclass.replay import ErrorTable
    from diffclass.tuning import FilterRun

    clf = Classifier.load(model_dir, batch_size=64)
    sieve = Classifier.load(model_dir, batch_size=64, seed=3)  # another noise bank: a filter of its own
    clf.sieves["sieve"] = sieve
    data = unseen_images(clf, 5)
    table = ErrorTable.compute(clf, data, slots=8, progress=False)
    strategy = clf.strategy(f"prefilter(by={model_dir};k=3;then=adaptive(keep=2,1;n=2,8))")
    strategy.by = "sieve"
    run = clf.replay(table, {"sieve": FilterRun.of(sieve, data)}, strategy)
    live = clf.classify(data.images, strategy, data.ids)
    assert run.hits == [d.label == int(y) for d, y in zip(live, data.labels)]  # image by image, as it ran live
    filter_nfe = 10 * 8 + 2 * 56  # the filter's own default, adaptive(keep=2,1;n=8,64)
    assert run.nfe_per_image == sum(d.nfe for d in live) / len(live) == 3 * 2 + 2 * 6 + filter_nfe
    assert run.gmacs_per_image == pytest.approx(sum(d.macs for d in live) / len(live) / 1e9)


def test_a_prefilter_ranker_needs_its_prefilter_and_a_held_out_part(monkeypatch, capsys, model_dir, tmp_path):
    from diffclass.data import load_dataset
    from diffclass.didicm.training import DiDiCMTrainConfig, train_didicm

    size = diffclass.load(model_dir).info.image_size
    plain = DiDiCMTrainConfig(steps=1, batch_size=4, width=8, baseline=True)  # held nothing out
    train_didicm(load_dataset("digits", "train", size), plain, show_progress=False).save_pretrained(tmp_path / "all")
    for extra, why in (
        (["--prefilter-ranker", tmp_path / "all"], "name the prefilter too"),
        (["--prefilter", tmp_path / "all", "--prefilter-ranker", tmp_path / "all"], "hold out no images in common"),
    ):
        code, out, err = run_cli(monkeypatch, capsys, "tune", "--model", model_dir, "--images", 4, "--slots", 4, *extra)
        assert code == 2 and why in err and "Traceback" not in err, err
