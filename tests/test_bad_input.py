"""The bad-input corpus: each kind gets one clear line, a sensible exit code, and nothing written is lost.

(Odd image files - zero-byte, truncated, text named .jpg, 16-bit, CMYK, palette, RGBA, animated - are in
test_data.py; unknown names and misfit weights in test_cli.py; pickled weights in test_backbone.py.)
"""

import json
import re

import pytest
import torch
from PIL import Image

from diffclass.errors import DiffclassError
from tests.conftest import run_cli, tiny_backbone


def _model(tmp_path):
    backbone = tiny_backbone(classes=[str(d) for d in range(10)])
    backbone.info.dataset = "digits"
    backbone.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def _one_error_line(err):
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err
    return lines


def test_unicode_and_spaces_in_paths(monkeypatch, capsys, tmp_path):
    folder = tmp_path / "ünï cödé" / "my images"
    folder.mkdir(parents=True)
    Image.new("L", (20, 20), 200).save(folder / "naïve [1] ∂.png")
    code, out, err = run_cli(
        monkeypatch, capsys, "classify", folder / "naïve [1] ∂.png", "--model", _model(tmp_path), "--json"
    )
    assert code == 0, err
    assert json.loads(out)[0]["path"].endswith("naïve [1] ∂.png")


def test_a_folder_mixing_images_and_other_files(monkeypatch, capsys, tmp_path):
    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    Image.new("L", (9, 9)).save(folder / "a.png")
    Image.new("RGB", (9, 9)).save(folder / "sub" / "b.JPG")
    (folder / "notes.txt").write_text("hello")
    (folder / "data.csv").write_text("1,2")
    code, out, err = run_cli(monkeypatch, capsys, "classify", folder, "--model", _model(tmp_path), "--json")
    assert code == 0, err
    assert "skipped 2 file(s)" in err
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in json.loads(out)) == ["a.png", "b.JPG"]


def test_an_empty_folder(monkeypatch, capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, out, err = run_cli(monkeypatch, capsys, "classify", tmp_path / "empty", "--model", _model(tmp_path))
    assert code == 2 and _one_error_line(err) == [f"error: {tmp_path / 'empty'}: no images in this folder"]


def test_a_huge_image_is_refused_without_decoding_it(monkeypatch, capsys, tmp_path):
    Image.new("1", (20000, 20000)).save(tmp_path / "huge.png")
    code, out, err = run_cli(monkeypatch, capsys, "classify", tmp_path / "huge.png", "--model", _model(tmp_path))
    assert code == 2 and "20000x20000 is too large" in _one_error_line(err)[0]


def test_a_tree_that_does_not_match_the_model(monkeypatch, capsys, tmp_path):
    code, out, err = run_cli(
        monkeypatch, capsys, "evaluate", "--model", _model(tmp_path), "--tree", "cifar100", "--limit", 2
    )
    assert code == 2 and "tree: leaves must be classes 0..9" in _one_error_line(err)[0]


def test_nan_from_the_network_stops_the_run_and_keeps_earlier_records(monkeypatch, capsys, tmp_path):
    from diffclass.backbones import class_unet

    model = _model(tmp_path)
    calls = {"n": 0}
    original = class_unet.ClassConditionalUNet.predict_noise

    def sometimes_nan(self, x_t, t, cond):
        calls["n"] += 1
        eps = original(self, x_t, t, cond)
        return eps if calls["n"] <= 12 else torch.full_like(eps, float("nan"))

    monkeypatch.setattr(class_unet.ClassConditionalUNet, "predict_noise", sometimes_nan)
    args = ("evaluate", "--model", model, "--limit", 20, "--strategy", "exhaustive(n=2)", "--batch-size", 10)
    code, out, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "out")
    assert code == 2 and "NaN/Inf" in _one_error_line(err)[0]
    kept = (tmp_path / "out" / "records.jsonl").read_text().splitlines()
    assert len(kept) >= 1 and all(json.loads(line)["nfe"] == 20 for line in kept)
    monkeypatch.setattr(class_unet.ClassConditionalUNet, "predict_noise", original)
    code, out, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "out")
    assert code == 0, err
    lines = (tmp_path / "out" / "records.jsonl").read_text().splitlines()
    assert lines[: len(kept)] == kept and len({json.loads(line)["id"] for line in lines}) == 20


