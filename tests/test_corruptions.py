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
        monkeypatch, capsys, "evaluate", "--model", model_dir, "--limit", 3, "--strategy", "exhaustive(n=2)",
        "--corruption", "blur:4", "--json", tmp_path / "s.json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads((tmp_path / "s.json").read_text())["dataset"] == "digits+blur:4"
