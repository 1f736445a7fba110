"""Tables and JSON for results: what the CLI and the benchmarks print."""

from __future__ import annotations

import json
from pathlib import Path

from rich.table import Table

from diffclass.errors import DiffclassError


def summary_table(summaries, baselines: dict[str, object] | None = None) -> Table:
    table = Table(title="diffusion classification")
    for column in ("dataset", "model", "strategy", "images", "top-1", "top-5", "NFEs/image", "s/image"):
        table.add_column(column, justify="right" if column not in ("dataset", "model", "strategy") else "left")
    for s in summaries:
        table.add_row(
            s.dataset,
            s.model,
            s.strategy,
            str(s.n_images),
            f"{s.top1:.2%}",
            f"{s.top5:.2%}",
            f"{s.nfe_per_image:.1f}",
            f"{s.seconds_per_image:.3f}",
        )
    return table


def classify_table(rows: list[dict]) -> Table:
    table = Table(title="predictions")
    for column in ("image", "prediction", "top classes", "NFEs", "converted"):
        table.add_column(column)
    for row in rows:
        top = ", ".join(f"{t['name']} {t['probability']:.1%}" for t in row["top"])
        table.add_row(row["path"], row["prediction"], top, str(row["nfe"]), "; ".join(row["converted"]) or "-")
    return table


def write_json(path: str | Path, data) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise DiffclassError(f"cannot write {path}: {exc.strerror or exc}") from None
