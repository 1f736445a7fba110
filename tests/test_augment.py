import pytest
import torch

from diffclass.data.augment import Augmentation
from diffclass.errors import DiffclassError


def _images(channels=3, n=6):
    images = -torch.ones(n, channels, 16, 16)
    images[:, :, 4:8, 4:8] = 1  # a bright square on a dark background, off centre
    return images


def test_spec_round_trips_and_none_is_identity():
    augmentation = Augmentation.parse("shift=0.1, rotate=10,grey=0.5")
    assert augmentation.spec == "shift=0.1,rotate=10,grey=0.5"
    assert Augmentation.parse(augmentation.spec) == augmentation
    images = _images()
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    assert Augmentation.parse("none")(images, gen) is images and torch.equal(gen.get_state(), state)


@pytest.mark.parametrize("spec", ["shift", "zoom=0.1", "shift=abc", "shift=-1", "grey=2", "scale=1", "rotate=nan"])
def test_bad_specs_are_refused_in_one_line(spec):
    with pytest.raises(DiffclassError, match="--augment"):
        Augmentation.parse(spec)


def test_shift_moves_content_and_fills_the_border_with_background():
    images = _images(channels=1)
    out = Augmentation(shift=0.25)(images, torch.Generator().manual_seed(3))
    assert out.shape == images.shape and not torch.allclose(out, images)
    mass = (out + 1).sum(dim=(1, 2, 3))
    assert torch.allclose(mass, (images + 1).sum(dim=(1, 2, 3)), rtol=0.35)  # moved, not erased or smeared
    assert torch.allclose(out[:, :, -1, :], -torch.ones(1))  # the far border stays background


def test_draws_are_per_image_and_seeded():
    images = _images().repeat(2, 1, 1, 1)
    a = Augmentation(shift=0.2, colour=0.3)(images, torch.Generator().manual_seed(1))
    b = Augmentation(shift=0.2, colour=0.3)(images, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.allclose(a[0], a[1])
    assert a.min() >= -1 and a.max() <= 1


def test_grey_makes_channels_equal():
    images = torch.rand(8, 3, 8, 8) * 2 - 1
    out = Augmentation(grey=1.0)(images, torch.Generator().manual_seed(0))
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 1], out[:, 2])


def test_noise_adds_seeded_noise_of_each_images_own_strength():
    images = torch.zeros(64, 1, 16, 16)
    out = Augmentation(noise=0.3)(images, torch.Generator().manual_seed(0))
    stds = out.std(dim=(1, 2, 3))
    assert 0 < stds.min() < 0.1 and 0.2 < stds.max() <= 0.33  # each image its own std in [0, 0.3]
    assert torch.equal(out, Augmentation(noise=0.3)(images, torch.Generator().manual_seed(0)))
    assert Augmentation.parse("noise=0.3,shift=0.1").spec == "shift=0.1,noise=0.3"


@pytest.mark.parametrize("channels", [1, 3])
def test_randaugment_is_seeded_changes_images_and_leaves_torchs_stream_alone(channels):
    pytest.importorskip("kornia")
    augment = Augmentation.parse("randaugment=10")
    images = torch.rand(16, channels, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    first = augment(images, torch.Generator().manual_seed(1))
    assert torch.equal(torch.rand(3), expected)  # the global stream kornia draws from is restored
    again, other = augment(images, torch.Generator().manual_seed(1)), augment(images, torch.Generator().manual_seed(2))
    assert first.shape == images.shape and torch.equal(first, again) and not torch.equal(first, other)
    assert (first - images).abs().mean() > 0.01 and first.min() >= -1 and first.max() <= 1
    assert augment.spec == "randaugment=10"


def test_randaugment_without_kornia_or_past_its_scale_is_one_line(monkeypatch):
    import sys

    with pytest.raises(DiffclassError, match=r"magnitude in \[0, 30\]"):
        Augmentation.parse("randaugment=31")
    monkeypatch.setitem(sys.modules, "kornia.augmentation.auto", None)
    with pytest.raises(DiffclassError, match="needs kornia"):
        Augmentation.parse("randaugment=9")(torch.zeros(2, 1, 8, 8), torch.Generator())
