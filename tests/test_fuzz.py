"""A generated corpus of bad inputs: each must end in one line on stderr and exit 2, or, where the input is odd
but valid (each such case is listed), in a correct result; never a traceback. Variants are generated per input
kind (every field of a model's files, every option of every registered strategy, image files damaged in several
ways, tree files), so inputs that nobody listed are tried too."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from diffclass.errors import DiffclassError
from tests.conftest import run_cli

BAD_VALUES = [None, "x", -1, 0, 10**9, [], {}, 1.5, True, "NaN"]


def _expect(code, err, legal: bool):
    """A legal input succeeds (exit 0); anything else is exit 2 with exactly one error line, never a traceback."""
    assert "Traceback" not in err
    if legal:
        assert code == 0, err
    else:
        errors = [line for line in err.strip().splitlines() if line.startswith("error:")]
        assert code == 2 and len(errors) == 1, err


def _edit_json(path, key, value):
    data = json.loads(path.read_text())
    data[key] = float("nan") if value == "NaN" else value
    path.write_text(json.dumps(data))


INFO_FIELDS = [
    "class_names",
    "image_size",
    "channels",
    "temperature",
    "timestep_range",
    "value_range",
    "node_embeddings",
    "scheduler",
    "dataset",
    "tree",
    "text_tokens",
]


# the only values of BAD_VALUES that are legal where they are put: everything else must be refused in one line
LEGAL_INFO = {
    ("temperature", "1.5"),
    ("temperature", repr(10**9)),
    ("timestep_range", "None"),
    ("node_embeddings", "{}"),  # a model without a tree
    ("scheduler", "{}"),  # the default schedule
    ("dataset", "None"),  # a model that does not name its data, evaluated on a named one
    ("dataset", "'x'"),  # or names data this machine lacks (a folder since moved): --dataset decides
    ("tree", "None"),
    ("text_tokens", "None"),
}


@pytest.mark.parametrize("field", INFO_FIELDS)
def test_every_field_of_diffclass_json_with_bad_values(monkeypatch, capsys, model_dir, field):
    original = (model_dir / "diffclass.json").read_text()
    for value in BAD_VALUES:
        (model_dir / "diffclass.json").write_text(original)
        _edit_json(model_dir / "diffclass.json", field, value)
        code, out, err = run_cli(
            monkeypatch,
            capsys,
            "evaluate",
            "--model",
            model_dir,
            "--limit",
            2,
            "--strategy",
            "exhaustive(n=1)",
            "--dataset",
            "digits",
        )
        _expect(code, err, legal=(field, repr(value)) in LEGAL_INFO)
        if code == 0:  # accepted: then the result must be a real one
            assert "digits" in out


CONFIG_FIELDS = [
    "layers_per_block",
    "sample_size",
    "block_out_channels",
    "norm_num_groups",
    "num_class_embeds",
    "in_channels",
    "out_channels",
    "down_block_types",
]


@pytest.mark.parametrize("field", CONFIG_FIELDS)
def test_every_size_of_config_json_with_bad_values(monkeypatch, capsys, model_dir, field):
    original = (model_dir / "config.json").read_text()
    for value in [*BAD_VALUES, 100_000, [100_000] * 3]:
        (model_dir / "config.json").write_text(original)
        _edit_json(model_dir / "config.json", field, value)
        code, out, err = run_cli(
            monkeypatch, capsys, "evaluate", "--model", model_dir, "--limit", 1, "--strategy", "exhaustive(n=1)"
        )
        _expect(code, err, legal=False)  # none of these sizes builds the saved network


def _damage_bytes(weights, damage: str) -> bool:
    """Damage a weights file in one of the ways every weights role is tried with; False if `damage` is another."""
    import torch

    data = weights.read_bytes()
    if damage == "empty":
        weights.write_bytes(b"")
    elif damage == "truncated":
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "random":
        weights.write_bytes(np.random.default_rng(0).bytes(4096))
    elif damage == "pickle":
        torch.save({"weight": torch.zeros(1)}, weights)
    else:
        return False
    return True


@pytest.mark.parametrize("damage", ["empty", "truncated", "random", "pickle", "header-only", "directory"])
def test_damaged_weight_files(monkeypatch, capsys, model_dir, damage):
    weights = model_dir / "diffusion_pytorch_model.safetensors"
    data = weights.read_bytes()
    if damage == "header-only":
        weights.write_bytes(data[: 8 + int.from_bytes(data[:8], "little")])
    elif damage == "directory":
        weights.unlink()
        weights.mkdir()
    else:
        assert _damage_bytes(weights, damage)
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", "--model", model_dir, "--limit", 1)
    _expect(code, err, legal=False)


def _images(folder):
    """Image files damaged or odd in many ways: (name, writer)."""
    rng = np.random.default_rng(0)
    good = folder / "good.png"
    Image.new("L", (12, 12), 128).save(good)
    cases = {
        "empty.png": lambda p: p.write_bytes(b""),
        "text.png": lambda p: p.write_text("not an image"),
        "truncated.png": lambda p: p.write_bytes(good.read_bytes()[:40]),
        "random.jpg": lambda p: p.write_bytes(rng.bytes(2000)),
        "one_pixel.png": lambda p: Image.new("RGB", (1, 1), (1, 2, 3)).save(p),
        "wide.png": lambda p: Image.new("L", (400, 3), 9).save(p),
        "sixteen_bit.png": lambda p: Image.fromarray(rng.integers(0, 65535, (20, 20), dtype=np.uint16)).save(p),
        "cmyk.jpg": lambda p: Image.new("CMYK", (20, 20), (10, 20, 30, 0)).save(p),
        "palette_alpha.png": lambda p: Image.new("RGBA", (20, 20), (0, 0, 0, 0)).convert("P").save(p),
        "nan.tiff": lambda p: Image.fromarray(np.full((8, 8), np.nan, dtype=np.float32)).save(p),
        "inf.tiff": lambda p: Image.fromarray(np.full((8, 8), np.inf, dtype=np.float32)).save(p),
        "float.tiff": lambda p: Image.fromarray(rng.random((8, 8), dtype=np.float32)).save(p),
        "animated.gif": lambda p: Image.new("L", (8, 8)).save(p, save_all=True, append_images=[Image.new("L", (8, 8))]),
        "folder.png": lambda p: p.mkdir(),
    }
    for name, write in cases.items():
        write(folder / name)
    return list(cases)


# odd but real images, classified after conversion; every other case is refused in one line
VALID_IMAGES = {"one_pixel.png", "wide.png", "sixteen_bit.png", "cmyk.jpg", "palette_alpha.png", "float.tiff"}
VALID_IMAGES |= {"animated.gif"}  # its first frame


def test_odd_and_damaged_images_are_classified_or_refused_one_line_each(monkeypatch, capsys, model_dir, tmp_path):
    names = _images(tmp_path)
    for name in names:
        code, out, err = run_cli(
            monkeypatch,
            capsys,
            "classify",
            tmp_path / name,
            "--model",
            model_dir,
            "--strategy",
            "exhaustive(n=1)",
            "--json",
        )
        _expect(code, err, legal=name in VALID_IMAGES)
        if code == 0:
            row = json.loads(out)[0]
            assert all(math.isfinite(t["probability"]) for t in row["top"]), name
            assert abs(sum(t["probability"] for t in row["top"])) <= 1.0001
            assert not name.startswith(("nan", "inf")), f"{name} was classified"


STRANGE_VALUES = ["", "nan", "inf", "-inf", "-1", "0", "1e99", "x", "1,2,3", "()", "2;3", "0.5,0.5", "99999999999"]


def test_every_option_of_every_registered_strategy_with_strange_values(classifier):
    from diffclass.strategies import STRATEGIES
    from tests.conftest import five_class_tree

    classifier.use_tree(five_class_tree())
    tried = 0
    for entry in STRATEGIES:
        for option in (*entry.options, type("T", (), {"name": "t"})):
            for value in STRANGE_VALUES:
                tried += 1
                try:
                    strategy = classifier.strategy(f"{entry.name}({option.name}={value})")
                except DiffclassError as exc:
                    assert "\n" not in str(exc)
                    continue
                assert strategy.name  # accepted: it is a real strategy that names itself
    assert tried > 300


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        "null",
        '{"nodes": 5}',
        '{"nodes": [{"id": "r"}]}',
        '{"nodes": [{"id": "r", "children": ["r"]}]}',
        '{"nodes": [{"id": "r", "children": ["a"]}, {"id": "a", "class_index": "0"}]}',
        '{"nodes": [{"id": "r", "children": ["a", "a"]}, {"id": "a", "class_index": 0}]}',
        '{"nodes": [{"id": "r", "children": ["a"]}, {"id": "a", "class_index": -1}]}',
        '{"nodes": [{"id": "r", "children": ["a", "b"]}, {"id": "a", "class_index": 0}, {"id": "b", "class_index": 0}]}',  # noqa: E501
        '{"nodes": [{"id": "r", "children": ["a"]}, {"id": "a", "children": []}]}',
        '{"nodes": [{"id": 3, "children": []}]}',
    ],
)
def test_malformed_tree_files(monkeypatch, capsys, tmp_path, text):
    (tmp_path / "t.json").write_text(text)
    for command in (["tree", "validate", tmp_path / "t.json"], ["tree", "show", tmp_path / "t.json"]):
        code, out, err = run_cli(monkeypatch, capsys, *command)
        _expect(code, err, legal=False)


def _commands():
    """Every (command path, click command) of the CLI, groups walked."""
    import typer

    from diffclass.cli import app

    def walk(command, path):
        children = getattr(command, "commands", {})
        if not children:
            yield path, command
        for name, child in children.items():
            yield from walk(child, [*path, name])

    return list(walk(typer.main.get_command(app), []))


def _out_of_range_cases():
    """For every command, each bounded number option given a value below its minimum, and an unknown option."""
    cases = []
    for path, command in _commands():
        cases.append((path, ["--no-such-option"], "No such option"))
        for param in command.params:
            low = getattr(param, "min", None)
            low = getattr(getattr(param, "type", None), "min", None) if low is None else low  # older typer
            if low is not None and param.opts[0].startswith("--"):
                cases.append((path, [param.opts[0], str(low - 1)], "Invalid value"))
    return cases


@pytest.mark.parametrize(
    "path, args, message", _out_of_range_cases(), ids=lambda v: " ".join(map(str, v)) if isinstance(v, list) else None
)
def test_every_usage_error_of_every_command_is_one_line_and_exit_2(monkeypatch, capsys, path, args, message):
    code, out, err = run_cli(monkeypatch, capsys, *path, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and message in lines[0] and "--help" in lines[0], err
    assert "╭" not in err and "Traceback" not in err


DIDICM_FIELDS = [
    "class_names",
    "image_size",
    "network",
    "network.num_classes",
    "network.in_channels",
    "network.width",
    "network.blocks_per_stage",
    "network.embed_dim",
    "network.conditioned",
    "network.unknown",
    "training",
]


@pytest.fixture
def didicm_dir(tmp_path):
    import shutil

    from diffclass.hub import resolve_model_folder

    return shutil.copytree(resolve_model_folder("plain-glyphs"), tmp_path / "plain")


@pytest.mark.parametrize("field", DIDICM_FIELDS)
def test_every_field_of_didicm_json_with_bad_values(monkeypatch, capsys, didicm_dir, field):
    path = didicm_dir / "didicm.json"
    original = path.read_text()
    for value in [*BAD_VALUES, [100_000] * 6, 2**40]:
        data = json.loads(original)
        target, key = (data["network"], field.split(".")[1]) if "." in field else (data, field)
        target[key] = float("nan") if value == "NaN" else value
        path.write_text(json.dumps(data))
        code, out, err = run_cli(monkeypatch, capsys, "evaluate", "--model", didicm_dir, "--limit", 2)
        _expect(code, err, legal=(field, repr(value)) == ("training", "{}"))  # no record: legal
        if code == 0:
            assert "glyphs" in out


@pytest.mark.parametrize("damage", ["empty", "truncated", "random", "pickle", "missing", "extra tensor"])
def test_damaged_didicm_weights_are_refused_in_one_line(monkeypatch, capsys, didicm_dir, damage):
    from safetensors.torch import load_file, save_file

    weights = didicm_dir / "model.safetensors"
    if damage == "missing":
        tensors = load_file(str(weights))
        tensors.pop(sorted(tensors)[0])
        save_file(tensors, str(weights))
    elif damage == "extra tensor":
        import torch

        save_file({**load_file(str(weights)), "stowaway": torch.zeros(2)}, str(weights))
    else:
        assert _damage_bytes(weights, damage)
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", "--model", didicm_dir, "--limit", 2)
    _expect(code, err, legal=False)


INPUT_PATHS = {"model", "images", "image", "path"}  # path parameters that are read, never written


def _output_options():
    """Every option of every command that names a file or folder to write, with which of the two it wants."""
    return [
        (path, param.opts[0], param.callback.output)
        for path, command in _commands()
        for param in command.params
        if hasattr(param.callback, "output")
    ]


def _names_a_path(param) -> bool:
    if hasattr(param, "type"):  # click's parameters
        return type(param.type).__name__ == "Path"
    return "Path" in str(param.type_descriptor.annotation)  # typer's own bundled click


def test_every_path_parameter_is_an_input_or_a_checked_output():
    for path, command in _commands():
        for param in command.params:
            if _names_a_path(param) and param.name not in INPUT_PATHS:
                assert hasattr(param.callback, "output"), f"{' '.join(path)} {param.opts[0]} writes unchecked"
    assert {kind for *_, kind in _output_options()} == {"file", "folder"}


@pytest.mark.parametrize(
    "path, option, kind", _output_options(), ids=lambda v: " ".join(v) if isinstance(v, list) else None
)
def test_every_output_option_refuses_an_unwritable_path_before_any_work(
    monkeypatch, capsys, tmp_path, path, option, kind
):
    a_file, a_folder = tmp_path / "a-file", tmp_path / "a-folder"
    a_file.write_text("x")
    a_folder.mkdir()
    for value in (a_file / "inside", a_file / "deeper" / "x", a_file if kind == "folder" else a_folder):
        code, _, err = run_cli(monkeypatch, capsys, *path, option, value)
        _expect(code, err, legal=False)
        assert option in err and ("is a file" in err or "is a folder" in err), err
    assert a_file.read_text() == "x" and list(a_folder.iterdir()) == [] and len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize(
    "path, option, kind", _output_options(), ids=lambda v: " ".join(v) if isinstance(v, list) else None
)
def test_no_output_option_writes_into_the_installed_package(monkeypatch, capsys, path, option, kind):
    from diffclass.files import PACKAGE

    before = {p: p.stat().st_mtime_ns for p in (PACKAGE / "assets").rglob("*") if p.is_file()}
    inside = PACKAGE / "assets" / ("glyphs" if kind == "folder" else "trees/glyphs.json")
    code, _, err = run_cli(monkeypatch, capsys, *path, option, inside)
    _expect(code, err, legal=False)
    assert "inside the installed diffclass package" in err, err
    assert before == {p: p.stat().st_mtime_ns for p in (PACKAGE / "assets").rglob("*") if p.is_file()}


def _input_output_pairs():
    """Every (command, option it reads a path from, option it writes to) of the CLI."""
    from diffclass.cli.app import read_paths

    return [
        (path, reads, writes)
        for path, command in _commands()
        for reads in command.params
        if getattr(reads.callback, "__wrapped__", None) is read_paths
        for writes in command.params
        if hasattr(writes.callback, "output")
    ]


def test_every_command_that_reads_a_path_declares_it():
    commands = {" ".join(path) for path, *_ in _input_output_pairs()}
    assert commands >= {"prune", "distill", "evaluate", "bench", "classify", "explain", "fit", "train", "calibrate"}
    assert commands >= {"tune", "robustness", "attack", "tree induce", "tree check", "didicm train", "sample"}


@pytest.mark.parametrize(
    "path, reads, writes",
    _input_output_pairs(),
    ids=lambda v: " ".join(v) if isinstance(v, list) else getattr(v, "name", None),
)
def test_no_output_is_written_over_or_inside_what_the_run_reads(monkeypatch, capsys, tmp_path, path, reads, writes):
    """An output equal to an input, or inside an input folder (a model, an image folder, a dataset) is refused
    while the command line is parsed, whichever of the two options comes first; the input is left as it was."""
    folder, image = tmp_path / "source", tmp_path / "image.png"
    folder.mkdir()
    (folder / "kept.txt").write_text("x")
    image.write_bytes(b"not read")
    source = image if reads.name == "image" else folder
    spec = f"folder:{source}" if reads.name in ("dataset", "images_from") else str(source)
    target = source if writes.callback.output == "folder" or source == image else folder / "out.json"
    given = [spec] if not reads.opts[0].startswith("-") else [reads.opts[0], spec]
    for order in (given + [writes.opts[0], target], [writes.opts[0], target] + given):
        code, _, err = run_cli(monkeypatch, capsys, *path, *order)
        _expect(code, err, legal=False)
        assert "or inside it; write elsewhere" in err, err
    assert [p.name for p in folder.iterdir()] == ["kept.txt"] and image.read_bytes() == b"not read"
