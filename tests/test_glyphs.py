import numpy as np
import torch

from diffclass.data import load_dataset
from diffclass.data.glyphs import STYLES, TEST_STYLES, glyph_classes, render_glyph


def test_glyphs_split_by_font_style():
    train, test = load_dataset("glyphs", "train"), load_dataset("glyphs", "test")
    assert len(train.class_names) >= 100 and train.class_names == test.class_names
    assert set(test.groups) == set(TEST_STYLES) and not set(train.groups) & set(TEST_STYLES)
    assert set(train.groups) == set(STYLES) - set(TEST_STYLES)
    assert sorted(set(test.labels.tolist())) == list(range(len(test.class_names)))  # every class is tested
    assert len(test) >= 400 and test.images.shape[1:] == (1, 16, 16)
    assert -1 <= test.images.min() and test.images.max() <= 1 and test.images.std() > 0.1


def test_glyphs_are_deterministic_per_seed():
    from PIL import ImageFont

    from diffclass.data.glyphs import FONT_DIR

    font = ImageFont.truetype(str(FONT_DIR / "DejaVuSans.ttf"), size=38)
    a = render_glyph(font, "Ж", np.random.default_rng([0, 1]), 16)
    b = render_glyph(font, "Ж", np.random.default_rng([0, 1]), 16)
    c = render_glyph(font, "Ж", np.random.default_rng([0, 2]), 16)
    assert np.array_equal(a, b) and not np.array_equal(a, c) and a.max() > 100
    again = load_dataset("glyphs", "test")
    assert torch.equal(again.images, load_dataset("glyphs", "test").images)


def test_look_alike_glyphs_are_left_out():
    chars = [g.char for g in glyph_classes()]
    assert len(chars) == len(set(chars))
    for look_alike in "lΑΒΕΗΙΚΜΝΟΡΤΥΧοАВЕКМНОРСТХЗГПФ":
        assert look_alike not in chars
