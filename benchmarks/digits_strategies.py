"""Exhaustive vs adaptive on the full digits test split, same model and seed, in one run.

    python benchmarks/digits_strategies.py [--limit N] [--out results/digits_strategies.json]

Prints top-1, top-5, NFEs/image, seconds/image and the ratios of adaptive to exhaustive.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from diffclass import load
from diffclass.data import load_dataset
from diffclass.evaluation import evaluate
from diffclass.report import summary_table

console = Console()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="digits")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strategies", nargs="+", default=["exhaustive", "adaptive"])
    parser.add_argument("--out", type=Path, default=Path("results/digits_strategies.json"))
    args = parser.parse_args()

    clf = load(args.model, seed=args.seed)
    data = load_dataset("digits", "test", clf.backbone.info.image_size)
    summaries = [evaluate(clf, data, spec, limit=args.limit) for spec in args.strategies]
    console.print(summary_table(summaries))
    base = summaries[0]
    for s in summaries[1:]:
        console.print(
            f"{s.strategy} vs {base.strategy}: top-1 {100 * (s.top1 - base.top1):+.2f} points, "
            f"NFEs {s.nfe_per_image / base.nfe_per_image:.3f}x, "
            f"time {s.seconds_per_image / base.seconds_per_image:.3f}x"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([s.to_json() for s in summaries], indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
