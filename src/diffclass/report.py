"""Tables and JSON for results: what the CLI and the benchmarks print."""

from __future__ import annotations

import json
from pathlib import Path

from rich.markup import escape
from rich.table import Table
from rich.tree import Tree as RichTree

from diffclass.errors import DiffclassError


def summary_table(summaries) -> Table:
    """One row per strategy; dataset and model go in the title when they are the same for every row."""
    datasets = sorted({s.dataset for s in summaries})
    models = sorted({s.model for s in summaries})
    table = Table(title=f"{', '.join(datasets)} test split, model {', '.join(models)}")
    table.add_column("strategy", overflow="fold")
    for column in ("images", "top-1", "top-5", "NFE/img", "s/img"):
        table.add_column(column, justify="right", no_wrap=True)
    for s in summaries:
        table.add_row(
            s.strategy, str(s.n_images), f"{s.top1:.2%}", f"{s.top5:.2%}",
            f"{s.nfe_per_image:.1f}", f"{s.seconds_per_image:.3f}",
        )  # fmt: skip
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


def tree_table(tree) -> Table:
    table = Table(title=f"tree: {len(tree.nodes)} nodes, {tree.num_classes} classes, depth {tree.max_depth}")
    for column in ("depth", "internal nodes", "leaves"):
        table.add_column(column, justify="right")
    for depth, (internal, leaves) in enumerate(tree.level_counts()):
        table.add_row(str(depth), str(internal), str(leaves))
    return table


def tree_outline(tree, max_depth: int) -> RichTree:
    def label(node_id: str) -> str:
        node = tree.nodes[node_id]
        if node.is_leaf:
            return f"{escape(node.name)} [dim]#{node.class_index}[/dim]"
        return f"[bold]{escape(node.name)}[/bold] [dim]({len(tree.leaves_under(node_id))} classes)[/dim]"

    def grow(branch: RichTree, node_id: str, depth: int) -> None:
        for child in tree.children(node_id):
            sub = branch.add(label(child))
            if depth + 1 < max_depth:
                grow(sub, child, depth + 1)

    root = RichTree(label(tree.root))
    grow(root, tree.root, 0)
    return root
