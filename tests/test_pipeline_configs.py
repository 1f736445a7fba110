"""A hub pipeline folder's own JSON (model_index.json, each part's config, the scheduler's, the tokenizer's) is read
with bounds and checked before diffusers or transformers use it: every damaged file or field is one line, exit 2.

The corpus is generated: every JSON file of a tiny Stable Diffusion and a tiny DiT pipeline x five kinds of
damage, plus fields with the wrong type or range and missing parts."""

import json
import shutil

import pytest
from PIL import Image

from diffclass.backbones.tiny import save_tiny_dit, save_tiny_stable_diffusion
from tests.conftest import run_cli

DAMAGE = {
    "nested 100,000 deep": lambda text: "[" * 100_000 + "]" * 100_000,
    "a 5,000-digit integer": lambda text: text.replace("{", '{"x": ' + "1" * 5000 + ",", 1),
    "not UTF-8": lambda text: text.encode()[:-1] + b', "\xe9": 1}',
    "a list": lambda text: "[1, 2]",
    "not JSON": lambda text: "{nope",
}
FILES = {
    "sd": [
        "model_index.json",
        "unet/config.json",
        "vae/config.json",
        "text_encoder/config.json",
        "scheduler/scheduler_config.json",
        "tokenizer/tokenizer_config.json",
        "tokenizer/tokenizer.json",
        "tokenizer/vocab.json",
    ],
    "dit": ["model_index.json", "transformer/config.json", "vae/config.json", "scheduler/scheduler_config.json"],
}
FIELDS = [  # (pipeline, file, field, value, what the line says)
    ("sd", "scheduler/scheduler_config.json", "beta_schedule", "nope", "beta_schedule must be one of"),
    ("sd", "scheduler/scheduler_config.json", "num_train_timesteps", 10**9, "num_train_timesteps must be an integer"),
    ("sd", "scheduler/scheduler_config.json", "num_train_timesteps", "x", "num_train_timesteps must be an integer"),
    ("sd", "scheduler/scheduler_config.json", "beta_end", 2, "beta_end must be a number in (0, 1]"),
    ("sd", "scheduler/scheduler_config.json", "no_such_field", 1, "unknown fields ['no_such_field']"),
    ("dit", "scheduler/scheduler_config.json", "clip_sample", "yes", "clip_sample must be true or false"),
    ("sd", "unet/config.json", "norm_eps", "x", "norm_eps = 'x' must be a number"),
    ("sd", "unet/config.json", "layers_per_block", 1.5, "layers_per_block = 1.5 must be an integer"),
    ("sd", "text_encoder/config.json", "hidden_size", "x", "hidden_size"),
    ("dit", "transformer/config.json", "num_embeds_ada_norm", 7, "the weights do not fit the config"),
    ("dit", "vae/config.json", "block_out_channels", "wide", "block_out_channels = 'wide' must be a list"),
]


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipelines")
    save_tiny_stable_diffusion(root / "sd")
    save_tiny_dit(root / "dit")
    for name in ("sd", "dit"):
        (root / name / "model_index.json").write_text(json.dumps({"_class_name": "Pipeline"}))
    Image.new("RGB", (16, 16), (200, 30, 30)).save(root / "red.png")
    return root


def _classify(monkeypatch, capsys, pipelines, folder):
    code, _, err = run_cli(
        monkeypatch, capsys, "classify", pipelines / "red.png", "--model", folder, "--classes", "cifar10"
    )
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and code == 2 and len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


def _copy(pipelines, tmp_path, name):
    folder = tmp_path / name
    shutil.copytree(pipelines / name, folder)
    return folder


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("name, file", [(name, file) for name, files in FILES.items() for file in files])
def test_every_json_file_of_a_pipeline_is_read_with_bounds(
    monkeypatch, capsys, pipelines, tmp_path, name, file, damage
):
    folder = _copy(pipelines, tmp_path, name)
    path = folder / file
    damaged = DAMAGE[damage](path.read_text())
    path.write_bytes(damaged if isinstance(damaged, bytes) else damaged.encode())
    assert file in _classify(monkeypatch, capsys, pipelines, folder)


@pytest.mark.parametrize("name, file, field, value, message", FIELDS)
def test_every_checked_field_of_a_pipeline_is_one_line(
    monkeypatch, capsys, pipelines, tmp_path, name, file, field, value, message
):
    folder = _copy(pipelines, tmp_path, name)
    config = json.loads((folder / file).read_text())
    (folder / file).write_text(json.dumps({**config, field: value}))
    assert message in _classify(monkeypatch, capsys, pipelines, folder)


@pytest.mark.parametrize("part", ["tokenizer", "scheduler"])
def test_a_missing_part_is_named(monkeypatch, capsys, pipelines, tmp_path, part):
    folder = _copy(pipelines, tmp_path, "sd")
    shutil.rmtree(folder / part)
    assert f"{part}/" in _classify(monkeypatch, capsys, pipelines, folder)


def test_the_intact_pipelines_still_classify(monkeypatch, capsys, pipelines):
    for name in FILES:
        code, out, err = run_cli(
            monkeypatch, capsys, "classify", pipelines / "red.png", "--model", pipelines / name, "--classes", "cifar10"
        )
        assert code == 0 and "red.png" in out, err
