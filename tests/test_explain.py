"""`diffclass explain`: the figure's numbers are those of a plain classify on the same seed and noise."""

import json

import torch
from PIL import Image

import diffclass
from diffclass.explain import explain
from tests.test_cli import run_cli


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


def test_explain_command_writes_the_figure_and_json(monkeypatch, capsys, model_dir, tmp_path):
    Image.new("L", (20, 20), 40).save(tmp_path / "x.png")
    code, out, err = run_cli(monkeypatch, capsys, "explain", tmp_path / "x.png", "--model", model_dir, "--strategy",
                             "exhaustive(n=2)", "--out", tmp_path / "e.png", "--json", tmp_path / "e.json",
                             "--slots", 4)  # fmt: skip
    assert code == 0, err
    data = json.loads((tmp_path / "e.json").read_text())
    assert (tmp_path / "e.png").stat().st_size > 1000 and data["nfe"] == 20 and len(data["top"]) == 5
    probabilities = [t["probability"] for t in data["top"]]
    assert probabilities == sorted(probabilities, reverse=True) and 0 <= min(probabilities) <= max(probabilities) <= 1
    code, out, err = run_cli(monkeypatch, capsys, "explain", tmp_path / "x.png", "--model", "didicm-glyphs")
    assert code == 2 and "not of DiDiCM models" in err
