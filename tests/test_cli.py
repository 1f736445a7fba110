import json

import pytest
import torch
from PIL import Image

from diffclass.cli import main
from tests.conftest import run_cli, tiny_backbone


@pytest.fixture
def picture(tmp_path):
    Image.new("RGB", (50, 30), (200, 10, 10)).save(tmp_path / "pic.png")
    return tmp_path / "pic.png"


def test_evaluate_writes_the_summary_json(monkeypatch, capsys, model_dir, tmp_path):
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "evaluate",
        "--model",
        model_dir,
        "--limit",
        6,
        "--strategy",
        "exhaustive(n=2)",
        "--json",
        tmp_path / "out" / "summary.json",
    )
    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_images"] == 6 and summary["nfe_per_image"] == 20 and summary["dataset"] == "digits"
    assert summary["strategy"] == "exhaustive(n=2)" and 0 <= summary["top1"] <= summary["top5"] <= 1
    assert {"model", "seconds_per_image"} <= set(summary)


def test_classify_prints_json_with_conversions(monkeypatch, capsys, model_dir, picture):
    code, out, err = run_cli(monkeypatch, capsys, "classify", picture, "--model", model_dir, "--json", "--top-k", 2)
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["path"] == str(picture) and len(row["top"]) == 2
    assert row["top"][0]["probability"] >= row["top"][1]["probability"]
    assert row["converted"][:3] == [
        "colour made grey",
        "padded 50x30 to a square with its border colour",
        "resized to 8x8",
    ]
    assert "one flat colour" in row["converted"][3]  # the picture is one red
    code, out, err = run_cli(monkeypatch, capsys, "classify", picture, "--model", model_dir, "--json", "--stretch")
    assert code == 0 and "stretched 50x30 to a square" in json.loads(out)[0]["converted"]


def test_sample_writes_a_png(monkeypatch, capsys, model_dir, tmp_path):
    code, _, err = run_cli(
        monkeypatch, capsys, "sample", "--model", model_dir, "--per-class", 2, "--steps", 3, "--out", tmp_path / "s.png"
    )
    assert code == 0, err
    assert Image.open(tmp_path / "s.png").format == "PNG"


def _corrupt(tmp_path):
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return tmp_path / "corrupt.png"


def _text(tmp_path):
    (tmp_path / "notes.jpg").write_text("shopping list")
    return tmp_path / "notes.jpg"


def _misfit(tmp_path):
    tiny_backbone().save_pretrained(tmp_path / "small")
    big = tiny_backbone(classes=[str(d) for d in range(10)])
    big.save_pretrained(tmp_path / "misfit")
    (tmp_path / "small" / "diffusion_pytorch_model.safetensors").replace(
        tmp_path / "misfit" / "diffusion_pytorch_model.safetensors"
    )
    return tmp_path / "misfit"


@pytest.mark.parametrize(
    "args, message",
    [
        (lambda p, m: ["classify", p / "nope.png", "--model", m], "no such file"),
        (lambda p, m: ["classify", _corrupt(p), "--model", m], "corrupt|not an image"),
        (lambda p, m: ["classify", _text(p), "--model", m], "not an image"),
        (lambda p, m: ["evaluate", "--model", m, "--dataset", "imagenet-9000"], "unknown dataset"),
        (lambda p, m: ["evaluate", "--model", m, "--strategy", "telepathy"], "unknown strategy"),
        (lambda p, m: ["evaluate", "--model", "no-such-model"], "unknown model"),
        (lambda p, m: ["evaluate", "--model", m, "--loss", "l7"], "unknown loss"),
        (
            lambda p, m: ["evaluate", "--model", _misfit(p)],
            "the weights do not fit the config: tensor class_embedding.weight",
        ),
        (lambda p, m: ["evaluate", "--model", m, "--limit", 1, "--json", "/proc/forbidden/x.json"], "cannot write"),
    ],
)
def test_bad_input_gets_one_line_and_exit_code_2(monkeypatch, capsys, tmp_path, model_dir, args, message):
    code, out, err = run_cli(monkeypatch, capsys, *args(tmp_path, model_dir))
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err + out
    import re

    assert re.search(message, lines[0]), lines


def test_one_bad_file_does_not_lose_the_others(monkeypatch, capsys, model_dir, picture, tmp_path):
    code, out, err = run_cli(
        monkeypatch, capsys, "classify", picture, tmp_path / "gone.png", "--model", model_dir, "--json"
    )
    assert code == 2 and "gone.png: no such file" in err
    assert [row["path"] for row in json.loads(out)] == [str(picture)]


