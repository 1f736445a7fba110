import json

import pytest
import torch
from diffusers.models.attention_processor import Attention

from diffclass.backbones import ClassConditionalUNet, load_backbone
from diffclass.errors import DiffclassError
from diffclass.hub.pruned import ARCHITECTURE_FILE, WEIGHTS_FILE
from diffclass.pruning import IMPORTANCES, accumulate_informative_gradients, prune_backbone
from tests.conftest import run_cli, tiny_backbone


def calibration(n=6, size=8, classes=5):
    gen = torch.Generator().manual_seed(3)
    return torch.rand(n, 1, size, size, generator=gen) * 2 - 1, torch.arange(n) % classes


def outputs(backbone, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 1, 8, 8, generator=gen)
    with torch.no_grad():
        return backbone.predict_noise(x, torch.tensor([0, 250, 600, 999]), backbone.condition([0, 1, 2, 4]))


@pytest.mark.parametrize("method", IMPORTANCES.names())
def test_every_method_prunes_whole_heads_and_keeps_the_output_layer(method):
    backbone = tiny_backbone()
    images, labels = calibration()
    heads_before = {name: m.heads for name, m in backbone.unet.named_modules() if isinstance(m, Attention)}
    report = prune_backbone(backbone, method, 0.5, images, labels, calibration_steps=10)
    assert report.macs_after < report.macs_before and report.params_after < report.params_before
    for name, module in backbone.unet.named_modules():
        if isinstance(module, Attention):
            assert module.heads == heads_before[name]
            width = module.to_q.out_features
            assert width % module.heads == 0 and width > 0
            assert module.to_k.out_features == module.to_v.out_features == width
            assert module.to_out[0].in_features == width
    assert backbone.unet.conv_out.out_channels == 1  # the predicted noise keeps the image's channels
    assert backbone.unet.class_embedding.num_embeddings == 5
    assert outputs(backbone).shape == (4, 1, 8, 8) and torch.isfinite(outputs(backbone)).all()


def test_pruned_model_round_trips_without_pickle_and_gives_identical_outputs(tmp_path):
    backbone = tiny_backbone()
    images, labels = calibration()
    report = prune_backbone(backbone, "diff-pruning", 0.4, images, labels, calibration_steps=10)
    backbone.info.pruning = report.to_dict()
    backbone.save_pretrained(tmp_path / "pruned")
    files = sorted(p.name for p in (tmp_path / "pruned").iterdir())
    assert files == ["config.json", "diffclass.json", ARCHITECTURE_FILE, WEIGHTS_FILE]
    loaded = load_backbone(tmp_path / "pruned")
    assert loaded.info.pruning["method"] == "diff-pruning"
    assert torch.equal(outputs(loaded), outputs(backbone))
    shapes = json.loads((tmp_path / "pruned" / ARCHITECTURE_FILE).read_text())["tensors"]
    assert shapes == {k: list(v.shape) for k, v in backbone.unet.state_dict().items()}
    unpruned = {k: list(v.shape) for k, v in tiny_backbone().unet.state_dict().items()}
    assert shapes != unpruned  # the file records the pruned shapes, not the config's


def test_a_pruned_colour_model_with_node_embeddings_round_trips(tmp_path):
    """The shape of `emoji`: RGB, embeddings for the tree's internal nodes, ancestor conditioning."""
    from tests.conftest import animal_tree

    names = tiny_backbone().info.class_names
    backbone = ClassConditionalUNet.create(names, image_size=8, channels=3, width=8, tree=animal_tree())
    gen = torch.Generator().manual_seed(3)
    images = torch.rand(6, 3, 8, 8, generator=gen) * 2 - 1
    report = prune_backbone(backbone, "diff-pruning", 0.25, images, torch.arange(6) % 5, calibration_steps=10)
    assert report.macs_after < report.macs_before
    backbone.info.pruning = report.to_dict()
    backbone.save_pretrained(tmp_path / "pruned")
    loaded = load_backbone(tmp_path / "pruned")
    assert loaded.unet.conv_out.out_channels == 3 and loaded.info.node_embeddings == backbone.info.node_embeddings
    x = torch.randn(3, 3, 8, 8, generator=gen)
    t = torch.tensor([10, 400, 900])
    for condition in ([0, 2, 4], ["pets", "wild", "lone"]):  # classes, then internal nodes of the tree
        with torch.no_grad():
            mine = backbone.predict_noise(x, t, backbone.condition(condition))
            again = loaded.predict_noise(x, t, loaded.condition(condition))
        assert torch.equal(mine, again) and mine.shape == (3, 3, 8, 8)


