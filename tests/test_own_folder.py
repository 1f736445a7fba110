"""A user's own folder of images is first-class: training, fitting, tuning and evaluating take `folder:DIR`, with
classes, size and colour read from the images."""

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from diffclass.data import load_dataset
from diffclass.hub import ModelInfo
from diffclass.recipe import FitPlan, _held_out
from tests.conftest import run_cli

COLOURS = {"circle": (220, 40, 40), "square": (40, 160, 60), "triangle": (40, 70, 220)}


def shapes(root, per_class: int = 8, size: int = 32, odd: dict | None = None):
    """Coloured shapes on white at seeded places and sizes: one sub-folder per class."""
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            side = (odd or {}).get((name, k), size)
            image = Image.new("RGB", (side, side), "white")
            r, x, y = rng.integers(5, 9), rng.integers(9, 23), rng.integers(9, 23)
            box = (x - r, y - r, x + r, y + r)
            draw = ImageDraw.Draw(image)
            if name == "circle":
                draw.ellipse(box, fill=colour)
            elif name == "square":
                draw.rectangle(box, fill=colour)
            else:
                draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=colour)
            image.save(root / name / f"{k}.png")
    return root


def test_a_folder_gives_its_classes_size_and_colour(tmp_path):
    data = load_dataset(f"folder:{shapes(tmp_path / 'shapes')}", "train")
    assert data.class_names == ["circle", "square", "triangle"] and data.images.shape == (24, 3, 32, 32)
    assert data.name == f"folder:{(tmp_path / 'shapes').resolve()}" and data.ids[0] == "folder:shapes/circle/0.png"


def test_train_fit_tune_and_evaluate_on_a_folder(monkeypatch, capsys, tmp_path):
    folder = f"folder:{shapes(tmp_path / 'shapes')}"
    model = tmp_path / "model"
    code, out, err = run_cli(
        monkeypatch, capsys, "train", "--dataset", folder, "--steps", 2, "--batch-size", 4, "--width", 4,
        "--hold-out", 0.25, "--out", model,
    )  # fmt: skip
    assert code == 0, err
    assert "3 classes, 24 images, colour at 32x32 (the size of all of them)" in err
    info = ModelInfo.load(model)
    assert info.class_names == ["circle", "square", "triangle"] and (info.image_size, info.channels) == (32, 3)
    assert info.dataset == f"folder:{(tmp_path / 'shapes').resolve()}"
    held = info.training["held_out"]  # two of each class's eight, by seed: stratified
    assert len(held) == 6 and all(sum(i.startswith(f"folder:shapes/{c}/") for i in held) == 2 for c in COLOURS)
    assert len(info.anchors) == 3 and all(0 <= v <= 31 for pair in info.anchors for v in pair)  # for `registered`
    for command in (
        ["fit-temperature", "--images", 6],
        ["tune", "--images", 6, "--slots", 2],
        ["evaluate", "--dataset", folder, "--strategy", "exhaustive(n=2)"],
        ["evaluate", "--dataset", folder, "--strategy", "registered(then=exhaustive(n=2))", "--limit", 3],
    ):
        code, out, err = run_cli(monkeypatch, capsys, *command, "--model", model)
        assert code == 0, (command, err)
    assert ModelInfo.load(model).front["images"] == 6


def test_didicm_trains_on_a_folder(monkeypatch, capsys, tmp_path):
    folder = f"folder:{shapes(tmp_path / 'shapes')}"
    code, out, err = run_cli(
        monkeypatch, capsys, "didicm", "train", "--dataset", folder, "--steps", 2, "--batch-size", 4, "--width", 8,
        "--baseline", "--out", tmp_path / "twin",
    )  # fmt: skip
    assert code == 0, err
    meta = json.loads((tmp_path / "twin" / "didicm.json").read_text())
    assert meta["class_names"] == ["circle", "square", "triangle"] and meta["image_size"] == 32


