"""A long run is never silent: without a terminal, plain progress lines with an honest remaining time."""

import io
import re

from rich.console import Console

from diffclass.progress import progress_bar


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def plain_run(total: int, seconds_each: float, resumed_at: int = 0, status: str = ""):
    """Lines a non-terminal console gets from a loop of `total` items at a steady pace, with the clock."""
    out, clock = io.StringIO(), Clock()
    console = Console(file=out, force_terminal=False, width=200)
    with progress_bar(console=console, get_time=clock) as bar:
        task = bar.add_task("evaluate", total=total, completed=resumed_at, status=status)
        for done in range(resumed_at, total):
            clock.now += seconds_each
            bar.update(task, completed=done + 1, status=status)
    return [line for line in out.getvalue().splitlines() if line.startswith("evaluate ")], clock.now


def seconds(text: str) -> int:
    h, m, s = map(int, text.split(":"))
    return 3600 * h + 60 * m + s


def test_without_a_terminal_a_line_comes_at_least_every_ten_seconds_with_an_eta_within_30_percent():
    lines, total_time = plain_run(200, 3.0, status="top-1 91.0%")  # 10 minutes of work, 3 s per image
    said = [
        (int(m[1]), seconds(m[2]), m[3])
        for m in (re.search(r" (\d+)/200 .*elapsed (\S+) (?:left (\S+)|done)", line) for line in lines)
    ]
    assert said[-1][0] == 200 and lines[-1].endswith("done")  # the end is said once
    times = [elapsed for _, elapsed, _ in said]
    assert times[0] <= 12 and all(b - a <= 12 for a, b in zip(times, times[1:]))  # every item takes 3 s: <= 12
    for done, elapsed, left in said[:-1]:
        if done >= 20:  # once 10% is done
            assert abs(seconds(left) - (total_time - elapsed)) <= 0.3 * (total_time - elapsed) + 1
    assert all("top-1 91.0%" in line for line in lines)


def test_a_resumed_run_times_only_the_work_it_did():
    lines, _ = plain_run(100, 2.0, resumed_at=90)  # 90 done before: 10 left at 2 s each
    first = re.search(r"(\d+)/100 elapsed (\S+) left (\S+)", lines[0])
    done, elapsed, left = int(first[1]), seconds(first[2]), seconds(first[3])
    assert left == (100 - done) * 2 and elapsed == (done - 90) * 2


def test_a_terminal_or_a_disabled_bar_prints_no_plain_lines():
    out = io.StringIO()
    with progress_bar(enabled=False, console=Console(file=out, force_terminal=False)) as bar:
        task = bar.add_task("evaluate", total=3, status="")
        bar.update(task, completed=3)
    assert out.getvalue() == ""


def test_a_run_that_would_take_hours_is_announced_after_its_first_pass(monkeypatch, caplog, model_dir):
    import logging

    import diffclass
    import diffclass.evaluation as evaluation
    from diffclass.data import load_dataset

    clf = diffclass.load(model_dir)
    data = load_dataset("digits", "test").subset(range(4))
    monkeypatch.setattr(evaluation, "LONG_RUN", 0.0)  # any run is long: the line's content is what is checked
    with caplog.at_level(logging.WARNING, logger="diffclass.evaluation"):
        evaluation.evaluate(clf, data, "exhaustive(n=2)", show_progress=False)
    (line,) = [r.getMessage() for r in caplog.records if "first pass's pace" in r.getMessage()]
    assert (
        line.startswith("exhaustive(n=2): about ") and "for 4 images" in line and "(20 network calls per image)" in line
    )
    caplog.clear()
    monkeypatch.setattr(evaluation, "LONG_RUN", 3600.0)
    with caplog.at_level(logging.WARNING, logger="diffclass.evaluation"):
        evaluation.evaluate(clf, data, "exhaustive(n=2)", show_progress=False)
    assert not [r for r in caplog.records if "first pass's pace" in r.getMessage()]  # a short run says nothing
