"""What is fitted to a model (temperature, timestep window, tuned front) is fitted on images it never trained on,
and `auto` promises no more than the number of those images supports."""

import json

import pytest
from PIL import Image

from diffclass.data import load_dataset
from diffclass.hub import ModelInfo
from diffclass.strategies.auto import choose, loss_bound
from tests.conftest import run_cli

FITTING = (
    ["tune", "--images", 4, "--slots", 4],
    ["calibrate", "--images", 4, "--grid-size", 4, "--window", 2],
    ["fit-temperature", "--images", 4],
)


def forget_hold_out(model_dir):
    info = ModelInfo.load(model_dir)
    info.training.pop("held_out")
    info.save(model_dir)


@pytest.mark.parametrize("command", FITTING, ids=lambda c: c[0])
def test_a_model_that_held_nothing_out_is_refused_and_told_how(monkeypatch, capsys, model_dir, command):
    forget_hold_out(model_dir)
    before = (model_dir / "diffclass.json").read_text()
    code, out, err = run_cli(monkeypatch, capsys, *command, "--model", model_dir)
    assert code == 2 and "records no held-out images" in err and "--images-from folder:DIR" in err
    assert len(err.strip().splitlines()) == 1 and (model_dir / "diffclass.json").read_text() == before
    code, out, err = run_cli(monkeypatch, capsys, *command, "--model", model_dir, "--images-from", "digits")
    assert code == 2 and "was trained on digits" in err  # the images it trained on, named outright


def test_images_it_never_saw_can_be_named_from_a_folder(monkeypatch, capsys, model_dir, tmp_path):
    forget_hold_out(model_dir)
    test = load_dataset("digits", "test")
    for i in range(6):  # test digits stand in for a user's own unseen images
        folder = tmp_path / "unseen" / test.class_names[int(test.labels[i])]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(((test.images[i, 0] + 1) * 127.5).byte().numpy()).save(folder / f"{i}.png")
    code, out, err = run_cli(
        monkeypatch, capsys, "fit-temperature", "--model", model_dir, "--images-from", f"folder:{tmp_path / 'unseen'}"
    )
    assert code == 0, err
    assert ModelInfo.load(model_dir).temperature is not None


def test_train_holds_out_a_stratified_part_by_default_and_records_it(monkeypatch, capsys, tmp_path):
    code, out, err = run_cli(
        monkeypatch, capsys, "train", "--dataset", "digits", "--steps", 1, "--batch-size", 4, "--width", 4,
        "--out", tmp_path / "m",
    )  # fmt: skip
    assert code == 0, err
    held = ModelInfo.load(tmp_path / "m").training["held_out"]  # survives save and load
    assert held == load_dataset("digits", "train").held_out(0.15, seed=0)


def test_few_tuning_images_make_auto_pick_a_more_conservative_point():
    # the same rates measured on 100 and on 2,000 images: the cheap point loses 1% of the images exhaustive gets
    # right and gains none; the middle one loses 1% and gains 1%
    def front(images):
        one = images // 100
        return [
            dict(spec="cheap", top1=0.89, nfe_per_image=20, gained=0, lost=one),
            dict(spec="middle", top1=0.90, nfe_per_image=60, gained=one, lost=one),
        ]

    reference = dict(reference_top1=0.90, reference_nfe=160, reference_spec="exhaustive(n=16)")
    picks = {
        (n, loss): choose(front(n), max_loss=loss, images=n, **reference)["spec"]
        for n in (100, 2000)
        for loss in (0.5, 1.5, 2.5)
    }
    assert picks == {
        (2000, 0.5): "middle",  # no net loss, and 2,000 images bound it within 0.5 points
        (2000, 1.5): "cheap",  # a point lost, bounded within 1.5
        (2000, 2.5): "cheap",
        (100, 0.5): "exhaustive(n=16)",  # 100 images cannot bound anything within 0.5: the reference itself
        (100, 1.5): "exhaustive(n=16)",
        (100, 2.5): "middle",  # the same rates, a costlier point than 2,000 images allow
    }
    small, large = (loss_bound(front(n)[1], n, 0.9) for n in (100, 2000))
    assert small > 0.02 > 0.005 > large  # the same zero net loss promises less on 100 images than on 2,000
    assert choose(front(100), max_loss=1.5, **reference)["spec"] == "cheap"  # an old front without images: rates


def test_the_tuned_front_stores_what_the_bound_needs(monkeypatch, capsys, model_dir):
    code, out, err = run_cli(monkeypatch, capsys, "tune", "--model", model_dir, "--images", 5, "--slots", 4)
    assert code == 0, err
    front = json.loads((model_dir / "diffclass.json").read_text())["front"]
    assert front["images"] == 5 and front["reference_spec"] == "exhaustive(n=4)"
    for point in front["points"]:
        assert round(point["top1"] * 5) - round(front["reference_top1"] * 5) == point["gained"] - point["lost"]