def test_python_api_round_trip(model_dir, picture):
    import diffclass

    clf = diffclass.load(str(model_dir))
    (decision,) = clf.classify([picture], strategy="exhaustive(n=3)")
    assert decision.nfe == 30 and decision.label == decision.ranking[0]
    assert abs(sum(decision.probabilities.values()) - 1) < 1e-9
    tensor_decision = clf.classify(clf.prepare([picture]), strategy="exhaustive(n=3)")[0]
    assert tensor_decision.scores == decision.scores
    assert torch.is_tensor(clf.prepare([Image.open(picture)]))


def test_tree_show_and_validate(monkeypatch, capsys, tmp_path):
    code, out, err = run_cli(monkeypatch, capsys, "tree", "show", "imagenet", "--depth", 1)
    assert code == 0 and "1000 classes" in out and "depth 16" in out.replace("\n", " ")
    (tmp_path / "t.json").write_text('{"nodes": [{"id": "r", "children": ["a"]}, {"id": "a", "class_index": 0}]}')
    code, out, _ = run_cli(monkeypatch, capsys, "tree", "validate", tmp_path / "t.json")
    assert code == 0 and "valid: 2 nodes" in out
    code, _, err = run_cli(monkeypatch, capsys, "tree", "validate", tmp_path / "t.json", "--classes", 2)
    assert code == 2 and "missing [1]" in err


def test_bench_prints_ratios_and_writes_json_and_plot(monkeypatch, capsys, model_dir, tmp_path):
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "bench",
        "--model",
        model_dir,
        "--limit",
        3,
        "-s",
        "exhaustive(n=4)",
        "-s",
        "adaptive(keep=2,1;n=2,4)",
        "-s",
        "beam(t_s=2)",
        "-s",
        "hdc",
        "--json",
        tmp_path / "bench.json",
        "--plot",
        tmp_path / "pareto.png",
    )
    assert code == 0, err
    assert "skipping hdc" in err and "E* (best exhaustive top-1)" in out and "NFE/exha" in out
    runs = json.loads((tmp_path / "bench.json").read_text())
    assert [r["strategy"] for r in runs] == ["exhaustive(n=4)", "adaptive(keep=2,1;n=2,4)", runs[2]["strategy"]]
    assert runs[0]["options"] == {"n": "4"} and runs[0]["nfe_per_image"] == 40
    assert runs[2]["options"]["t_s"] == "2"
    assert Image.open(tmp_path / "pareto.png").format == "PNG"