def test_weights_that_do_not_fit_the_pruned_architecture_are_refused(tmp_path):
    backbone = tiny_backbone()
    report = prune_backbone(backbone, "magnitude", 0.5, *calibration())
    backbone.info.pruning = report.to_dict()
    backbone.save_pretrained(tmp_path / "pruned")
    path = tmp_path / "pruned" / ARCHITECTURE_FILE
    arch = json.loads(path.read_text())
    arch["tensors"]["conv_out.weight"][0] += 1
    path.write_text(json.dumps(arch))
    with pytest.raises(DiffclassError, match="conv_out.weight has shape"):
        ClassConditionalUNet.from_pretrained(tmp_path / "pruned")
    path.write_text("{not json")
    with pytest.raises(DiffclassError, match="malformed|not valid JSON"):
        ClassConditionalUNet.from_pretrained(tmp_path / "pruned")


class KnownLoss(torch.nn.Module):
    """A 'network' whose loss at timestep t is w * curve[t], so the threshold's cut-off is known in advance."""

    def __init__(self, curve):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.curve = curve

    def loss_at(self, t):
        return self.w * self.curve[t]


@pytest.mark.parametrize("threshold, used", [(0.0, 8), (0.05, 5), (0.2, 4), (0.5, 3), (0.6, 2)])
def test_informative_walk_stops_at_the_first_loss_below_the_threshold(threshold, used):
    # peaks at t=1 (0.8), then decays; with T=0.2 the bar is 0.16, so t=4 (0.05) is the first step left out
    curve = [0.6, 0.8, 0.45, 0.2, 0.05, 0.03, 0.02, 0.01]
    model = KnownLoss(curve)
    steps, cutoff = accumulate_informative_gradients(model.loss_at, range(len(curve)), threshold)
    assert steps == list(range(used))
    assert cutoff == (None if used == len(curve) else used)
    assert model.w.grad.item() == pytest.approx(sum(curve[:used]))  # only informative steps add gradient


def test_diff_pruning_on_a_trained_model_stops_before_the_noisy_end_and_taylor_uses_every_step():
    # an untrained network's loss is flat in t; the embedded digits model's falls from the clean end
    images, labels = calibration(size=16, classes=10)
    dp = prune_backbone(load_backbone("digits"), "diff-pruning", 0.3, images, labels, calibration_steps=20)
    taylor = prune_backbone(load_backbone("digits"), "taylor", 0.3, images, labels, calibration_steps=20)
    assert dp.cutoff_timestep is not None and len(dp.timesteps_used) < 20
    assert dp.timesteps_used == sorted(dp.timesteps_used) and dp.timesteps_used[0] == 0  # from the clean end
    assert taylor.cutoff_timestep is None and len(taylor.timesteps_used) == 20


def test_bad_pruning_options_are_one_line_errors():
    with pytest.raises(DiffclassError, match="unknown pruning method"):
        prune_backbone(tiny_backbone(), "l1", 0.5, *calibration())
    with pytest.raises(DiffclassError, match="ratio"):
        prune_backbone(tiny_backbone(), "random", 1.5, *calibration())


