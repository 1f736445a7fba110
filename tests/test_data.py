import numpy as np
import pytest
import torch
from PIL import Image

from diffclass.data import load_dataset
from diffclass.data.images import load_image
from diffclass.errors import DiffclassError


def test_digits_split_is_fixed_disjoint_and_large_enough():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert len(test) >= 350 and len(train) + len(test) == 1797
    assert not set(train.ids) & set(test.ids)
    assert test.images.shape[1:] == (1, 16, 16) and test.images.min() >= -1 and test.images.max() <= 1
    assert sorted(set(test.labels.tolist())) == list(range(10))
    again = load_dataset("digits", "test")
    assert again.ids == test.ids and torch.equal(again.images, test.images)


def test_unknown_dataset_and_split():
    with pytest.raises(DiffclassError, match="unknown dataset"):
        load_dataset("cifar-1000")
    with pytest.raises(DiffclassError, match="unknown split"):
        load_dataset("digits", "validation")


def _save(path, image, **kw):
    image.save(path, **kw)
    return path


@pytest.mark.parametrize(
    "make, note",
    [
        (lambda p: _save(p / "rgba.png", Image.new("RGBA", (30, 20), (255, 0, 0, 128))), "RGBA -> L"),
        (lambda p: _save(p / "pal.png", Image.new("P", (16, 16))), "P -> L"),
        (lambda p: _save(p / "cmyk.jpg", Image.new("CMYK", (40, 40), (0, 50, 100, 0))), "CMYK -> L"),
        (
            lambda p: _save(p / "deep.png", Image.fromarray(np.arange(256, dtype=np.uint16).reshape(16, 16) * 200)),
            "I;16 -> L",
        ),
        (
            lambda p: _save(
                p / "anim.gif", Image.new("L", (16, 16)), save_all=True, append_images=[Image.new("L", (16, 16), 255)]
            ),
            "first of 2 frames",
        ),
        (lambda p: _save(p / "big.png", Image.new("L", (300, 90))), "resized 300x90 -> 16x16"),
    ],
)
def test_odd_images_are_converted_and_say_so(tmp_path, make, note):
    loaded = load_image(make(tmp_path), 16, 1)
    assert loaded.tensor.shape == (1, 16, 16)
    assert loaded.tensor.min() >= -1 and loaded.tensor.max() <= 1
    assert any(note in n for n in loaded.notes), loaded.notes


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.png", "no such file"),
        (lambda p: (p / "empty.png").write_bytes(b"") and None or p / "empty.png", "empty file"),
        (lambda p: (p / "text.jpg").write_text("not a picture") and None or p / "text.jpg", "not an image"),
        (lambda p: p, "is a folder"),
    ],
)
def test_unreadable_files_get_one_clear_error(tmp_path, make, message):
    with pytest.raises(DiffclassError, match=message):
        load_image(make(tmp_path), 16, 1)


def test_truncated_png_is_reported_as_corrupt(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DiffclassError, match="corrupt|not an image"):
        load_image(tmp_path / "cut.png", 16, 1)
