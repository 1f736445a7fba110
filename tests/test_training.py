import json

import pytest
import torch
from PIL import Image

from diffclass.backbones import load_backbone
from diffclass.data.base import ImageDataset
from diffclass.errors import DiffclassError
from diffclass.training import TrainConfig, sample, save_sample_grid, train
from tests.conftest import CLASSES, tiny_backbone


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(20) % len(CLASSES)
    images = torch.rand(20, 1, 8, 8, generator=gen) * 0.2 + (labels.view(-1, 1, 1, 1) / 2.5 - 1)
    return ImageDataset("toy", images, labels, CLASSES, [f"toy/{i}" for i in range(20)])


def _weights(folder):
    return load_backbone(folder).unet.state_dict()


def test_training_saves_a_loadable_model_with_its_recipe(data, tmp_path):
    config = TrainConfig(steps=12, batch_size=8, lr=2e-3, warmup_steps=1, checkpoint_every=6)
    backbone = train(tiny_backbone(), data, tmp_path / "m", config, show_progress=False)
    loaded = load_backbone(tmp_path / "m")
    assert loaded.info.training["steps"] == 12 and loaded.info.dataset == "toy"
    for name, value in loaded.unet.state_dict().items():
        assert torch.equal(value, backbone.unet.state_dict()[name])


def test_resume_continues_exactly_where_it_stopped(data, tmp_path):
    config = TrainConfig(steps=6, batch_size=8, warmup_steps=2, checkpoint_every=3)
    train(tiny_backbone(), data, tmp_path / "whole", config, show_progress=False)
    train(
        tiny_backbone(), data, tmp_path / "split", TrainConfig(**{**config.__dict__, "steps": 3}), show_progress=False
    )
    train(tiny_backbone(seed=9), data, tmp_path / "split", config, resume=True, show_progress=False)
    whole, split = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    for name in whole:
        assert torch.allclose(whole[name], split[name], atol=1e-6), name


def test_resume_without_checkpoint_is_refused(data, tmp_path):
    with pytest.raises(DiffclassError, match="nothing to resume"):
        train(tiny_backbone(), data, tmp_path, TrainConfig(steps=2), resume=True, show_progress=False)


def test_ddim_samples_are_seeded_and_gridded(tmp_path):
    backbone = tiny_backbone()
    labels = torch.arange(len(CLASSES)).repeat_interleave(2)
    a, b = sample(backbone, labels, steps=4, seed=1), sample(backbone, labels, steps=4, seed=1)
    assert torch.equal(a, b) and a.shape == (10, 1, 8, 8) and a.abs().max() <= 1
    assert not torch.equal(a, sample(backbone, labels, steps=4, seed=2))
    save_sample_grid(a, CLASSES, 2, tmp_path / "grid.png")
    assert Image.open(tmp_path / "grid.png").size[1] > Image.open(tmp_path / "grid.png").size[0]


def test_hold_out_keeps_whole_groups_out_of_training_and_records_them(tmp_path):
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(20) % len(CLASSES)
    images = torch.rand(20, 1, 8, 8, generator=gen) * 2 - 1
    groups = [f"style{i % 4}" for i in range(20)]
    data = ImageDataset("toy", images, labels, CLASSES, [f"toy/{i}" for i in range(20)], groups=groups)
    config = TrainConfig(steps=2, batch_size=8, warmup_steps=1, hold_out=0.25, checkpoint_every=2)
    train(tiny_backbone(), data, tmp_path / "m", config, show_progress=False)
    held = load_backbone(tmp_path / "m").info.training["held_out"]
    assert len(held) == 1 and held[0] in groups
    assert held == data.held_out(0.25, 0)


def test_augmented_training_replays_exactly_and_differs_from_plain(data, tmp_path):
    config = TrainConfig(steps=4, batch_size=8, warmup_steps=1, checkpoint_every=2, augment="shift=0.2,rotate=15")
    train(tiny_backbone(), data, tmp_path / "a", config, show_progress=False)
    train(tiny_backbone(), data, tmp_path / "b", TrainConfig(**{**config.__dict__, "steps": 2}), show_progress=False)
    train(tiny_backbone(), data, tmp_path / "b", config, resume=True, show_progress=False)
    train(
        tiny_backbone(),
        data,
        tmp_path / "plain",
        TrainConfig(**{**config.__dict__, "augment": "none"}),
        show_progress=False,
    )
    a, b, plain = _weights(tmp_path / "a"), _weights(tmp_path / "b"), _weights(tmp_path / "plain")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert not all(torch.allclose(a[k], plain[k], atol=1e-6) for k in a)
    assert load_backbone(tmp_path / "a").info.training["augment"] == "shift=0.2,rotate=15"


def test_calibration_and_tuning_draw_from_what_training_held_out(model_dir):
    import diffclass
    from diffclass.data import load_dataset
    from diffclass.hub import ModelInfo
    from diffclass.loading import unseen_images

    size = ModelInfo.load(model_dir).image_size
    held = load_dataset("digits", "train", size).held_out(0.1, seed=0)  # digits has no groups: image ids
    info = ModelInfo.load(model_dir)
    info.training["held_out"] = held
    info.save(model_dir)
    sample = unseen_images(diffclass.load(model_dir), 20, seed=1)
    assert len(sample) == 20 and set(sample.ids) <= set(held)