def test_prune_command_prints_sizes_finetunes_resumes_and_evaluates(monkeypatch, capsys, model_dir, tmp_path):
    out = tmp_path / "pruned"
    code, stdout, err = run_cli(
        monkeypatch,
        capsys,
        "prune",
        "--model",
        model_dir,
        "--out",
        out,
        "--ratio",
        0.5,
        "--finetune-steps",
        4,
        "--calibration-images",
        8,
        "--calibration-steps",
        8,
    )
    assert code == 0, err
    assert "MACs/call" in stdout and "x)" in stdout
    info = json.loads((out / "diffclass.json").read_text())
    assert info["pruning"]["method"] == "diff-pruning" and info["pruning"]["finetune_steps"] == 4
    assert info["training"]["steps"] == 4 and (out / "checkpoint" / "train_state.json").is_file()
    parent = json.loads((model_dir / "diffclass.json").read_text())["training"]["held_out"]
    assert info["training"]["held_out"] == parent  # fine-tuned without them, so they can still be tuned on
    code, _, err = run_cli(monkeypatch, capsys, "fit-temperature", "--model", out, "--images", 4)
    assert code == 0, err
    code, _, err = run_cli(monkeypatch, capsys, "prune", "--model", model_dir, "--out", out)
    assert code == 2 and "already holds a model" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(monkeypatch, capsys, "prune", "--out", out, "--resume")
    assert code == 0, err
    code, stdout, err = run_cli(
        monkeypatch, capsys, "evaluate", "--model", out, "--limit", 3, "--strategy", "exhaustive(n=2)"
    )
    assert code == 0, err
    assert "exhaustive(n=2)" in stdout
    code, _, err = run_cli(
        monkeypatch, capsys, "prune", "--model", model_dir, "--out", tmp_path / "x", "--method", "l1"
    )
    assert code == 2 and "unknown pruning method" in err


def test_a_stable_diffusion_unet_prunes_and_loads_from_its_pipeline_folder(tmp_path):
    from diffclass.backbones.tiny import save_tiny_stable_diffusion
    from diffclass.hub.pruned import save_pruned

    save_tiny_stable_diffusion(tmp_path / "sd")
    backbone = load_backbone(tmp_path / "sd", class_names=["cat", "dog"])
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    report = prune_backbone(backbone, "diff-pruning", 0.25, images, torch.tensor([0, 1]), calibration_steps=5)
    assert report.macs_ratio > 1.5
    save_pruned(backbone.denoiser, tmp_path / "sd" / "unet")
    again = load_backbone(tmp_path / "sd", class_names=["cat", "dog"])
    x_t = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = backbone.predict_noise(x_t, torch.tensor([5, 500]), backbone.condition([0, 1]))
        assert torch.equal(again.predict_noise(x_t, torch.tensor([5, 500]), again.condition([0, 1])), expected)


@pytest.mark.parametrize("method", IMPORTANCES.names())
def test_every_method_cuts_the_same_channels_for_the_same_seed(method):
    """`random` too: the seed, not whatever ran before, decides what it removes."""
    cut = []
    for noise_before in (0, 1):
        backbone = tiny_backbone()
        torch.manual_seed(noise_before)  # the global generator in another state each time
        prune_backbone(backbone, method, 0.5, *calibration(), calibration_steps=10)
        cut.append(outputs(backbone))
    assert torch.equal(cut[0], cut[1])


def test_fine_tuning_keeps_the_original_recipe_augmentation_included():
    """A network trained not to depend on where a glyph sits must not unlearn it while it recovers from pruning."""
    from diffclass.pruning.finetune import finetune_config

    original = dict(batch_size=32, lr=1e-3, ema_decay=0.99, augment="shift=0.2,scale=0.1", steps=11000, seed=3)
    config = finetune_config(original, steps=200)
    assert (config.augment, config.batch_size, config.lr, config.ema_decay) == ("shift=0.2,scale=0.1", 32, 1e-3, 0.99)
    assert (config.steps, config.seed) == (200, 0)
    assert finetune_config({"lr": 1e-3}, steps=5).augment == "none"