def test_mixed_sizes_need_an_image_size_or_a_majority(monkeypatch, capsys, tmp_path):
    odd = {(c, k): 48 for c in COLOURS for k in range(4)}  # half the images 48x48, half 32x32: no majority
    folder = f"folder:{shapes(tmp_path / 'mixed', odd=odd)}"
    args = ["train", "--dataset", folder, "--steps", 1, "--batch-size", 4, "--width", 4]
    code, out, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "a")
    assert code == 2 and "come in 2 sizes" in err and "pass --image-size" in err and len(err.strip().splitlines()) == 1
    code, out, err = run_cli(monkeypatch, capsys, *args, "--image-size", 32, "--out", tmp_path / "b")
    assert code == 0, err
    assert ModelInfo.load(tmp_path / "b").image_size == 32


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda root: [p.unlink() for p in (root / "square").iterdir()], "class folder 'square' has no images"),
        (lambda root: [__import__("shutil").rmtree(root / c) for c in ("square", "triangle")], "at least two classes"),
    ],
)
def test_bad_folders_are_one_line(monkeypatch, capsys, tmp_path, spoil, message):
    root = shapes(tmp_path / "shapes")
    spoil(root)
    for command in (["train", "--width", 4], ["didicm", "train", "--width", 8]):
        code, out, err = run_cli(
            monkeypatch, capsys, *command, "--dataset", f"folder:{root}", "--steps", 1, "--out", tmp_path / "m"
        )
        assert code == 2 and message in err and "Traceback" not in err, err


def test_fit_makes_a_tuned_calibrated_model_and_resumes_to_the_same_weights(monkeypatch, capsys, tmp_path):
    import torch
    from safetensors.torch import load_file

    import diffclass.training as training

    folder = f"folder:{shapes(tmp_path / 'shapes', per_class=6)}"
    args = ["fit", folder, "--steps", 4, "--width", 4, "--batch-size", 4, "--hold-out", 0.34, "--checkpoint-every", 2]
    code, out, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "whole")
    assert code == 0, err
    assert err.count("3 classes, 18 images, colour at 32x32") == 1  # said once, though planning and training read it
    assert "measured on 2 held-out images" in out and "classify with: diffclass classify IMAGE --model" in out
    record = json.loads((tmp_path / "whole" / "fit.json").read_text())
    assert list(record["done"]) == ["train", "calibrate", "temperature", "tune", "measure", "refit"]
    assert f"trained again on every image; the measured model is in {tmp_path / 'whole' / 'held-out'}" in out
    measured_model = tmp_path / "whole" / "held-out"
    info, kept = ModelInfo.load(tmp_path / "whole"), ModelInfo.load(measured_model)
    assert info.timestep_range and info.temperature != 1.0 and info.front["images"] == 4
    fitted = ("timestep_range", "temperature", "typical_error")  # on the held-out part, kept by the refit
    assert [getattr(info, name) for name in fitted] == [getattr(kept, name) for name in fitted]
    assert info.front["tuned_with"] == kept.front["weights"] != info.front["weights"]
    assert {k: v for k, v in info.front.items() if k not in ("weights", "tuned_with")} == {
        k: v for k, v in kept.front.items() if k != "weights"
    }
    import diffclass

    assert diffclass.load(tmp_path / "whole").strategy().name  # the front now stands for the refit's weights
    assert "held_out" not in info.training and len(kept.training["held_out"]) == 6  # the refit saw every image
    assert not (tmp_path / "whole" / "refit").exists()
    weights = "diffusion_pytorch_model.safetensors"
    final, first = (load_file(folder / weights) for folder in (tmp_path / "whole", measured_model))
    assert any(not torch.equal(final[k], first[k]) for k in final)
    plan = FitPlan(**record["plan"])  # the 6 held-out images: 4 fitted on, the other 2 measured
    steps = ("calibrate", "temperature", "tune", "measure")
    fitted = {step: set(_held_out(measured_model, step, plan)[1].ids) for step in steps}
    assert fitted["calibrate"] == fitted["temperature"] == fitted["tune"] and len(fitted["tune"]) == 4
    assert len(fitted["measure"]) == 2 and not fitted["measure"] & fitted["tune"]
    measured = record["done"]["measure"]
    assert measured["exhaustive"]["strategy"] == info.front["reference_spec"]
    assert 0 <= measured["default"]["ece"] <= 1 and measured["default"]["nfe_per_image"] > 0

    save, killed = training.save_checkpoint, set()

    def killed_after_saving(folder, step, *rest):  # killed once in each training, right after its step-2 checkpoint
        save(folder, step, *rest)
        if step == 2 and str(folder) not in killed:
            killed.add(str(folder))
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "save_checkpoint", killed_after_saving)
    code, out, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "killed")
    assert code != 0
    code, out, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "killed")
    assert code == 2 and "already holds a fit; pass --resume" in err
    code, out, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "killed", "--resume")
    assert code != 0 and any("refit" in folder for folder in killed)  # the refit's training, killed in turn
    code, out, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "killed", "--resume")
    assert code == 0, err
    for name in ("", "held-out"):
        whole, resumed = (load_file(tmp_path / run / name / weights) for run in ("whole", "killed"))
        assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert ModelInfo.load(tmp_path / "killed").front["points"] == info.front["points"]


