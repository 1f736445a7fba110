"""One progress style for every long loop (training, evaluation, pruning, tuning): rich's bar in a terminal, and
where there is none (a pipe, `nohup`, CI, a notebook cell) a plain line on stderr every few seconds, so a long run
is never silent. Both give the remaining time from the pace since the loop started, which stays right when work
arrives in large steps (rich's own estimate needs several steps within 30 s and shows -:--:-- until then)."""

from __future__ import annotations

import sys
from datetime import timedelta

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

console = Console(width=None if sys.stdout.isatty() else 160)  # results; wide tables when piped
err_console = Console(stderr=True)  # progress, logs and errors

LINE_EVERY = 10.0  # seconds between plain progress lines without a terminal


def remaining(task: Task) -> float | None:
    """Seconds left at the pace since the task started (counting only the work done in this run)."""
    done = task.completed - task.fields.get("resumed_at", 0)
    if not task.total or done <= 0 or task.elapsed is None:
        return None
    return task.elapsed * (task.total - task.completed) / done


class RemainingColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        left = remaining(task)
        return Text("-:--:--" if left is None else str(timedelta(seconds=round(left))), style="progress.remaining")


class LoopProgress(Progress):
    """rich's Progress that, on a console that is not a terminal, prints one plain line per task at most every
    `every` seconds (and one when it completes): done/total, its status, elapsed and remaining time."""

    def __init__(self, *columns, every: float = LINE_EVERY, **options):
        super().__init__(*columns, **options)
        self.every = every
        self.plain = not self.console.is_terminal and not self.disable
        self.disable = self.disable or self.plain  # the lines replace the bar, which would only render at the end
        self.said: dict = {}

    def add_task(self, description: str, start: bool = True, total=100.0, completed: int = 0, **fields):
        task_id = super().add_task(description, start, total, completed, resumed_at=completed, **fields)
        self.said[task_id] = self.get_time()
        return task_id

    def update(self, task_id, **changes) -> None:
        super().update(task_id, **changes)
        self.report(task_id)

    def advance(self, task_id, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self.report(task_id)

    def report(self, task_id) -> None:
        if not self.plain:
            return
        task, now = self._tasks[task_id], self.get_time()
        if now - self.said[task_id] < self.every and not task.finished:
            return
        if task.finished and self.said[task_id] == float("inf"):
            return
        self.said[task_id] = float("inf") if task.finished else now
        left = remaining(task)
        parts = [
            task.description,
            f"{task.completed:g}/{task.total:g}",
            str(task.fields.get("status") or ""),
            f"elapsed {timedelta(seconds=round(task.elapsed or 0))}",
            "done" if task.finished else f"left {'?' if left is None else timedelta(seconds=round(left))}",
        ]
        self.console.print(" ".join(p for p in parts if p), markup=False, highlight=False, soft_wrap=True)


def progress_bar(enabled: bool = True, console: Console | None = None, get_time=None) -> Progress:
    return LoopProgress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        RemainingColumn(),
        console=console or err_console,
        disable=not enabled,
        get_time=get_time,
    )


def print_error(message: str) -> None:
    """One line on stderr, never wrapped, never read as rich markup (paths may hold brackets)."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