def _digit_folder(tmp_path):
    root = tmp_path / "digits folder"
    for digit in ("3", "7"):
        (root / digit).mkdir(parents=True)
        for k in range(2):
            Image.new("L", (8 + k, 8), 40 * k).save(root / digit / f"{k}.png")
    (root / "5").mkdir()  # a class folder with no images
    (root / "7" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return root


def test_folder_dataset_reports_empty_classes_and_bad_files(monkeypatch, capsys, tmp_path):
    root = _digit_folder(tmp_path)
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "evaluate",
        "--model",
        _model(tmp_path),
        "--dataset",
        f"folder:{root}",
        "--strategy",
        "exhaustive(n=2)",
        "--json",
        tmp_path / "s.json",
    )
    assert code == 0, err
    assert f"error: {root / '5'}: class folder has no images" in err
    assert "broken.png" in err and "skipped 1 unreadable image(s) of 5" in err
    assert json.loads((tmp_path / "s.json").read_text())["n_images"] == 4


def test_list_dataset_and_unknown_labels(monkeypatch, capsys, tmp_path):
    root = _digit_folder(tmp_path)
    (tmp_path / "list.csv").write_text(f"path,label\n{root / '3' / '0.png'},3\n{root / '7' / '1.png'},7\n")
    model = _model(tmp_path)
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "evaluate",
        "--model",
        model,
        "--dataset",
        f"list:{tmp_path / 'list.csv'}",
        "--strategy",
        "exhaustive(n=2)",
    )
    assert code == 0, err
    (root / "cat").mkdir()
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", "--model", model, "--dataset", f"folder:{root}")
    assert code == 2 and "label 'cat' is not a class of the model" in _one_error_line(err)[0]


def test_records_do_not_depend_on_the_batch_size(monkeypatch, capsys, tmp_path):
    model = _model(tmp_path)
    outs = []
    for batch in (1, 7, 64):
        args = ("evaluate", "--model", model, "--limit", 6, "--strategy", "adaptive(keep=3,1;n=2,5)")
        code, _, err = run_cli(monkeypatch, capsys, *args, "--batch-size", batch, "--out", tmp_path / f"b{batch}")
        assert code == 0, err
        rows = [json.loads(line) for line in (tmp_path / f"b{batch}" / "records.jsonl").read_text().splitlines()]
        outs.append([{k: v for k, v in row.items() if k != "seconds"} for row in rows])
    assert outs[0] == outs[1] == outs[2]


@pytest.mark.parametrize(
    "images, ids, message",
    [
        (torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8), None, "float tensor in [-1, 1], got uint8"),
        (torch.rand(2, 1, 8, 8) * 255, None, "must lie in [-1, 1]; these reach"),
        (torch.ones(2, 1, 8, 8, dtype=torch.bool), None, "got bool"),
        (torch.ones(2, 1, 8, 8, dtype=torch.complex64), None, "got complex64"),
        (torch.full((2, 1, 8, 8), float("nan")), None, "NaN or Inf"),
        (torch.zeros(2, 1, 8, 8), ["only-one"], "1 image ids for 2 images"),
        (torch.zeros(8, 8), None, "must be [batch, channels, height, width]"),
    ],
)
def test_the_python_api_refuses_what_it_cannot_classify(model_dir, images, ids, message):
    import diffclass
    from diffclass.didicm.classifier import DiDiCMClassifier

    with pytest.raises(DiffclassError) as caught:
        diffclass.load(model_dir).classify(images, "exhaustive(n=2)", ids)
    assert message in str(caught.value)
    didicm = DiDiCMClassifier.load("plain-glyphs")
    with pytest.raises(DiffclassError, match=re.escape(message)):
        didicm.classify(images[..., :1, :, :] if images.dim() == 4 else images, None, ids)


