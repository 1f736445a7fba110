"""Confidence that means something: probabilities from a temperature fitted on held-out images, and an image unlike
anything the model learnt from flagged and not given a confident answer."""

import json

import pytest
from PIL import Image, ImageDraw, ImageFont

import diffclass
from diffclass.data import load_dataset
from tests.conftest import run_cli


def typed_digits(tmp_path=None):
    """The ten digits typed in a font, white on black: digits, but not the upsampled 8x8 scans the model knows."""
    images = []
    for digit in range(10):
        image = Image.new("L", (32, 32), 0)
        ImageDraw.Draw(image).text((8, 1), str(digit), fill=255, font=ImageFont.load_default(size=26))
        if tmp_path is not None:
            image.save(tmp_path / f"{digit}.png")
        images.append(image)
    return images


def test_no_wrong_answer_on_typed_digits_is_confident_and_each_is_flagged():
    clf = diffclass.load("digits")
    decisions = clf.classify(typed_digits())
    for digit, decision in enumerate(decisions):
        assert decision.unfamiliar is not None and decision.unfamiliar >= 2  # far from the training digits
        if decision.label != digit:
            assert decision.probabilities[decision.label] < 0.9, (digit, decision.class_name)


def test_test_digits_are_familiar_and_keep_their_confidence():
    clf = diffclass.load("digits")
    test = load_dataset("digits", "test").subset(range(60))
    decisions = clf.classify(test.images, None, test.ids)
    assert sum((d.unfamiliar or 0) >= 2 for d in decisions) == 0
    right = [d.probabilities[d.label] for d, y in zip(decisions, test.labels) if d.label == int(y)]
    assert sum(p > 0.9 for p in right) >= 0.9 * len(right)


def test_classify_says_an_image_is_unfamiliar(monkeypatch, capsys, tmp_path):
    typed_digits(tmp_path)
    code, out, err = run_cli(monkeypatch, capsys, "classify", tmp_path / "0.png", "--model", "digits")
    assert code == 0 and "unlike" in out  # the table's notes (wrapped to the terminal)
    code, out, err = run_cli(monkeypatch, capsys, "classify", tmp_path / "0.png", "--model", "digits", "--json")
    assert code == 0 and json.loads(out)[0]["unfamiliar"] >= 2


def test_fit_temperature_records_the_typical_error_on_the_grid_it_was_measured(monkeypatch, capsys, model_dir):
    from diffclass.hub import ModelInfo

    code, out, err = run_cli(monkeypatch, capsys, "fit-temperature", "--model", model_dir, "--images", 5)
    assert code == 0 and "fit-temperature exhaustive(n=16)" in out + err, err  # a long fit shows its progress
    typical = ModelInfo.load(model_dir).typical_error
    assert typical["error"] > 0 and typical["grid"] == repr(diffclass.load(model_dir).scorer.grid)
    clf = diffclass.load(model_dir, timesteps="0-500")  # another grid: the error scale does not apply
    assert clf.classify(load_dataset("digits", "test").images[:2], "exhaustive(n=2)")[0].unfamiliar is None


def test_fit_temperature_scores_on_fewer_slots_when_asked(monkeypatch, capsys, model_dir):
    from diffclass.hub import ModelInfo

    code, out, err = run_cli(monkeypatch, capsys, "fit-temperature", "--model", model_dir, "--images", 5, "--slots", 2)
    assert code == 0 and "fit-temperature exhaustive(n=2)" in out + err, err
    fitted = ModelInfo.load(model_dir)
    assert fitted.typical_error["slots"] == 2 and fitted.temperature > 0
    code, out, err = run_cli(monkeypatch, capsys, "fit-temperature", "--model", model_dir, "--slots", 0)
    assert code == 2 and "--slots" in err


@pytest.mark.parametrize("bad", [{"error": -1}, {"error": "x"}, [1]])
def test_a_bad_typical_error_is_refused(monkeypatch, capsys, model_dir, bad):
    import json

    info = json.loads((model_dir / "diffclass.json").read_text())
    info["typical_error"] = bad
    (model_dir / "diffclass.json").write_text(json.dumps(info))
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", "--model", model_dir, "--limit", 1)
    assert code == 2 and "typical_error must be" in err
