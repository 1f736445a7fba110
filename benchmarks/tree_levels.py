"""How well each level of a label tree can be scored: per level and per node-conditioning mode, how often the
true class's ancestor ranks first among the level's nodes, and how often it survives each pruning rule: what
`diffclass tree check` reports for one tree and mode, over several of each.

    python benchmarks/tree_levels.py [--model glyphs] [--trees glyphs induced] [--modes ancestor mean inverted]

The frontier of each level is scored on the first `--slots` slots of the model's timestep grid (the slots a
hierarchical stage would use), with the same noise bank as every other benchmark.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from diffclass import load
from diffclass.data import load_dataset
from diffclass.errors import DiffclassError
from diffclass.hierarchy import load_tree
from diffclass.hierarchy.induce import induce_tree
from diffclass.replay import check_tree

console = Console(width=160)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="glyphs")
    parser.add_argument("--trees", nargs="+", default=["glyphs", "induced"])
    parser.add_argument("--modes", nargs="+", default=["ancestor", "mean", "inverted"])
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("results/tree_levels.json"))
    args = parser.parse_args()

    probe = load(args.model)
    info = probe.backbone.info
    test = load_dataset(info.dataset, "test", info.image_size)
    if args.limit:
        test = test.subset(range(args.limit))
    train = load_dataset(info.dataset, "train", info.image_size)
    results = []
    table = Table(title=f"{info.dataset}: does the true ancestor rank first / survive pruning? ({args.slots} slots)")
    for column in ("tree", "mode", "level", "nodes", "ranks first", "survives K=0.5", "survives 2σ"):
        table.add_column(column, justify="right")
    for tree_name in args.trees:
        tree = induce_tree(probe.backbone) if tree_name == "induced" else load_tree(tree_name, len(probe.class_names))
        for mode in args.modes:
            clf = load(args.model)  # a fresh copy: node conditioning changes the embedding table
            try:
                clf.use_tree(tree, mode, train.images, train.labels)
            except DiffclassError as exc:
                console.print(f"[dim]{tree_name}/{mode}: {exc}[/dim]")
                continue
            for check in check_tree(clf, test, slots=args.slots):
                row = dict(
                    level=check.level,
                    nodes=check.nodes,
                    first=check.ranks_first,
                    top_fraction=check.survives["top-fraction"],
                    within_std=check.survives["within-std"],
                )
                row.update(tree=tree_name, mode=mode)
                results.append(row)
                table.add_row(
                    tree_name,
                    mode,
                    str(row["level"]),
                    str(row["nodes"]),
                    f"{row['first']:.1%}",
                    f"{row['top_fraction']:.1%}",
                    f"{row['within_std']:.1%}",
                )
    console.print(table)
    timesteps = sorted(probe.scorer.grid.timesteps[: args.slots])
    console.print(f"timesteps scored per node: {timesteps}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(dict(timesteps=timesteps, rows=results), indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
