"""Stable Diffusion 3 (flow matching) on a tiny pipeline folder built offline: loading, the velocity/eps
conversion, every strategy, text embeddings once per class, save and load back, errors in one line."""

import pytest
import torch

import diffclass
from diffclass.backbones import load_backbone
from diffclass.backbones.base import q_sample
from diffclass.backbones.stable_diffusion3 import StableDiffusion3Backbone, flow_alphas_cumprod
from diffclass.backbones.tiny import save_tiny_stable_diffusion3
from diffclass.errors import DiffclassError
from diffclass.hierarchy import load_tree

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
SPECS = [
    "exhaustive(n=3)",
    "adaptive(keep=3,1;n=2,4)",
    "sequential(min=2;max=4;step=2)",
    "beam(b=2;t_s=2)",
    "hdc(slots=2)",
]


@pytest.fixture(scope="module")
def sd3_folder(tmp_path_factory):
    return save_tiny_stable_diffusion3(tmp_path_factory.mktemp("sd3") / "pipeline")


@pytest.fixture
def rgb():
    return torch.rand(2, 3, 20, 20, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_the_flow_process_is_ddpm_up_to_a_scale():
    sigma = torch.tensor([0.0, 0.3, 0.9, 1.0], dtype=torch.float64)
    a = flow_alphas_cumprod(sigma)
    x0, eps = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    flow = (1 - sigma[:, None]) * x0 + sigma[:, None] * eps
    scale = ((1 - sigma) ** 2 + sigma**2).sqrt()[:, None]
    assert torch.allclose(flow / scale, a.sqrt()[:, None] * x0 + (1 - a).sqrt()[:, None] * eps)
    assert a[0] == 1 and a[-1] == 0 and (a.diff() < 0).all()


def test_a_perfect_velocity_gives_back_the_exact_noise(sd3_folder):
    backbone = load_backbone(sd3_folder, class_names=["a", "b"])
    x0 = torch.randn(3, 16, 8, 8, generator=torch.Generator().manual_seed(1))
    eps = torch.randn(3, 16, 8, 8, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([50, 400, 999])

    class PerfectVelocity(torch.nn.Module):  # knows x0: v = eps - x0 = (x_s - x0) / sigma
        config = backbone.transformer.config

        def forward(self, hidden_states, timestep, **_):
            sigma = (timestep.double() / 1000).view(-1, 1, 1, 1)
            return ((hidden_states - (1 - sigma) * x0) / sigma - x0,)

    backbone.transformer = PerfectVelocity()
    x_t = q_sample(x0, eps, backbone.alphas_cumprod[t])
    predicted = backbone.predict_noise(x_t, t, backbone.condition([0, 1, 0]))
    assert torch.allclose(predicted.double(), eps.double(), atol=1e-4)
    assert torch.allclose(backbone.sigmas, backbone.pipeline.scheduler.sigmas.flip(0).double())  # shift 3 kept


@pytest.mark.parametrize("spec", SPECS)
def test_every_strategy_runs_on_sd3(sd3_folder, rgb, spec):
    clf = diffclass.load(f"sd3:{sd3_folder}", class_names=CIFAR10, templates=["a photo of a {}."], batch_size=16)
    assert isinstance(clf.backbone, StableDiffusion3Backbone) and clf.backbone.resolution == 16
    assert clf.use_tree(load_tree("cifar10", 10)) == "prompt"
    calls, original = [], clf.backbone.predict_noise
    clf.backbone.predict_noise = lambda x_t, t, cond: calls.append(len(x_t)) or original(x_t, t, cond)
    decisions = clf.classify(rgb, spec)
    assert all(sorted(d.ranking) == list(range(10)) and d.nfe > 0 for d in decisions)
    assert sum(d.nfe for d in decisions) == sum(calls)


def test_latents_and_text_embeddings_once_and_a_saved_folder_reads_its_classes_back(sd3_folder, rgb, tmp_path):
    clf = diffclass.load(sd3_folder, class_names=CIFAR10[:4], templates=["a photo of a {}.", "a {}"])
    encodes, original = [], clf.backbone.vae.encode
    clf.backbone.vae.encode = lambda x: encodes.append(len(x)) or original(x)
    first = clf.classify(rgb, "exhaustive(n=4)")
    clf.classify(rgb[:1], "adaptive(keep=2,1;n=2,4)")
    assert sum(encodes) == 3 and clf.backbone.text_calls == 4
    clf.backbone.vae.encode = original
    clf.backbone.save_pretrained(tmp_path / "saved")
    again = diffclass.load(tmp_path / "saved")
    assert again.class_names == CIFAR10[:4] and again.backbone.info.templates == ["a photo of a {}.", "a {}"]
    assert [d.ranking for d in again.classify(rgb, "exhaustive(n=4)")] == [d.ranking for d in first]


def test_what_cannot_be_loaded_is_named(sd3_folder):
    with pytest.raises(DiffclassError, match=r"cannot load the transformer \(transformer/\) of no-such/model"):
        load_backbone("sd3:no-such/model", class_names=["a"])
    with pytest.raises(DiffclassError, match="needs class names"):
        load_backbone(sd3_folder)


def test_the_training_loop_trains_a_flow_model(sd3_folder, tmp_path):
    from diffclass.data.base import ImageDataset
    from diffclass.training import TrainConfig, train

    images = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(3)) * 2 - 1
    data = ImageDataset("tiny", images, torch.tensor([0, 1] * 4), ["red", "blue"], [str(i) for i in range(8)])
    backbone = load_backbone(sd3_folder, class_names=["red", "blue"])
    before = [p.clone() for p in backbone.transformer.parameters()]
    train(
        backbone, data, tmp_path / "model", TrainConfig(steps=3, batch_size=4, checkpoint_every=3), show_progress=False
    )
    assert any(not torch.equal(a, b) for a, b in zip(before, backbone.transformer.parameters()))
    assert isinstance(diffclass.load(tmp_path / "model").backbone, StableDiffusion3Backbone)


def test_a_saved_folder_keeps_its_tuning_whatever_order_the_classes_come_in(sd3_folder, tmp_path):
    from diffclass.weighting import TimestepWeighting

    backbone = load_backbone(sd3_folder, class_names=["red", "blue"])
    backbone.info.temperature, backbone.info.timestep_range = 0.25, (100, 600)
    backbone.info.weighting = TimestepWeighting("learned", [100, 350, 601], [0.5, 1.5], images=4).to_dict()
    backbone.info.text_tokens = 8
    backbone.save_pretrained(tmp_path / "tuned")
    again = diffclass.load(tmp_path / "tuned", class_names=["blue", "red"])  # a folder: dataset sorts them
    assert again.info.temperature == 0.25 and again.info.timestep_range == (100, 600)
    assert again.scorer.weighting.kind == "learned" and again.backbone.info.text_tokens == 8
    assert again.backbone.condition([0]).shape[1] == (24 + 8) * 64 + 32  # CLIP tokens, then 8 zeros for T5
