import pytest
import torch

from diffclass.backbones import ClassConditionalUNet
from diffclass.classifier import Classifier

CLASSES = ["ant", "bee", "cat", "dog", "eel"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Error tables that tests compute go to a temporary cache, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


def tiny_backbone(seed: int = 0, classes=CLASSES) -> ClassConditionalUNet:
    torch.manual_seed(seed)
    return ClassConditionalUNet.create(classes, image_size=8, channels=1, width=8)


@pytest.fixture
def backbone() -> ClassConditionalUNet:
    return tiny_backbone()


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(9, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1


@pytest.fixture
def classifier(backbone) -> Classifier:
    return Classifier(backbone, batch_size=64)


class CallRecorder:
    """Wraps a backbone's predict_noise and records every (x_t, t, class) triple it sees."""

    def __init__(self, backbone):
        self.calls = []
        self.triples = []
        original = backbone.predict_noise

        def recording(x_t, t, cond):
            self.calls.append(len(x_t))
            for i in range(len(x_t)):
                self.triples.append((x_t[i].clone(), int(t[i]), int(cond[i])))
            return original(x_t, t, cond)

        backbone.predict_noise = recording


@pytest.fixture
def model_dir(tmp_path):
    """A tiny random model for the 10 digits classes, saved as a diffclass model folder."""
    backbone = tiny_backbone(classes=[str(d) for d in range(10)])
    backbone.info.dataset = "digits"
    backbone.save_pretrained(tmp_path / "model")
    return tmp_path / "model"