def test_bench_keeps_finished_runs_and_resumes_from_its_records(monkeypatch, capsys, model_dir, tmp_path):
    from diffclass.classifier import Classifier
    from diffclass.errors import DiffclassError

    args = [
        "bench",
        "--model",
        model_dir,
        "--limit",
        3,
        "-s",
        "exhaustive(n=2)",
        "-s",
        "adaptive(keep=2,1;n=1,2)",
        "--out",
        tmp_path / "runs",
        "--json",
        tmp_path / "b.json",
    ]
    real, calls = Classifier.classify, []

    def failing_adaptive(self, images, strategy="adaptive", image_ids=None):
        if self.strategy(strategy).kind == "adaptive" and len(images) > 1:  # in its run, not the one-image estimate
            raise DiffclassError("interrupted")
        return real(self, images, strategy, image_ids)

    monkeypatch.setattr(Classifier, "classify", failing_adaptive)
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and "interrupted" in err
    (first,) = json.loads((tmp_path / "b.json").read_text())  # the finished run was written before the failure
    assert first["strategy"] == "exhaustive(n=2)" and first["n_images"] == 3

    def counting(self, images, strategy="adaptive", image_ids=None):
        calls.append((self.strategy(strategy).kind, len(images)))
        return real(self, images, strategy, image_ids)

    def interrupted(self, images, strategy="adaptive", image_ids=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(Classifier, "classify", interrupted)
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 130 and "Traceback" not in err  # Ctrl-C: no traceback, and the finished run stays

    monkeypatch.setattr(Classifier, "classify", counting)
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    # the untimed warm-up and the one-image cost estimate only: the finished run's records are reused
    assert [n for kind, n in calls if kind == "exhaustive"] == [1, 1]
    assert sum(n for kind, n in calls if kind == "adaptive") == 3 + 1
    runs = json.loads((tmp_path / "b.json").read_text())
    assert [r["strategy"] for r in runs] == ["exhaustive(n=2)", "adaptive(keep=2,1;n=1,2)"] and runs[0] == first


def test_a_strategy_with_its_own_timestep_range_runs_on_that_grid(model_dir):
    import diffclass

    info = json.loads((model_dir / "diffclass.json").read_text())
    (model_dir / "diffclass.json").write_text(json.dumps({**info, "timestep_range": [100, 300]}))
    windowed = diffclass.load(str(model_dir))
    full = diffclass.load(str(model_dir), timesteps="0-999")
    assert full.scorer.grid == diffclass.TimestepGrid(0, 999)
    images = torch.rand(2, 1, 16, 16) * 2 - 1
    own = windowed.classify(images, "exhaustive(n=4;t=0-999)", ["a", "b"])
    assert [d.scores for d in own] == [d.scores for d in full.classify(images, "exhaustive(n=4)", ["a", "b"])]
    assert [d.scores for d in own] != [d.scores for d in windowed.classify(images, "exhaustive(n=4)", ["a", "b"])]
    assert windowed.strategy("beam(b=2;t=0-999)").name.endswith(";t=0-999)")
    for spec, message in [("exhaustive(t=0-5000)", "past the model's last timestep 999"), ("adaptive(t=x)", "MIN-MAX")]:
        with pytest.raises(diffclass.DiffclassError, match=message):
            windowed.classify(images, spec)


def test_bench_original_grid_reports_baselines_on_both_grids(monkeypatch, capsys, model_dir, tmp_path):
    info = json.loads((model_dir / "diffclass.json").read_text())
    (model_dir / "diffclass.json").write_text(json.dumps({**info, "timestep_range": [100, 300]}))
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "bench",
        "--model",
        model_dir,
        "--limit",
        2,
        "--original-grid",
        "-s",
        "exhaustive(n=2)",
        "-s",
        "adaptive(keep=2,1;n=1,2)",
        "-s",
        "beam(t_s=2)",
        "--json",
        tmp_path / "b.json",
    )
    assert code == 0, err
    runs = [r["strategy"] for r in json.loads((tmp_path / "b.json").read_text())]
    assert runs[:2] == ["exhaustive(n=2;t=0-999)", "adaptive(keep=2,1;n=1,2;t=0-999)"]
    assert runs[2:4] == ["exhaustive(n=2)", "adaptive(keep=2,1;n=1,2)"] and len(runs) == 5
    text = out.replace("\n", " ")
    assert "on timesteps 0-999: E*" in text and "on the model's timesteps: E*" in text


def test_calibrate_stores_a_window_that_later_runs_use(monkeypatch, capsys, model_dir, tmp_path):
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "calibrate",
        "--model",
        model_dir,
        "--images",
        6,
        "--grid-size",
        8,
        "--window",
        3,
        "--plot",
        tmp_path / "cal.png",
        "--json",
        tmp_path / "cal.json",
    )
    assert code == 0, err
    window = json.loads((model_dir / "diffclass.json").read_text())["timestep_range"]
    result = json.loads((tmp_path / "cal.json").read_text())
    assert window == result["best_window"] and len(result["single_top1"]) == 8 and len(result["windows"]) == 6
    import diffclass

    grid = diffclass.load(str(model_dir)).scorer.grid
    assert window[0] <= min(grid.timesteps) and max(grid.timesteps) <= window[1]
    full = diffclass.load(str(model_dir), timesteps="0-999").scorer.grid
    assert max(full.timesteps) > window[1] or min(full.timesteps) < window[0]


def test_tree_check_reports_each_level_as_a_direct_scoring_would(monkeypatch, capsys, model_dir, tmp_path):
    import diffclass
    from diffclass.data import load_dataset
    from diffclass.hierarchy import LabelTree, TreeNode

    nodes = [
        TreeNode("root", "digit", ["low", "high"]),
        TreeNode("low", "low", ["a", "b"]),
        TreeNode("a", "a", ["0", "1"]),
        TreeNode("b", "b", ["2", "3", "4"]),
        TreeNode("high", "high", [str(d) for d in range(5, 10)]),
    ]
    nodes += [TreeNode(str(d), str(d), class_index=d) for d in range(10)]
    LabelTree(nodes, 10).save(tmp_path / "t.json")
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "tree",
        "check",
        "--model",
        model_dir,
        "--tree",
        tmp_path / "t.json",
        "--slots",
        2,
        "--limit",
        6,
        "--json",
        tmp_path / "c.json",
    )
    assert code == 0, err
    levels = json.loads((tmp_path / "c.json").read_text())["levels"]
    assert [(lv["level"], lv["nodes"]) for lv in levels] == [(1, 2), (2, 7)]  # a, b and the five leaves of high
    clf = diffclass.load(model_dir, tree=str(tmp_path / "t.json"))
    data = load_dataset("digits", "test", 8).subset(range(6))
    memos = clf.scorer.start(data.images, data.ids)
    clf.scorer.compute([(m, ["low", "high"], range(2)) for m in memos])
    truth = [0 if y < 5 else 1 for y in data.labels.tolist()]
    first = sum(int(m.lookup(["low", "high"], range(2)).mean(1).argmin()) == t for m, t in zip(memos, truth))
    assert levels[0]["ranks_first"] == first / 6 and levels[0]["survives"]["within-std"] >= first / 6
    assert "ranks first" in out
    from diffclass.replay import ErrorTable, check_tree, level_keys, score_levels

    assert level_keys(clf.tree) == {1: ["low", "high"], 2: ["a", "b", 5, 6, 7, 8, 9]}  # only what the levels need
    whole = score_levels(ErrorTable.compute(clf, data, slots=2, progress=False), clf.tree, 2)  # every class and node
    assert check_tree(clf, data, slots=2, progress=False) == whole
    assert [vars(c) for c in whole] == levels