def test_the_measure_step_spends_a_bounded_number_of_calls(monkeypatch, tmp_path):
    import diffclass.recipe as recipe

    folder = f"folder:{shapes(tmp_path / 'shapes', per_class=9)}"  # 27 images, 9 held out: 3 of them measured
    plan = recipe.plan_for(27, 32, 3, steps=2, width=4, batch_size=4, hold_out=0.34, refit=False)
    record = recipe.fit(folder, tmp_path / "m", plan, progress=False)
    assert record["done"]["measure"]["images"] == 3
    reference_nfe = ModelInfo.load(tmp_path / "m").front["reference_nfe"]
    monkeypatch.setattr(recipe, "MEASURE_CALLS", 2 * reference_nfe)  # two images' worth of exhaustive
    monkeypatch.setattr(recipe, "MEASURED_AT_LEAST", 1)
    assert recipe._measure(folder, tmp_path / "m", plan, False)["images"] == 2


def test_fit_takes_only_a_users_images(monkeypatch, capsys, tmp_path):
    code, out, err = run_cli(monkeypatch, capsys, "fit", "digits", "--out", tmp_path / "m")
    assert code == 2 and "takes your own images" in err


def test_fit_with_the_plain_twin_tunes_prefilters_on_what_both_held_out(monkeypatch, capsys, tmp_path):
    folder = f"folder:{shapes(tmp_path / 'shapes', per_class=6)}"
    code, out, err = run_cli(
        monkeypatch, capsys, "fit", folder, "--steps", 2, "--width", 4, "--batch-size", 4, "--hold-out", 0.34,
        "--with-twin", "--twin-steps", 2, "--out", tmp_path / "m",
    )  # fmt: skip
    assert code == 0, err
    front = ModelInfo.load(tmp_path / "m").front
    assert front["prefilter"] == str(tmp_path / "m" / "twin") and front["images"] == 4
    measured = tmp_path / "m" / "held-out"  # the model and twin the front was tuned with, before the refit
    assert ModelInfo.load(measured).front["prefilter"] == str(measured / "twin")
    twin = json.loads((measured / "twin" / "didicm.json").read_text())
    assert twin["training"]["held_out"] == ModelInfo.load(measured).training["held_out"]
    refit = json.loads((tmp_path / "m" / "twin" / "didicm.json").read_text())
    assert "held_out" not in refit["training"]  # the twin was trained again on every image too


def test_a_groups_file_holds_out_whole_groups(monkeypatch, capsys, tmp_path):
    root = shapes(tmp_path / "shapes")
    rows = ["path,group"] + [f"{c}/{k}.png,session{k % 4}" for c in COLOURS for k in range(8)]
    (root / "groups.csv").write_text("\n".join(rows) + "\n")
    data = load_dataset(f"folder:{root}", "train")
    assert data.groups[:4] == ["session0", "session1", "session2", "session3"]
    code, out, err = run_cli(
        monkeypatch, capsys, "train", "--dataset", f"folder:{root}", "--steps", 1, "--batch-size", 4, "--width", 4,
        "--hold-out", 0.25, "--out", tmp_path / "m",
    )  # fmt: skip
    assert code == 0, err
    (held,) = ModelInfo.load(tmp_path / "m").training["held_out"]  # one whole session of the four
    assert held.startswith("session")
    import diffclass
    from diffclass.loading import unseen_images

    tuned_on = unseen_images(diffclass.load(tmp_path / "m"), None)
    assert len(tuned_on) == 6 and set(tuned_on.groups) == {held}
    (root / "groups.csv").write_text("\n".join(rows[:-1]) + "\n")  # one image without a group
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", "--model", tmp_path / "m", "--dataset", f"folder:{root}")
    assert code == 2 and "1 image(s) have no group, e.g. triangle/7.png" in err


def test_fit_defaults_follow_the_glyphs_recipe_and_shift_nothing_unless_asked():
    from diffclass.recipe import plan_for

    glyphs = plan_for(12_616, 16, 1)  # the glyphs training split as a folder
    assert (glyphs.steps, glyphs.batch_size, glyphs.lr, glyphs.width) == (11_000, 128, 2e-3, 16)
    assert glyphs.augment == "none"
    small = plan_for(240, 32, 3)
    assert (small.steps, small.width, small.augment) == (1_500, 32, "colour=0.2")
    assert plan_for(4_000, 32, 3).steps == 3_750  # about 120 passes between the bounds
    asked = plan_for(240, 32, 3, augment="shift=0.1,scale=0.1", steps=None)
    assert asked.augment == "shift=0.1,scale=0.1" and asked.steps == 1_500
