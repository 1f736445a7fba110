"""How wrong are the wrong answers? Top-1 at every level of a label tree: the predicted class counted right at a
level when it shares the true class's ancestor there (for `emoji`: its Unicode subgroup, then its group).

    python benchmarks/tree_accuracy.py --dataset emoji --tree emoji --model plain-emoji=plain \\
        --model "emoji=prefilter(by=plain-emoji;k=10;then=exhaustive(n=8))" [--limit N] [--json FILE]

A classifier whose mistakes stay inside the right subgroup (a tomato read as a red apple) is more useful than one
whose mistakes land anywhere; a class drawn at random is right at a level with the sum of its nodes' squared shares of
the classes (more than one over the number of nodes when they differ in size).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

import diffclass
from diffclass.hierarchy import load_tree
from diffclass.loading import eval_dataset

console = Console(width=160)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="emoji")
    parser.add_argument("--tree", default="emoji")
    parser.add_argument("--model", action="append", default=[], help="MODEL=STRATEGY (repeat)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, default=Path("results/emoji/tree_accuracy.json"))
    args = parser.parse_args()
    if not args.model:
        parser.error("give at least one --model MODEL=STRATEGY")

    rows = []
    for entry in args.model:
        name, _, spec = entry.partition("=")
        clf = diffclass.load(name)
        tree = load_tree(args.tree, len(clf.class_names))
        levels = [tree.classes_at(depth) for depth in range(1, tree.max_depth + 1)]
        summary = clf.evaluate(eval_dataset(clf, args.dataset), spec or None, limit=args.limit, show_progress=True)
        top1 = [
            sum(level[r.prediction] == level[r.label] for r in summary.records) / summary.n_images for level in levels
        ]
        rows.append(
            dict(
                model=name,
                strategy=summary.strategy,
                images=summary.n_images,
                nodes_per_level=[len(set(level)) for level in levels],
                top1_per_level=[round(v, 4) for v in top1],
                nfe_per_image=summary.nfe_per_image,
            )
        )
    depth = max(len(r["top1_per_level"]) for r in rows)
    table = Table(title=f"{args.dataset}: top-1 at each level of the {args.tree} tree")
    table.add_column("model and strategy")
    for d in range(depth):
        table.add_column(f"level {d + 1} ({rows[0]['nodes_per_level'][d]} nodes)", justify="right")
    for r in rows:
        table.add_row(f"{r['model']} {r['strategy']}", *(f"{v:.1%}" for v in r["top1_per_level"]))
    console.print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(dict(dataset=args.dataset, tree=args.tree, rows=rows), indent=2) + "\n")
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
