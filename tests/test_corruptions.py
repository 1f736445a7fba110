import json

import pytest
import torch

from diffclass.data import load_dataset
from diffclass.data.corruptions import KINDS, corrupt, corrupt_images, parse_corruption
from diffclass.errors import DiffclassError


@pytest.mark.parametrize("kind", KINDS)
def test_severity_zero_is_clean_and_damage_grows_with_severity(kind):
    data = load_dataset("digits", "test").subset(range(32))
    errors = [(corrupt_images(data.images, data.ids, kind, s) - data.images).pow(2).mean().item() for s in range(6)]
    assert errors[0] == 0
    assert all(a < b for a, b in zip(errors, errors[1:])), errors
    corrupted = corrupt(data, f"{kind}:3")
    assert corrupted.name == f"digits+{kind}:3" and corrupted.ids == data.ids
    assert corrupted.images.min() >= -1 and corrupted.images.max() <= 1


def test_noise_is_fixed_per_image():
    data = load_dataset("digits", "test").subset(range(4))
    a = corrupt_images(data.images, data.ids, "noise", 2)
    b = corrupt_images(data.images.flip(0), data.ids[::-1], "noise", 2).flip(0)
    assert torch.equal(a, b)


@pytest.mark.parametrize("spec", ["noise", "noise:6", "fog:2", "blur:x"])
def test_bad_corruptions(spec):
    with pytest.raises(DiffclassError, match="bad corruption"):
        parse_corruption(spec)


def test_evaluate_with_a_corruption(monkeypatch, capsys, model_dir, tmp_path):
    import json

    from tests.conftest import run_cli

    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "evaluate",
        "--model",
        model_dir,
        "--limit",
        3,
        "--strategy",
        "exhaustive(n=2)",
        "--corruption",
        "blur:4",
        "--json",
        tmp_path / "s.json",
    )
    assert code == 0, err
    assert json.loads((tmp_path / "s.json").read_text())["dataset"] == "digits+blur:4"


def test_shift_moves_every_image_by_whole_pixels_filling_with_background():
    image = -torch.ones(1, 1, 12, 12)
    image[0, 0, 4:7, 5:8] = 1
    ids = ["a", "b", "c", "d", "e", "f"]
    moved = corrupt_images(image.repeat(6, 1, 1, 1), ids, "shift", 2)
    for out in moved:
        rows, cols = (out[0] > 0).nonzero().unbind(1)
        assert len(rows) == 9 and {int(rows.min()) - 4, int(cols.min()) - 5} <= {-2, 2}  # moved 2 in x and in y
        assert out.min() == -1  # the uncovered border is background
    assert not all(torch.equal(moved[0], m) for m in moved[1:])  # directions differ between images
    assert torch.equal(moved, corrupt_images(image.repeat(6, 1, 1, 1), ids, "shift", 2))  # and repeat per id


def test_centre_moves_the_content_box_to_the_middle():
    image = torch.zeros(3, 16, 16)  # a grey background, as emoji have
    image[:, 1:5, 2:8] = torch.tensor([0.9, -0.8, 0.1]).view(3, 1, 1)
    data = corrupt(load_dataset("digits", "test").subset(range(2)), "centre")
    assert data.name == "digits+centre" and parse_corruption("centre") == ("centre", 1)
    out = corrupt_images(image[None], ["x"], "centre", 1)[0]
    rows, cols = (out[0] > 0.5).nonzero().unbind(1)
    assert (int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())) == (6, 9, 5, 10)
    assert torch.equal(corrupt_images(out[None], ["x"], "centre", 1)[0], out)  # centred stays centred


@pytest.mark.parametrize("spec", ["shift:9", "centre:1", "shift"])
def test_bad_moves(spec):
    with pytest.raises(DiffclassError, match="bad corruption"):
        parse_corruption(spec)


@pytest.fixture(scope="module")
def emoji_and_glyphs():
    from diffclass.data import load_dataset

    emoji = load_dataset("emoji", "test")
    colour = [i for i, group in enumerate(emoji.groups) if group == "openmoji"][:3]  # emojione-mono is grey
    return emoji.subset(colour), load_dataset("glyphs", "test").subset(range(3))


