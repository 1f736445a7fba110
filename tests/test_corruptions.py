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
