"""`diffclass explain`: the figure's numbers are those of a plain classify on the same seed and noise."""

import json

import pytest
import torch
from PIL import Image

import diffclass
from diffclass.explain import explain, stage_rows
from tests.conftest import run_cli


def test_explain_matches_classify_and_its_curves_are_the_noise_banks_errors(model_dir):
    clf = diffclass.load(model_dir)
    image = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    result = explain(clf, image, "exhaustive(n=4)", "img", slots=4)
    plain = clf.classify(image[None], "exhaustive(n=4)", ["img"])[0]
    assert result.decision.ranking == plain.ranking and result.decision.probabilities == plain.probabilities
    winner = plain.ranking[0]
    assert sum(result.errors[winner]) / 4 == plain.scores[winner]  # the curve is the errors the decision averaged
    for c, d in result.difference_to_winner.items():
        assert abs(d["mean"] - (plain.scores[c] - plain.scores[winner])) < 1e-9 and d["mean"] >= 0
    assert len(result.views) == 3 and all(len(v) == 3 for v in result.views.values())
    assert len(result.heatmap) == 8 and len(result.heatmap[0]) == 8


@pytest.mark.parametrize(
    "spec",
    [
        "registered(prior=0;then=exhaustive(n=4))",
        "aligned(d=1;then=exhaustive(n=4))",
        "prefilter(by={model_dir};k=4;then=registered(prior=0;then=exhaustive(n=4)))",  # a stage's placement
    ],
)
def test_explain_reads_each_class_where_a_placed_strategy_read_it(model_dir, spec):
    clf, spec = diffclass.load(model_dir), spec.format(model_dir=model_dir)
    clf.info.anchors = [[1.5 + c % 5, 6.0 - c % 4] for c in range(10)]
    image = torch.full((1, 8, 8), -1.0)
    image[:, 3:5, 2:5] = 1.0
    result = explain(clf, image, spec, "img", slots=4)
    decision = clf.classify(image[None], spec, ["img"])[0]
    as_is = clf.classify(image[None], "exhaustive(n=4)", ["img"])[0]
    top = decision.ranking[:3]
    assert any(decision.scores[c] < as_is.scores[c] * (1 - 1e-6) for c in top)  # some class was read moved
    for c in top:  # the curves are the placed errors the decision averaged
        assert sum(result.errors[c]) / 4 == pytest.approx(decision.scores[c], rel=1e-6)


def test_explain_command_writes_the_figure_and_json(monkeypatch, capsys, model_dir, tmp_path):
    Image.new("L", (20, 20), 40).save(tmp_path / "x.png")
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "explain",
        tmp_path / "x.png",
        "--model",
        model_dir,
        "--strategy",
        "exhaustive(n=2)",
        "--out",
        tmp_path / "e.png",
        "--json",
        tmp_path / "e.json",
        "--slots",
        4,
    )
    assert code == 0, err
    data = json.loads((tmp_path / "e.json").read_text())
    assert (tmp_path / "e.png").stat().st_size > 1000 and data["nfe"] == 20 and len(data["top"]) == 5
    probabilities = [t["probability"] for t in data["top"]]
    assert probabilities == sorted(probabilities, reverse=True) and 0 <= min(probabilities) <= max(probabilities) <= 1
    code, out, err = run_cli(monkeypatch, capsys, "explain", tmp_path / "x.png", "--model", "nowhere")
    assert code == 2 and "unknown model" in err


@pytest.mark.parametrize("name", ["digits", "glyphs"])
def test_explain_on_an_embedded_model_equals_classify_and_writes_png_and_json(monkeypatch, capsys, tmp_path, name):
    from diffclass.data import load_dataset

    data = load_dataset(name, "test")
    pixels = ((data.images[3, 0] + 1) * 127.5).round().byte().numpy()
    Image.fromarray(pixels, mode="L").save(tmp_path / "x.png")
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "explain",
        tmp_path / "x.png",
        "--model",
        name,
        "--strategy",
        "exhaustive(n=2)",
        "--out",
        tmp_path / "e.png",
        "--json",
        tmp_path / "e.json",
    )
    assert code == 0, err
    shown = json.loads((tmp_path / "e.json").read_text())
    plain = diffclass.load(name).classify([tmp_path / "x.png"], "exhaustive(n=2)")[0]
    assert shown["prediction"] == plain.class_name and shown["nfe"] == plain.nfe
    assert [t["label"] for t in shown["top"]] == plain.ranking[:5]
    assert [t["probability"] for t in shown["top"]] == [round(p, 4) for _, p in plain.top(5)]
    assert (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "name, spec, steps",
    [("didicm-glyphs", "cp(steps=4)", 4), ("didicm-glyphs", "cl(N=4;steps=2)", 3), ("plain-glyphs", None, 1)],
)
def test_explain_on_didicm_shows_the_samplers_path_ending_at_the_decision(
    monkeypatch, capsys, tmp_path, name, spec, steps
):
    from diffclass.data import load_dataset

    clf = diffclass.load(name)
    image = load_dataset("glyphs", "test").images[5]
    result = explain(clf, image, spec, "g5")
    plain = clf.classify(image[None], spec, ["g5"])[0]
    assert result.decision.ranking == plain.ranking and len(result.times) == steps
    assert list(result.path) == plain.ranking[:5]
    for c, values in result.path.items():
        assert len(values) == steps and abs(values[-1] - plain.probabilities[c]) < 1e-6  # the path ends at the answer
    Image.fromarray(((image[0] + 1) * 127.5).round().byte().numpy(), mode="L").save(tmp_path / "g.png")
    args = ["explain", tmp_path / "g.png", "--model", name, "--out", tmp_path / "e.png", "--json", tmp_path / "e.json"]
    code, out, err = run_cli(monkeypatch, capsys, *args, *(["--strategy", spec] if spec else []))
    assert code == 0, err
    assert len(json.loads((tmp_path / "e.json").read_text())["times"]) == steps


def test_the_figure_names_tree_levels_beam_steps_and_final_stages():
    trace = [
        dict(level=0, candidates=4, slots=4, kept=2),
        dict(level=1, candidates=9, slots=4, kept=5),
        dict(candidates=40, slots=4, kept=7),
        dict(candidates=7, slots=32, kept=1),
    ]
    assert stage_rows(trace) == [
        ("level 0\n4 slots", 4, 2),
        ("level 1\n4 slots", 9, 5),
        ("stage 1\n4 slots", 40, 7),
        ("stage 2\n32 slots", 7, 1),
    ]
    beam = [dict(step=0, candidates=106, slots=1, kept=27), dict(step=1, candidates=27, slots=2, kept=7)]
    assert [label for label, *_ in stage_rows(beam)] == ["step 0\n1 slots", "step 1\n2 slots"]
    assert stage_rows([dict(candidates=106, slots=8)]) == [("stage 1\n8 slots", 106, None)]  # sequential: no kept