def test_strategies_lists_every_registered_name_with_its_defaults(monkeypatch, capsys):
    from diffclass.didicm.samplers import SAMPLERS
    from diffclass.strategies import RULES, STRATEGIES

    code, out, err = run_cli(monkeypatch, capsys, "strategies")
    assert code == 0, err
    for registry in (STRATEGIES, RULES, SAMPLERS):
        for entry in registry:
            assert entry.name in out
            for option in entry.options:
                assert f"{option.name}=" in out
    assert "t_s=8" in out and "K=0.5" in out and "steps=8" in out


def test_an_unexpected_error_is_one_line_with_its_traceback_saved(monkeypatch, capsys):
    import diffclass.loading

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(diffclass.loading, "load", broken)
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", "--limit", 1)
    assert code == 1 and len(err.strip().splitlines()) == 1 and "unexpected ZeroDivisionError: a bug" in err
    saved = err.split("full traceback in ")[1].split(";")[0]
    assert "Traceback" in open(saved).read() and "Traceback" not in err
    with pytest.raises(ZeroDivisionError):
        main.__globals__["app"](["--debug", "evaluate", "--limit", "1"], standalone_mode=False)


def test_threads_sets_what_the_networks_use(monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("MKL_NUM_THREADS", "2")  # both restored after the test
    before = torch.get_num_threads()
    try:
        code, out, err = run_cli(monkeypatch, capsys, "--threads", 1, "strategies")
        assert code == 0, err
        assert torch.get_num_threads() == 1 and __import__("os").environ["OMP_NUM_THREADS"] == "1"
        code, _, err = run_cli(monkeypatch, capsys, "--threads", 0, "strategies")
        assert code == 2 and "Traceback" not in err
    finally:
        torch.set_num_threads(before)


def test_classify_says_when_probabilities_are_not_calibrated(monkeypatch, capsys, model_dir, picture):
    code, out, err = run_cli(
        monkeypatch, capsys, "classify", picture, "--model", model_dir, "--strategy", "exhaustive(n=2)"
    )
    assert code == 0 and "has no fitted temperature: its probabilities rank the classes but are not calibrated" in err
    code, out, err = run_cli(
        monkeypatch, capsys, "classify", picture, "--model", "digits", "--strategy", "exhaustive(n=2)"
    )
    assert code == 0 and "no fitted temperature" not in err


def test_a_full_disk_is_one_line_and_keeps_what_was_written(monkeypatch, capsys, model_dir, tmp_path):
    import errno

    from diffclass.records import RecordStore

    written = []
    original = RecordStore.append

    def filling(self, records):
        if written:  # the first batch lands, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(self.folder / "records.jsonl"))
        written.append(len(records))
        original(self, records)

    monkeypatch.setattr(RecordStore, "append", filling)
    args = ("evaluate", "--model", model_dir, "--limit", 6, "--batch-size", 8, "--strategy", "exhaustive(n=1)")
    code, _, err = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "records")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "No space left on device writing" in err, err
    kept = (tmp_path / "records" / "records.jsonl").read_text().splitlines()
    assert "free some space" in err and len(kept) == written[0] < 6
    monkeypatch.setattr(RecordStore, "append", original)
    code, _, _ = run_cli(monkeypatch, capsys, *args, "--out", tmp_path / "records")
    records = (tmp_path / "records" / "records.jsonl").read_text().splitlines()
    assert code == 0 and records[: len(kept)] == kept and len(records) == 6
