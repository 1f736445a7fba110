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
        (
            lambda p: _save(p / "rgba.png", Image.new("RGBA", (30, 20), (255, 0, 0, 128))),
            "transparent background filled with white",
        ),
        (lambda p: _save(p / "pal.png", Image.new("RGB", (16, 16), (200, 30, 30)).convert("P")), "colour made grey"),
        (lambda p: _save(p / "cmyk.jpg", Image.new("CMYK", (40, 40), (0, 50, 100, 0))), "colour made grey"),
        (
            lambda p: _save(p / "deep.png", Image.fromarray(np.arange(256, dtype=np.uint16).reshape(16, 16) * 200)),
            "I;16 pixels scaled to 0-255",
        ),
        (
            lambda p: _save(
                p / "anim.gif", Image.new("L", (16, 16)), save_all=True, append_images=[Image.new("L", (16, 16), 255)]
            ),
            "first of 2 frames",
        ),
        (lambda p: _save(p / "big.png", Image.new("L", (300, 90))), "padded 300x90 to a square with its border colour"),
        (lambda p: _save(p / "dot.png", Image.new("L", (1, 1), 128)), "only 1x1 pixels, far fewer than the model's"),
        (
            lambda p: _save(p / "grey.png", Image.new("L", (16, 16), 128)),
            "one flat colour: there is nothing to classify",
        ),
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


def drawing(size: int = 32) -> np.ndarray:
    """An anti-aliased ring: the alpha (or the strokes) of a drawing."""
    from PIL import ImageDraw

    big = Image.new("L", (size * 4, size * 4), 0)
    ImageDraw.Draw(big).ellipse((16, 16, size * 4 - 16, size * 4 - 16), outline=255, width=20)
    return np.asarray(big.resize((size, size), Image.Resampling.LANCZOS))


def test_a_drawing_on_a_transparent_page_looks_as_it_would_drawn_on_the_model_background():
    from diffclass.data.images import to_model_input

    strokes = drawing()
    black_ink = np.zeros((32, 32, 4), np.uint8)
    black_ink[..., 3] = strokes  # a black drawing on a transparent page, as drawing programs export it
    white_on_black = Image.fromarray(strokes, "L")  # the same strokes as the digits and glyphs are drawn
    transparent, notes = to_model_input(Image.fromarray(black_ink, "RGBA"), 16, 1, background=(0, 0, 0))
    opaque, _ = to_model_input(white_on_black, 16, 1, background=(0, 0, 0))
    assert (transparent - opaque).abs().max() < 1 / 127.5 + 1e-6  # the same input, up to one level of rounding
    assert "filled with black, the drawing in white so that it shows" in notes[0]
    white_ink = black_ink.copy()
    white_ink[..., :3] = 255  # white strokes already show on black: kept as they are
    kept, notes = to_model_input(Image.fromarray(white_ink, "RGBA"), 16, 1, background=(0, 0, 0))
    assert (kept - opaque).abs().max() < 1 / 127.5 + 1e-6 and notes[0] == "transparent background filled with black"


def test_a_drawing_on_a_transparent_page_gets_the_same_class_as_on_an_opaque_one(model_dir, tmp_path):
    import diffclass

    strokes = drawing(16)
    page = np.zeros((16, 16, 4), np.uint8)
    page[..., 3] = strokes
    Image.fromarray(page, "RGBA").save(tmp_path / "transparent.png")
    Image.fromarray(strokes, "L").save(tmp_path / "opaque.png")
    clf = diffclass.load(model_dir)  # a digits model: white strokes on black
    a, b = clf.classify([tmp_path / "transparent.png", tmp_path / "opaque.png"], "exhaustive(n=2)")
    assert a.ranking == b.ranking and a.probabilities == pytest.approx(b.probabilities, abs=1e-3)


def test_a_wide_image_is_padded_not_cropped():
    from diffclass.data.images import to_model_input

    wide = np.zeros((10, 40), np.uint8)
    wide[:, :4] = 255  # content at the far left, which a centre crop would cut away
    padded, notes = to_model_input(Image.fromarray(wide, "L"), 16, 1)
    assert padded[0, :, :2].max() > 0.5 and padded[0, :5].max() == -1  # kept; the padding is the border's black
    assert "padded 40x10 to a square with its border colour" in notes