@pytest.mark.parametrize(
    "args, message",
    [
        (["didicm", "train", "--lr", "nan"], "--lr must be in (0, 10], got nan"),
        (["didicm", "train", "--mixup", "nan"], "--mixup must be in [0, 1000], got nan"),
        (["didicm", "train", "--mixup", "inf"], "--mixup must be in [0, 1000], got inf"),
        (["didicm", "train", "--cutmix", "-1"], "--cutmix must be in [0, 1000], got -1"),
        (["didicm", "train", "--data-fraction", "0"], "--data-fraction must be in (0, 1], got 0.0"),
        (["train", "--lr", "nan"], "--lr must be in (0, 10], got nan"),
        (["train", "--lr", "-1"], "--lr must be in (0, 10], got -1.0"),
        (["distill", "--model", "digits", "--lr", "nan"], "Invalid value for '--lr'"),
        (["calibrate", "--model", "digits", "--grid-size", "4", "--window", "8", "--no-save"], "is wider than the"),
    ],
)
def test_nonsense_numbers_are_refused_in_one_line(monkeypatch, capsys, tmp_path, args, message):
    extra = [] if args[0] == "calibrate" else ["--steps", "1", "--out", tmp_path / "m"]
    code, out, err = run_cli(monkeypatch, capsys, *args, *extra)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


DEEP = "[" * 100_000 + "]" * 100_000
HUGE = "1" * 5_000


@pytest.mark.parametrize(
    "text, message",
    [
        (DEEP, "nested too deeply"),
        ('{"temperature": ' + HUGE + "}", "not valid JSON"),
        (b'{"a": "\xff\xfe"}', "not UTF-8"),
        ("[1, 2]", "must hold a JSON object"),
    ],
)
def test_a_hostile_diffclass_json_is_one_line(monkeypatch, capsys, model_dir, text, message):
    path = model_dir / "diffclass.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", "--model", model_dir, "--limit", 1)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    "schedule, message",
    [
        ({"beta_schedule": "nope"}, "scheduler.beta_schedule must be one of linear"),
        ({"foo": 1}, "scheduler has unknown fields ['foo']"),
        ({"num_train_timesteps": "x"}, "scheduler.num_train_timesteps must be an integer in [2, 100000]"),
        ({"num_train_timesteps": 10**9}, "scheduler.num_train_timesteps must be an integer in [2, 100000]"),
        ({"beta_end": 2}, "scheduler.beta_end must be a number in (0, 1]"),
        ({"beta_start": 0.5, "beta_end": 0.02}, "beta_start must not exceed"),
        ({"clip_sample": "yes"}, "scheduler.clip_sample must be true or false"),
        ({"trained_betas": [0.1, 0.2]}, "unknown fields ['trained_betas']"),
        ([1], "scheduler must be an object"),
    ],
)
def test_a_bad_noise_schedule_is_one_line_before_anything_is_allocated(
    monkeypatch, capsys, model_dir, schedule, message
):
    path = model_dir / "diffclass.json"
    info = json.loads(path.read_text())
    info["scheduler"] = schedule
    path.write_text(json.dumps(info))
    code, _, err = run_cli(monkeypatch, capsys, "evaluate", "--model", model_dir, "--limit", 1)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_json_that_is_not_a_regular_file_is_refused_not_read(monkeypatch, capsys, tmp_path):
    import os

    os.mkfifo(tmp_path / "tree.json")  # reading it would block for ever
    code, out, err = run_cli(monkeypatch, capsys, "tree", "validate", tmp_path / "tree.json")
    assert code == 2 and "not a regular file" in err
    (tmp_path / "zero.json").symlink_to("/dev/zero")  # reading it would fill memory
    code, out, err = run_cli(monkeypatch, capsys, "tree", "validate", tmp_path / "zero.json")
    assert code == 2 and "not a regular file" in err


