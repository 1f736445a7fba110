"""The bad-input corpus: each kind gets one clear line, a sensible exit code, and nothing written is lost.

(Odd image files - zero-byte, truncated, text named .jpg, 16-bit, CMYK, palette, RGBA, animated - are in
test_data.py; unknown names and misfit weights in test_cli.py; pickled weights in test_backbone.py.)
"""

import json

import torch
from PIL import Image

from tests.conftest import tiny_backbone
from tests.test_cli import run_cli


def _model(tmp_path):
    backbone = tiny_backbone(classes=[str(d) for d in range(10)])
    backbone.info.dataset = "digits"
    backbone.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def _one_error_line(err):
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err
    return lines


def test_unicode_and_spaces_in_paths(monkeypatch, capsys, tmp_path):
    folder = tmp_path / "ünï cödé" / "my images"
    folder.mkdir(parents=True)
    Image.new("L", (20, 20), 200).save(folder / "naïve [1] ∂.png")
    code, out, err = run_cli(
        monkeypatch, capsys, "classify", folder / "naïve [1] ∂.png", "--model", _model(tmp_path), "--json"
    )
    assert code == 0, err
    assert json.loads(out)[0]["id"].endswith("naïve [1] ∂.png")


def test_a_folder_mixing_images_and_other_files(monkeypatch, capsys, tmp_path):
    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    Image.new("L", (9, 9)).save(folder / "a.png")
    Image.new("RGB", (9, 9)).save(folder / "sub" / "b.JPG")
    (folder / "notes.txt").write_text("hello")
    (folder / "data.csv").write_text("1,2")
    code, out, err = run_cli(monkeypatch, capsys, "classify", folder, "--model", _model(tmp_path), "--json")
    assert code == 0, err
    assert "skipped 2 file(s)" in err
    assert sorted(r["id"].rsplit("/", 1)[-1] for r in json.loads(out)) == ["a.png", "b.JPG"]


def test_an_empty_folder(monkeypatch, capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, out, err = run_cli(monkeypatch, capsys, "classify", tmp_path / "empty", "--model", _model(tmp_path))
    assert code == 2 and _one_error_line(err) == [f"error: {tmp_path / 'empty'}: no images in this folder"]


def test_a_huge_image_is_refused_without_decoding_it(monkeypatch, capsys, tmp_path):
    Image.new("1", (20000, 20000)).save(tmp_path / "huge.png")
    code, out, err = run_cli(monkeypatch, capsys, "classify", tmp_path / "huge.png", "--model", _model(tmp_path))
    assert code == 2 and "20000x20000 is too large" in _one_error_line(err)[0]


def test_a_tree_that_does_not_match_the_model(monkeypatch, capsys, tmp_path):
    code, out, err = run_cli(
        monkeypatch, capsys, "evaluate", "--model", _model(tmp_path), "--tree", "cifar100", "--limit", 2
    )
    assert code == 2 and "tree: leaves must be classes 0..9" in _one_error_line(err)[0]


def test_nan_from_the_network_stops_the_run_and_keeps_earlier_records(monkeypatch, capsys, tmp_path):
    from diffclass.backbones import class_unet

    model = _model(tmp_path)
    calls = {"n": 0}
    original = class_unet.ClassConditionalUNet.predict_noise

    def sometimes_nan(self, x_t, t, cond):
        calls["n"] += 1
        eps = original(self, x_t, t, cond)
        return eps if calls["n"] <= 12 else torch.full_like(eps, float("nan"))

    monkeypatch.setattr(class_unet.ClassConditionalUNet, "predict_noise", sometimes_nan)
    args = ("evaluate", "--model", model, "--limit", 20, "--strategy", "exhaustive(n=2)", "--batch-size", 10)
    code, out, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "out")
    assert code == 2 and "NaN/Inf" in _one_error_line(err)[0]
    kept = (tmp_path / "out" / "records.jsonl").read_text().splitlines()
    assert len(kept) >= 1 and all(json.loads(line)["nfe"] == 20 for line in kept)
    monkeypatch.setattr(class_unet.ClassConditionalUNet, "predict_noise", original)
    code, out, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "out")
    assert code == 0, err
    lines = (tmp_path / "out" / "records.jsonl").read_text().splitlines()
    assert lines[: len(kept)] == kept and len({json.loads(line)["id"] for line in lines}) == 20