def test_training_can_start_from_a_saved_model(data, tmp_path, monkeypatch):
    import diffclass.data
    from diffclass.training import train_model

    first = TrainConfig(steps=2, batch_size=8, warmup_steps=1, checkpoint_every=2)
    start = train(tiny_backbone(), data, tmp_path / "start", first, show_progress=False)
    start.info.timestep_range, start.info.temperature = (100, 300), 7.0
    start.info.typical_error = dict(error=0.5, grid="0-999", slots=4)
    start.save_pretrained(tmp_path / "start")
    monkeypatch.setattr(diffclass.data, "load_dataset", lambda name, split, size=None: data)
    config = TrainConfig(steps=2, batch_size=8, warmup_steps=1, checkpoint_every=2)
    train_model(tmp_path / "more", "toy", config, init_from=tmp_path / "start")
    more = load_backbone(tmp_path / "more")
    assert more.info.timestep_range is None and more.info.temperature == 1.0  # fitted to the old weights: dropped
    assert more.info.typical_error is None
    assert str(tmp_path / "start") in more.info.training["init_from"]
    changed = [k for k, v in more.unet.state_dict().items() if not torch.equal(v, start.unet.state_dict()[k])]
    assert changed and set(more.unet.state_dict()) == set(start.unet.state_dict())
    other = ImageDataset("toy", data.images, data.labels, ["a", "b", "c", "d", "e"], data.ids)
    monkeypatch.setattr(diffclass.data, "load_dataset", lambda name, split, size=None: other)
    with pytest.raises(DiffclassError, match="init-from"):
        train_model(tmp_path / "bad", "toy", config, init_from=tmp_path / "start")


def test_a_checkpoint_killed_between_its_two_files_resumes_to_the_uninterrupted_weights(data, tmp_path, monkeypatch):
    import diffclass.hub.checkpoints as checkpoints

    config = TrainConfig(steps=6, batch_size=8, warmup_steps=1, checkpoint_every=2)
    whole = train(tiny_backbone(), data, tmp_path / "whole", config, show_progress=False)
    write = checkpoints.write_text_atomic

    def killed_before_the_json(path, text):  # step 4's tensors are on disk, its JSON never is
        if '"step": 4' in text:
            raise KeyboardInterrupt
        write(path, text)

    monkeypatch.setattr(checkpoints, "write_text_atomic", killed_before_the_json)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_backbone(), data, tmp_path / "torn", config, show_progress=False)
    monkeypatch.setattr(checkpoints, "write_text_atomic", write)
    folder = tmp_path / "torn" / "checkpoint"
    assert json.loads((folder / "train_state.json").read_text())["step"] == 2  # the last whole checkpoint
    assert (folder / "train_state.2.safetensors").is_file()
    resumed = train(tiny_backbone(), data, tmp_path / "torn", config, resume=True, show_progress=False)
    for (name, a), b in zip(whole.denoiser.state_dict().items(), resumed.denoiser.state_dict().values()):
        assert torch.equal(a, b), name
    assert sorted(p.name for p in folder.glob("*.safetensors")) == ["train_state.6.safetensors"]


@pytest.mark.parametrize("text", ["[1]", "[" * 50_000 + "]" * 50_000, '{"step": 2, "config": {}}', "{not json"])
def test_a_damaged_checkpoint_record_is_one_line_on_resume(monkeypatch, capsys, tmp_path, text):
    from tests.conftest import run_cli

    args = ["train", "--dataset", "digits", "--steps", 2, "--batch-size", 4, "--width", 4, "--checkpoint-every", 1]
    code, out, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "m")
    assert code == 0, err
    (tmp_path / "m" / "checkpoint" / "train_state.json").write_text(text)
    code, out, err = run_cli(monkeypatch, capsys, *args, "--steps", 3, "--out", tmp_path / "m", "--resume")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_a_finished_run_trained_further_forgets_what_was_fitted_to_its_weights(data, tmp_path, monkeypatch):
    import diffclass.data
    from diffclass.training import train_model

    monkeypatch.setattr(diffclass.data, "load_dataset", lambda name, split, size=None: data)
    config = lambda steps: TrainConfig(steps=steps, batch_size=8, warmup_steps=1, checkpoint_every=2)  # noqa: E731
    train_model(tmp_path / "run", "toy", config(2))
    fitted = load_backbone(tmp_path / "run")
    fitted.info.timestep_range, fitted.info.temperature = (100, 300), 7.0
    fitted.save_pretrained(tmp_path / "run")
    train_model(tmp_path / "run", "toy", config(2), resume=True)  # nothing more to train: the fitting holds
    assert load_backbone(tmp_path / "run").info.temperature == 7.0
    train_model(tmp_path / "run", "toy", config(4), resume=True)
    more = load_backbone(tmp_path / "run")
    assert more.info.training["steps"] == 4 and more.info.timestep_range is None and more.info.temperature == 1.0
