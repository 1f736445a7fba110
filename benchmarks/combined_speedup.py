"""Cheaper calls times fewer calls: a pruned model with a fast strategy against exhaustive on the unpruned model.

    python benchmarks/combined_speedup.py --model glyphs --pruned runs/glyphs-pruned-2200 \
        --reference "exhaustive(n=64;t=0-999)" --reference "exhaustive(n=32)" \
        --strategy "adaptive(keep=10,1;n=4,16)" [--limit N] [--json results/combined_speedup.json]

In one process, on the same test images and seed: every --reference strategy on the unpruned model and every
--strategy on each pruned model (--pruned may be repeated, e.g. to compare pruning ratios). Compute per image is
NFEs x MACs per call (one image, measured); the best reference (highest top-1) is "exhaustive's best", and every
row prints its compute and wall-time ratio against it and its distance in top-1 points. With --reference-from, the
reference rows are read from an earlier JSON of this benchmark (same model, images and seed) instead of recomputed:
the engine is deterministic, so only the pruned models need to run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.table import Table

from diffclass.backbones import call_cost, load_backbone
from diffclass.classifier import Classifier
from diffclass.data import load_dataset
from diffclass.evaluation import evaluate
from diffclass.progress import console


def reused_references(path: Path | None, specs: list[str], images: int) -> list[dict]:
    """The unpruned rows of an earlier run for exactly these reference strategies, or none without --reference-from."""
    if path is None:
        return []
    earlier = {r["strategy"]: r for r in json.loads(path.read_text()) if r["model"] == "unpruned"}
    missing = [spec for spec in specs if spec not in earlier]
    if missing or any(earlier[spec]["n_images"] != images for spec in specs):
        raise SystemExit(f"error: {path} has no reference row on {images} images for {', '.join(missing or specs)}")
    return [earlier[spec] for spec in specs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="glyphs", help="the unpruned model")
    parser.add_argument("--pruned", type=Path, action="append", required=True, help="a pruned folder (prune --out)")
    parser.add_argument("--reference", action="append", required=True, help="strategy on the unpruned model")
    parser.add_argument("--strategy", action="append", required=True, help="strategy on the pruned model")
    parser.add_argument("--reference-from", type=Path, default=None, help="reuse the reference rows of this JSON")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("results/combined_speedup.json"))
    args = parser.parse_args()

    original = load_backbone(args.model)
    data = load_dataset(original.info.dataset, "test", original.info.image_size)
    rows = reused_references(args.reference_from, args.reference, len(data) if args.limit is None else args.limit)
    runs = [] if rows else [(original, "unpruned", args.reference)]
    runs += [(load_backbone(path), f"pruned {path.name}", args.strategy) for path in args.pruned]
    for backbone, name, specs in runs:
        macs = call_cost(backbone)[0]
        classifier = Classifier(backbone, seed=args.seed, model_name=name)
        for spec in specs:
            summary = evaluate(classifier, data, spec, limit=args.limit)
            rows.append(dict(summary.to_json(), macs_per_call=macs, compute=summary.nfe_per_image * macs))
            console.print(f"{name} {summary.strategy}: top-1 {summary.top1:.2%}, {summary.nfe_per_image:.0f} NFEs")
    best = max((r for r in rows if r["model"] == "unpruned"), key=lambda r: r["top1"])
    table = Table(title=f"against {best['strategy']} on the unpruned model ({best['n_images']} images)")
    for col in (
        "model",
        "strategy",
        "top-1",
        "points",
        "NFEs/img",
        "MACs/call",
        "GMACs/img",
        "less compute",
        "less time",
    ):
        table.add_column(col, justify="left" if col in ("model", "strategy") else "right")
    for row in rows:
        row["compute_ratio"] = best["compute"] / row["compute"]
        row["time_ratio"] = best["seconds_per_image"] / row["seconds_per_image"]
        row["points"] = 100 * (row["top1"] - best["top1"])
        table.add_row(
            row["model"],
            row["strategy"],
            f"{row['top1']:.2%}",
            f"{row['points']:+.2f}",
            f"{row['nfe_per_image']:.0f}",
            f"{row['macs_per_call'] / 1e6:.2f}M",
            f"{row['compute'] / 1e9:.2f}",
            f"{row['compute_ratio']:.1f}x",
            f"{row['time_ratio']:.1f}x",
        )
    console.print(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2) + "\n")
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