def test_records_that_are_not_files_are_refused_and_damaged_lines_are_redone(monkeypatch, capsys, model_dir, tmp_path):
    import os

    args = ["evaluate", "--model", model_dir, "--strategy", "exhaustive(n=2)", "--limit", 4]
    os.makedirs(tmp_path / "fifo")
    os.mkfifo(tmp_path / "fifo" / "records.jsonl")
    code, out, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "fifo")
    assert code == 2 and "is not a regular file" in err
    code, out, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "out")
    assert code == 0, err
    records = tmp_path / "out" / "records.jsonl"
    lines = records.read_text().splitlines()
    records.write_text("\n".join([lines[0], '{"id": ' + HUGE + "}", DEEP, *lines[1:3]]) + "\n")  # one image lost
    code, out, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "out")
    assert code == 0, err
    kept = [json.loads(line) for line in records.read_text().splitlines() if len(line) < 1000]
    assert len({r["id"] for r in kept if "run" in r}) == 4 and "redone" in err  # three kept, one redone


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(name_or_path=None), "the model must be str or Path or ModelRef, got NoneType"),
        (dict(name_or_path=123), "the model must be str or Path or ModelRef, got int"),
        (dict(tree=123), "tree must be str or LabelTree or None, got int"),
        (dict(batch_size="8"), "batch_size must be int, got str"),
        (dict(batch_size=True), "batch_size must be int, got bool"),
        (dict(batch_size=0), r"batch_size must be in \[1, 1e\+06\], got 0"),
        (dict(seed="x"), "seed must be int, got str"),
        (dict(device="tpu"), "unknown device 'tpu'"),
        (dict(device="cuda:0"), "not available"),
        (dict(class_names=7), "class_names must be str or list or tuple or None"),
        (dict(loss=1), "loss must be str or None"),
    ],
)
def test_the_python_load_refuses_wrong_arguments_in_one_line(model_dir, arguments, message):
    import diffclass

    if arguments.get("device", "").startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    arguments = {"name_or_path": model_dir, **arguments}
    with pytest.raises(DiffclassError, match=message) as caught:
        diffclass.load(arguments.pop("name_or_path"), **arguments)
    assert "\n" not in str(caught.value)


def test_every_command_refuses_a_device_torch_cannot_use_before_any_work(monkeypatch, capsys):
    import typer.main

    from diffclass.cli.app import app

    def commands(group, prefix=()):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from commands(command, (*prefix, name))
            elif any(p.name == "device" for p in command.params):
                yield (*prefix, name)

    found = list(commands(typer.main.get_command(app)))
    assert len(found) >= 8, found  # evaluate, classify, bench, sample, train, distill, serve, attack, …
    for argv in found:
        code, _, err = run_cli(monkeypatch, capsys, *argv, "--device", "tpu")
        lines = _one_error_line(err)
        assert code == 2 and len(lines) == 1 and "unknown device 'tpu'" in lines[0], (argv, err)


@pytest.mark.parametrize("reader", ["read_classes", "read_prompts"])
def test_class_lists_and_prompt_files_are_read_with_bounds(tmp_path, reader):
    import os

    from diffclass.backbones import prompts

    read = getattr(prompts, reader)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"caf\xe9,a photo\n")
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)
    for path, message in ((deep, "nested too deeply"), (latin, "not UTF-8"), (fifo, "not a regular file")):
        with pytest.raises(DiffclassError, match=message):
            read(path)
    odd = tmp_path / "odd.json"
    odd.write_text('{"cat": [1, 2]}')
    with pytest.raises(DiffclassError, match="expected"):
        read(odd)


@pytest.mark.parametrize("kind, part", [("stable_diffusion3", "text_encoder_2"), ("dit", "vae")])
def test_a_pipeline_folder_missing_a_part_names_the_part(monkeypatch, capsys, tmp_path, kind, part):
    import shutil

    from diffclass.backbones import tiny

    save = {"stable_diffusion3": tiny.save_tiny_stable_diffusion3, "dit": tiny.save_tiny_dit}[kind]
    folder = save(tmp_path / kind)
    shutil.rmtree(folder / part)
    code, _, err = run_cli(monkeypatch, capsys, "evaluate", "--model", folder, "--limit", 1)
    lines = _one_error_line(err)
    assert code == 2 and len(lines) == 1 and f"looks like a {kind} pipeline" in lines[0] and f"no {part}/" in lines[0]
