"""Resumable, shardable evaluation records."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def evaluate(model_dir, out, *extra, launcher=(sys.executable, "-m")):
    return subprocess.Popen(
        [*launcher, "diffclass", "evaluate", "--model", str(model_dir), "--out", str(out), *extra],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def records(out):
    rows = []
    for path in sorted(out.glob("records*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        row.pop("seconds")
    return sorted(rows, key=lambda r: r["id"])


KILL_ARGS = ("--limit", "60", "--strategy", "exhaustive(n=16)", "--batch-size", "16")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """(model folder, its records of an uninterrupted run): made once for the three kinds of kill."""
    from tests.conftest import tiny_backbone

    root = tmp_path_factory.mktemp("kill")
    backbone = tiny_backbone(classes=[str(d) for d in range(10)])
    backbone.info.dataset = "digits"
    backbone.save_pretrained(root / "model")
    whole = evaluate(root / "model", root / "whole", *KILL_ARGS)
    assert whole.wait(timeout=300) == 0, whole.stderr.read()
    return root / "model", records(root / "whole")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_a_killed_evaluation_resumes_without_losing_or_repeating_images(uninterrupted, tmp_path, how):
    model_dir, want = uninterrupted
    args = KILL_ARGS
    killed = evaluate(model_dir, tmp_path / "killed", *args)
    path = tmp_path / "killed" / "records.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not path.is_file() or path.read_text().count("\n") < 5):
        time.sleep(0.02)
    killed.send_signal(how)
    assert killed.wait() != 0
    if how == signal.SIGINT:  # Ctrl-C: one line saying the records are kept, no traceback
        err = killed.stderr.read()
        assert "interrupted; records already written are kept" in err and "Traceback" not in err
    partial = path.read_text().count("\n")
    assert 5 <= partial < 60, "the kill should land part-way"
    resumed = evaluate(model_dir, tmp_path / "killed", *args)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    got = records(tmp_path / "killed")
    assert [r["id"] for r in got] == [r["id"] for r in want] and len(got) == 60  # none missing, none twice
    assert got == want


def test_a_rerun_with_other_options_computes_its_own_records_and_switching_back_reuses_them(model_dir, tmp_path):
    first = evaluate(model_dir, tmp_path / "out", "--limit", "4", "--strategy", "exhaustive(n=2)")
    assert first.wait(timeout=120) == 0
    other = evaluate(model_dir, tmp_path / "out", "--limit", "4", "--strategy", "exhaustive(n=3)")
    assert other.wait(timeout=120) == 0
    err = other.stderr.read()
    assert "other options (strategy)" in err and "Traceback" not in err
    assert len(_lines(tmp_path / "out")) == 8  # four of each, none reused across strategies
    back = evaluate(model_dir, tmp_path / "out", "--limit", "4", "--strategy", "exhaustive(n=2)")
    assert back.wait(timeout=120) == 0 and len(_lines(tmp_path / "out")) == 8  # the first run's records, reused
    again = evaluate(model_dir, tmp_path / "out", "--limit", "4", "--strategy", "exhaustive(n=3)", "--overwrite")
    assert again.wait(timeout=120) == 0
    assert len(records(tmp_path / "out")) == 4


def test_two_torchrun_ranks_give_the_single_process_records(model_dir, tmp_path):
    args = ("--limit", "10", "--strategy", "adaptive(keep=3,1;n=2,6)", "--json", str(tmp_path / "s.json"))
    single = evaluate(model_dir, tmp_path / "single", *args)
    assert single.wait(timeout=120) == 0, single.stderr.read()
    launcher = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m")
    ranks = evaluate(model_dir, tmp_path / "ranks", *args[:-2], "--json", str(tmp_path / "r.json"), launcher=launcher)
    assert ranks.wait(timeout=300) == 0, ranks.stderr.read()
    assert (tmp_path / "ranks" / "records.rank1.jsonl").is_file()
    assert records(tmp_path / "ranks") == records(tmp_path / "single")
    summary_single = json.loads((tmp_path / "s.json").read_text())
    summary_ranks = json.loads((tmp_path / "r.json").read_text())
    for key in ("n_images", "top1", "top5", "nfe_per_image"):
        assert summary_single[key] == summary_ranks[key]


def test_unwritable_output_folder(model_dir, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "out").write_text("a file, not a folder")
    run = evaluate(model_dir, locked / "out", "--limit", "2")
    assert run.wait(timeout=120) == 2
    assert "is a file; a folder is needed here" in run.stderr.read()  # refused before any work


def test_a_store_used_as_a_context_closes_its_file_even_when_the_run_fails(tmp_path):
    from diffclass.records import RecordStore

    with pytest.raises(RuntimeError), RecordStore(tmp_path / "run", dict(model="m")) as store:
        store.append([dict(id="a", label=1)])
        raise RuntimeError("the run broke")
    assert store._file.closed
    with RecordStore(tmp_path / "run", dict(model="m")) as again:
        assert list(again.done()) == ["a"]


def _lines(out):
    return [line for path in sorted(out.glob("records*.jsonl")) for line in path.read_text().splitlines()]


def test_every_record_carries_its_run_and_no_other_run_reuses_it(monkeypatch, capsys, model_dir, tmp_path):
    from diffclass.backbones import load_backbone
    from tests.conftest import run_cli

    out = tmp_path / "out"
    args = ("evaluate", "--model", model_dir, "--limit", 3, "--strategy", "exhaustive(n=2)", "--out", out)
    assert run_cli(monkeypatch, capsys, *args)[0] == 0
    first = [json.loads(line) for line in _lines(out)]
    assert len(first) == 3 and len({r["run"] for r in first}) == 1
    (out / "options.json").write_text('{"model": ')  # cut by a kill mid-write: the records still say whose they are
    assert run_cli(monkeypatch, capsys, *args)[0] == 0 and len(_lines(out)) == 3  # every record reused
    (out / "options.json").unlink()
    assert run_cli(monkeypatch, capsys, *args[:-2], "--seed", 7, "--out", out)[0] == 0
    assert len(_lines(out)) == 6  # another seed: nothing reused
    backbone = load_backbone(model_dir)  # "retrained" into the same folder: the weights digest changes
    backbone.unet.conv_out.bias.data += 1.0
    backbone.save_pretrained(model_dir)
    code, _, err = run_cli(monkeypatch, capsys, *args[:-2], "--seed", 7, "--out", out)
    assert code == 0 and "other options (weights)" in err and len(_lines(out)) == 9  # all three redone


@pytest.mark.parametrize(
    "garbage",
    [
        "{}",
        "null",
        "[1, 2]",
        '{"id": 5}',
        '{"id": "digits/1", "run": "other"}',
        '{"id": "x", "label": "?", "prediction": 1, "top5": 3, "nfe": 1, "seconds": 0}',
    ],
)
def test_a_line_that_is_not_a_record_of_this_run_is_redone_not_fatal(monkeypatch, capsys, model_dir, tmp_path, garbage):
    from tests.conftest import run_cli

    out = tmp_path / "out"
    args = ("evaluate", "--model", model_dir, "--limit", 2, "--strategy", "exhaustive(n=1)", "--out", out)
    assert run_cli(monkeypatch, capsys, *args)[0] == 0
    good = _lines(out)
    (out / "records.jsonl").write_text(good[0] + "\n" + garbage + "\n")
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert [json.loads(line) for line in _lines(out) if line != garbage][1]["id"] == json.loads(good[1])["id"]


def test_changed_images_are_redone_and_only_they(monkeypatch, capsys, model_dir, tmp_path):
    from PIL import Image

    from tests.conftest import run_cli

    for root, shade in (("a", 0), ("b", 255)):
        for digit in range(10):
            (tmp_path / root / "digits" / str(digit)).mkdir(parents=True)
            Image.new("L", (8, 8), shade).save(tmp_path / root / "digits" / str(digit) / "x.png")
    out = tmp_path / "out"
    base = ("evaluate", "--model", model_dir, "--strategy", "exhaustive(n=1)", "--out", out, "--dataset")
    assert run_cli(monkeypatch, capsys, *base, f"folder:{tmp_path / 'a' / 'digits'}")[0] == 0
    # another folder of the same name and file names: other pixels, so every image is redone
    assert run_cli(monkeypatch, capsys, *base, f"folder:{tmp_path / 'b' / 'digits'}")[0] == 0
    assert len(_lines(out)) == 20
    Image.new("L", (8, 8), 128).save(tmp_path / "b" / "digits" / "3" / "x.png")  # one image changes
    code, _, err = run_cli(monkeypatch, capsys, *base, f"folder:{tmp_path / 'b' / 'digits'}")
    assert code == 0 and len(_lines(out)) == 21 and json.loads(_lines(out)[-1])["id"].endswith("/3/x.png"), err
    assert run_cli(monkeypatch, capsys, *base, f"folder:{tmp_path / 'a' / 'digits'}")[0] == 0
    assert len(_lines(out)) == 21  # the first folder's records are still there, and still its


def test_classify_records_follow_the_image_content_not_its_path(monkeypatch, capsys, model_dir, tmp_path):
    from PIL import Image

    from tests.conftest import run_cli

    picture, out = tmp_path / "x.png", tmp_path / "out"
    Image.new("L", (8, 8), 0).save(picture)
    args = ("classify", picture, "--model", model_dir, "--strategy", "exhaustive(n=1)", "--out", out, "--json")
    assert run_cli(monkeypatch, capsys, *args)[0] == 0
    Image.new("L", (8, 8), 255).save(picture)  # another image under the same name
    code, printed, _ = run_cli(monkeypatch, capsys, *args)
    assert code == 0 and len(_lines(out)) == 2
    assert json.loads(printed)[0]["id"] == json.loads(_lines(out)[1])["id"] != json.loads(_lines(out)[0])["id"]
    shutil_copy = tmp_path / "y.png"
    shutil_copy.write_bytes(picture.read_bytes())  # the same image under another name: reused
    assert run_cli(monkeypatch, capsys, "classify", shutil_copy, *args[2:])[0] == 0 and len(_lines(out)) == 2


def test_a_second_run_on_the_same_out_folder_is_refused_while_the_first_writes(tmp_path):
    from diffclass.errors import DiffclassError
    from diffclass.records import RecordStore

    with RecordStore(tmp_path / "out", {"a": 1}):
        with pytest.raises(DiffclassError, match="another diffclass run is writing to"):
            RecordStore(tmp_path / "out", {"a": 1})
    with RecordStore(tmp_path / "out", {"a": 1}) as again:  # released when the first one closes
        again.append([{"id": "x"}])
    assert len((tmp_path / "out" / "records.jsonl").read_text().splitlines()) == 1


BAD = [None, "x", -1, 10**9, [], {}, 1.5, True, float("nan"), float("inf"), [[0, 2.0]], [["x", 0.5]], [{"label": 99}]]


def _damaged(record: dict, valid_anyway: dict, ignored=("run",)):
    """Generated damage to one stored record of this run: every field dropped or given every value that is not a
    valid one for it, and the line cut short. `valid_anyway`: values that are odd but true for a field (None for an
    optional field, which may then also be dropped)."""
    for field in [f for f in record if f not in ignored]:
        if None not in valid_anyway.get(field, ()):
            yield f"no {field}", json.dumps({k: v for k, v in record.items() if k != field})
        for value in BAD:
            if value not in valid_anyway.get(field, ()):
                yield f"{field}={value!r}", json.dumps({**record, field: value})
    line = json.dumps(record)
    for cut in range(1, 8):
        yield f"cut at {cut}/8", line[: len(line) * cut // 8]


def test_damaged_records_of_this_run_are_redone_and_never_counted(tmp_path):
    from diffclass import load
    from diffclass.data import load_dataset
    from diffclass.evaluation import evaluate, run_identity
    from diffclass.records import RecordStore

    clf = load("digits")
    images = load_dataset("digits", "test", 8).subset(range(3))
    options = run_identity(clf, "exhaustive(n=1)")

    def run():
        with RecordStore(tmp_path / "out", options) as store:
            return evaluate(clf, images, "exhaustive(n=1)", store=store, show_progress=False)

    want, clean = run(), _lines(tmp_path / "out")
    first = json.loads(clean[0])
    other_label = ("label=other", json.dumps({**first, "label": (first["label"] + 1) % 10}))  # a record that lies
    odd_but_true = {"seconds": (10**9, 1.5), "nfe": (10**9,), "macs": (None, 10**9)}
    cases = [other_label, *_damaged(first, odd_but_true)]
    assert len(cases) > 70
    for name, line in cases:
        (tmp_path / "out" / "records.jsonl").write_text("\n".join([line, *clean[1:]]) + "\n")
        got = run()
        for key in ("n_images", "top1", "top5", "nfe_per_image", "gmacs_per_image"):
            assert getattr(got, key) == getattr(want, key), (name, key)
        redone = [json.loads(row) for row in _lines(tmp_path / "out")[3:]]
        assert [row["id"] for row in redone] == [first["id"]], name  # that image, once


def test_damaged_classify_records_are_redone(tmp_path):
    from PIL import Image

    from diffclass import load
    from diffclass.evaluation import classify_files
    from diffclass.records import RecordStore

    clf = load("digits")
    files = [tmp_path / f"{shade}.png" for shade in (0, 128, 255)]
    for shade, path in zip((0, 128, 255), files):
        Image.new("L", (8, 8), shade).save(path)

    def run():
        with RecordStore(tmp_path / "out", {"model": "digits"}) as store:
            return classify_files(clf, files, "exhaustive(n=1)", store=store, show_progress=False)

    (want, _), clean = run(), _lines(tmp_path / "out")
    first = json.loads(clean[0])
    lies = {**first, "prediction": clf.class_names[(first["label"] + 1) % 10]}
    valid_anyway = {"nfe": (10**9,), "unfamiliar": (None, 10**9, 1.5)}  # null: a familiar image; a ratio > 1
    cases = [("prediction=other", json.dumps(lies)), *_damaged(first, valid_anyway, ("run", "path", "converted"))]
    assert len(cases) > 60
    for name, line in cases:
        (tmp_path / "out" / "records.jsonl").write_text("\n".join([line, *clean[1:]]) + "\n")
        got, problems = run()
        assert problems == [] and got == want, name
        assert [json.loads(row)["id"] for row in _lines(tmp_path / "out")[3:]] == [first["id"]], name


def test_a_full_disk_mid_run_keeps_the_records_and_a_rerun_completes_them(monkeypatch, capsys, model_dir, tmp_path):
    import errno

    import diffclass.records
    from tests.conftest import run_cli

    args = ("--model", model_dir, "--limit", 12, "--strategy", "exhaustive(n=2)", "--batch-size", 16)
    assert run_cli(monkeypatch, capsys, "evaluate", *args, "--out", tmp_path / "whole")[0] == 0

    class FillsUp:
        """A records file on a disk that fills up after a few lines: the last line is half-written, then ENOSPC."""

        def __init__(self, handle, room):
            self.handle, self.room = handle, room

        def write(self, text):
            if self.room == 0:
                self.handle.write(text[: len(text) // 2])
                self.handle.flush()
                raise OSError(errno.ENOSPC, "No space left on device")
            self.room -= 1
            return self.handle.write(text)

        def __getattr__(self, name):
            return getattr(self.handle, name)

    with monkeypatch.context() as patch:
        patch.setattr(diffclass.records, "open", lambda *a, **k: FillsUp(open(*a, **k), room=5), raising=False)
        code, _, err = run_cli(monkeypatch, capsys, "evaluate", *args, "--out", tmp_path / "full")
    assert code == 2 and "No space left on device" in err and "records so far are kept" in err, err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1 and "Traceback" not in err
    assert len(_lines(tmp_path / "full")) == 6  # five whole lines and the half-written one
    assert run_cli(monkeypatch, capsys, "evaluate", *args, "--out", tmp_path / "full")[0] == 0
    assert records(tmp_path / "full") == records(tmp_path / "whole")  # none missing, none twice, the same results


def test_a_summary_breaks_top1_down_by_group(model_dir):
    import torch

    import diffclass
    from diffclass.data.base import ImageDataset

    clf = diffclass.load(model_dir, batch_size=64)
    images = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    groups = ["ink", "ink", "ink", "pencil", "pencil", "pencil"]
    data = ImageDataset("toy", images, torch.arange(6) % 10, clf.class_names, [f"t/{i}" for i in range(6)], groups)
    summary = clf.evaluate(data, "exhaustive(n=2)", show_progress=False)
    assert set(summary.by_group) == {"ink", "pencil"}
    for group, row in summary.by_group.items():
        mine = [r for r, g in zip(summary.records, groups) if g == group]
        assert row["n_images"] == 3 and row["top1"] == sum(r.prediction == r.label for r in mine) / 3
    assert sum(row["top1"] * row["n_images"] for row in summary.by_group.values()) / 6 == pytest.approx(summary.top1)
    without = ImageDataset("toy", images, torch.arange(6) % 10, clf.class_names, [f"t/{i}" for i in range(6)])
    assert clf.evaluate(without, "exhaustive(n=2)", show_progress=False).by_group is None


def test_json_output_never_lands_on_the_records_of_the_run(model_dir, tmp_path):
    first = evaluate(model_dir, tmp_path / "out", "--limit", "3", "--strategy", "exhaustive(n=1)")
    assert first.wait(timeout=120) == 0
    kept = (tmp_path / "out" / "records.jsonl").read_text()
    for target in ("records.jsonl", "options.json"):
        run = evaluate(model_dir, tmp_path / "out", "--limit", "3", "--json", tmp_path / "out" / target)
        err = run.stderr.read()
        assert run.wait(timeout=120) == 2 and "would overwrite the records" in err and "Traceback" not in err
    assert (tmp_path / "out" / "records.jsonl").read_text() == kept


def test_atomic_writes_get_the_permissions_of_a_plain_write(tmp_path):
    from diffclass.files import write_text_atomic

    write_text_atomic(tmp_path / "atomic.json", "{}")
    (tmp_path / "plain.json").write_text("{}")
    assert (tmp_path / "atomic.json").stat().st_mode == (tmp_path / "plain.json").stat().st_mode


def test_expected_calibration_error_measures_the_gap_between_confidence_and_accuracy():
    from diffclass.evaluation import expected_calibration_error

    assert expected_calibration_error([0.95] * 10, [True] * 9 + [False]) == pytest.approx(0.05)  # 95% said, 90% right
    assert expected_calibration_error([1.0] * 4, [True, False, True, False]) == pytest.approx(0.5)
    assert expected_calibration_error([0.55, 0.95], [True, True]) == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)


def test_a_summary_states_its_mean_confidence_beside_its_top1():
    """ECE has no sign; the mean stated probability against top-1 says which way a model errs."""
    from diffclass.evaluation import EvalRecord, summarise

    records = [EvalRecord(str(i), 0, 0 if i < 3 else 1, [(0 if i < 3 else 1, 0.6)], 1, 0.0) for i in range(4)]
    summary = summarise(records, "toy", "m", "plain")
    assert summary.top1 == 0.75 and summary.mean_confidence == pytest.approx(0.6)  # under-confident by 15 points
    assert summary.to_json()["mean_confidence"] == pytest.approx(0.6)


@pytest.mark.parametrize("change", ["network", "scheduler"])
def test_records_are_not_answered_for_a_changed_config_or_schedule(monkeypatch, capsys, model_dir, tmp_path, change):
    from tests.conftest import run_cli

    args = ["evaluate", "--model", model_dir, "--strategy", "exhaustive(n=2)", "--limit", 3, "--out", tmp_path / "r"]
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    if change == "network":
        config = json.loads((model_dir / "config.json").read_text())
        config["act_fn"] = "relu" if config.get("act_fn") != "relu" else "silu"  # same weights, another network
        (model_dir / "config.json").write_text(json.dumps(config))
    else:
        info = json.loads((model_dir / "diffclass.json").read_text())
        info["scheduler"] = dict(info["scheduler"], beta_end=0.03)
        (model_dir / "diffclass.json").write_text(json.dumps(info))
    code, out, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0 and "holds records made with other options" in err and change in err
    lines = (tmp_path / "r" / "records.jsonl").read_text().splitlines()
    assert len(lines) == 6  # computed again beside the old ones, not answered from them
