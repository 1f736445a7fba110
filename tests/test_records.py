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
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def records(out):
    rows = []
    for path in sorted(out.glob("records*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        row.pop("seconds")
    return sorted(rows, key=lambda r: r["id"])


def test_a_killed_evaluation_resumes_without_losing_or_repeating_images(model_dir, tmp_path):
    args = ("--limit", "60", "--strategy", "exhaustive(n=16)", "--batch-size", "16")
    whole = evaluate(model_dir, tmp_path / "whole", *args)
    assert whole.wait(timeout=300) == 0, whole.stderr.read()
    killed = evaluate(model_dir, tmp_path / "killed", *args)
    path = tmp_path / "killed" / "records.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not path.is_file() or path.read_text().count("\n") < 5):
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    partial = path.read_text().count("\n")
    assert 5 <= partial < 60, "the kill should land part-way"
    resumed = evaluate(model_dir, tmp_path / "killed", *args)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    got, want = records(tmp_path / "killed"), records(tmp_path / "whole")
    assert [r["id"] for r in got] == [r["id"] for r in want] and len(got) == 60  # none missing, none twice
    assert got == want


def test_a_rerun_with_other_options_refuses_to_mix(model_dir, tmp_path):
    first = evaluate(model_dir, tmp_path / "out", "--limit", "4", "--strategy", "exhaustive(n=2)")
    assert first.wait(timeout=120) == 0
    other = evaluate(model_dir, tmp_path / "out", "--limit", "4", "--strategy", "exhaustive(n=3)")
    assert other.wait(timeout=120) == 2
    err = other.stderr.read()
    assert "other options (strategy)" in err and "Traceback" not in err
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
    assert "cannot write results" in run.stderr.read()


def test_a_store_used_as_a_context_closes_its_file_even_when_the_run_fails(tmp_path):
    from diffclass.records import RecordStore

    with pytest.raises(RuntimeError), RecordStore(tmp_path / "run", dict(model="m")) as store:
        store.append([dict(id="a", label=1)])
        raise RuntimeError("the run broke")
    assert store._file.closed
    with RecordStore(tmp_path / "run", dict(model="m")) as again:
        assert list(again.done()) == ["a"]