def test_every_imagenet_c_corruption_is_deterministic_per_image_and_changes_it(emoji_and_glyphs):
    from diffclass.data.imagenet_c import NAMES, corrupt_batch

    for data in emoji_and_glyphs:
        for name in NAMES:
            once = corrupt_batch(data.images, data.ids, name, 3)
            assert once.shape == data.images.shape and once.min() >= -1 and once.max() <= 1
            assert torch.equal(once, corrupt_batch(data.images, data.ids, name, 3)), name  # same ids: same image
            if name == "saturate" and data.images.shape[1] == 1:
                assert (once - data.images).abs().max() <= 1 / 127.5 + 1e-6  # nothing to grey, bar rounding
                continue
            assert (once - data.images).abs().mean() > 0.01, name
            if name not in ("brightness", "contrast", "saturate", "defocus_blur", "zoom_blur", "gaussian_blur",
                            "pixelate", "jpeg_compression"):  # fmt: skip
                other = corrupt_batch(data.images, [i + "x" for i in data.ids], name, 3)
                assert not torch.equal(once, other), name  # the randomness follows the id


def test_imagenet_c_severity_five_changes_more_than_one(emoji_and_glyphs):
    from diffclass.data.imagenet_c import NAMES, corrupt_batch

    emoji, _ = emoji_and_glyphs
    for name in NAMES:
        mild, severe = ((corrupt_batch(emoji.images, emoji.ids, name, s) - emoji.images).abs().mean() for s in (1, 5))
        assert severe > mild, name


@pytest.mark.parametrize(
    "spec, message",
    [
        ("imagenet-c:fgo:3", "unknown ImageNet-C corruption 'fgo'"),
        ("imagenet-c:fog:6", "SEVERITY 1-5"),
        ("imagenet-c:fog", "SEVERITY 1-5"),
    ],
)
def test_a_bad_imagenet_c_spec_is_one_line(monkeypatch, capsys, model_dir, spec, message):
    from tests.conftest import run_cli

    code, out, err = run_cli(monkeypatch, capsys, "evaluate", "--model", model_dir, "--corruption", spec)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_robustness_runs_a_suite_resumes_and_compares_with_a_baseline(monkeypatch, capsys, model_dir, tmp_path):
    from tests.conftest import run_cli

    args = ["robustness", "--model", model_dir, "--strategy", "exhaustive(n=2)", "--limit", 3, "--severities", "1,5"]
    args += ["--corruptions", "gaussian_noise,blur,position", "--baseline", model_dir, "--out", tmp_path / "records"]
    code, out, err = run_cli(monkeypatch, capsys, *args, "--json", tmp_path / "r.json", "--plot", tmp_path / "h.png")
    assert code == 0, err
    result = json.loads((tmp_path / "r.json").read_text())
    assert [(r["corruption"], r["severity"]) for r in result["rows"]] == [
        ("gaussian_noise", 1), ("gaussian_noise", 5), ("blur", 1), ("blur", 5),
        ("shift", 1), ("shift", 2), ("shift", 3), ("shift", 4), ("centre", 1),
    ]  # fmt: skip
    damage = [r["top1"] for r in result["rows"] if r["corruption"] in ("gaussian_noise", "blur")]
    assert result["mean_corruption_top1"] == pytest.approx(sum(damage) / 4, abs=1e-4)
    assert result["against"]["mce"] == pytest.approx(1.0)  # against itself (a random model errs everywhere)
    assert (tmp_path / "h.png").stat().st_size > 0
    records = tmp_path / "records" / "model" / "imagenet-c_gaussian_noise_5" / "records.jsonl"
    assert len(records.read_text().splitlines()) == 3
    code, out2, err = run_cli(monkeypatch, capsys, *args, "--json", tmp_path / "again.json")
    assert code == 0 and json.loads((tmp_path / "again.json").read_text())["rows"] == result["rows"]
    assert len(records.read_text().splitlines()) == 3  # answered from the records


def test_robustness_refuses_an_unknown_corruption_before_loading(monkeypatch, capsys):
    from tests.conftest import run_cli

    code, out, err = run_cli(monkeypatch, capsys, "robustness", "--corruptions", "imagenet-c,fgo")
    assert code == 2 and "unknown corruption 'fgo'" in err
    code, out, err = run_cli(monkeypatch, capsys, "robustness", "--severities", "0-9")
    assert code == 2 and "--severities must lie in 1-5" in err
