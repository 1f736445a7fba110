"""Does a classifier depend on where the object sits? Top-1 on the clean test split, centred on the content's
bounding box, and shifted by 1 to 4 pixels in x and y, for several models in one run.

    python benchmarks/position.py --dataset glyphs \
        --model plain-glyphs=plain --model didicm-glyphs="cp(steps=8)" --model glyphs-allclass="exhaustive(n=32)" \
        [--limit N] [--json results/position_glyphs.json] [--plot docs/position_glyphs.png] [--resume]
    python benchmarks/position.py --replot results/position_glyphs.json --plot docs/position_glyphs.png

Every model sees the same images (the shift directions are fixed per image id). Each row is MODEL=STRATEGY; the
strategy's NFEs per image are in the JSON beside its top-1, with the standard error of each top-1. The JSON is
written after every row; `--resume` keeps the rows it already holds and runs only the others. `--max-shift 3`
stops at three pixels, as the tables made before shift:4 did.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.table import Table  # noqa: E402

import diffclass  # noqa: E402
from diffclass.data.corruptions import corrupt  # noqa: E402
from diffclass.loading import eval_dataset  # noqa: E402
from diffclass.progress import console  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="glyphs")
    parser.add_argument("--model", action="append", default=[], help="MODEL=STRATEGY (repeat)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("results/position_glyphs.json"))
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--replot", type=Path, default=None, help="redraw --plot from this JSON of an earlier run")
    parser.add_argument("--resume", action="store_true", help="keep the rows --json holds and run the others")
    parser.add_argument("--max-shift", type=int, default=4, choices=range(1, 5), help="shift:1 to shift:N (default 4)")
    args = parser.parse_args()
    if args.replot:
        saved = json.loads(args.replot.read_text())
        return plot(saved["rows"], saved["dataset"], args.plot)
    if not args.model:
        parser.error("give at least one --model MODEL=STRATEGY (or --replot JSON --plot PNG)")

    rows = json.loads(args.json.read_text())["rows"] if args.resume and args.json.exists() else []
    for entry in args.model:
        name, _, spec = entry.partition("=")
        clf = diffclass.load(name, seed=args.seed)
        clean = eval_dataset(clf, args.dataset)
        strategy = clf.strategy(spec or None).name
        for placement in (None, "centre", *(f"shift:{s}" for s in range(1, args.max_shift + 1))):
            label = placement or "as drawn"
            if any((r["model"], r["strategy"], r["placement"]) == (name, strategy, label) for r in rows):
                continue
            summary = clf.evaluate(corrupt(clean, placement), spec or None, limit=args.limit, show_progress=False)
            n = summary.n_images
            error = (summary.top1 * (1 - summary.top1) / n) ** 0.5
            rows.append(
                dict(
                    model=name,
                    strategy=summary.strategy,
                    placement=label,
                    images=n,
                    top1=round(summary.top1, 4),
                    standard_error=round(error, 4),
                    nfe_per_image=summary.nfe_per_image,
                )
            )
            save(args, rows)
            console.print(f"{name} {summary.strategy} {label}: {summary.top1:.2%} ({n} images)")
    table = Table(title=f"{args.dataset}: top-1 by placement")
    table.add_column("model")
    for placement in placements(rows):
        table.add_column(placement, justify="right")
    for (name, strategy), mine in by_entry(rows).items():
        table.add_row(f"{name} {strategy}", *(f"{r['top1']:.1%}" for r in mine))
    console.print(table)
    save(args, rows)
    console.print(f"wrote {args.json}")
    if args.plot:
        plot(rows, args.dataset, args.plot)


def save(args, rows: list[dict]) -> None:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(dict(dataset=args.dataset, limit=args.limit, rows=rows), indent=2) + "\n")


def placements(rows: list[dict]) -> list[str]:
    """The placements in the order they were run (earlier runs stopped at shift:3)."""
    return list(dict.fromkeys(r["placement"] for r in rows))


def by_entry(rows: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """(model, strategy) -> its rows in placement order; one model may run several strategies."""
    order, entries = placements(rows), {}
    for row in rows:
        entries.setdefault((row["model"], row["strategy"]), []).append(row)
    return {key: sorted(mine, key=lambda r: order.index(r["placement"])) for key, mine in entries.items()}


def plot(rows: list[dict], dataset: str, path: Path) -> None:
    """Top-1 against placement, one line per (model, strategy), the legend under the axes (specs are long)."""
    entries = by_entry(rows)
    fig, ax = plt.subplots(figsize=(6.4, 3.4 + 0.22 * len(entries)))
    labels = placements(rows)
    for (name, strategy), mine in entries.items():
        top1, errors = [100 * r["top1"] for r in mine], [200 * r["standard_error"] for r in mine]
        ax.errorbar(labels, top1, yerr=errors, marker="o", capsize=3, label=f"{name} {strategy}")
    ax.set_ylabel("top-1 (%), ± 2 s.e.")
    ax.set_ylim(0, 100)
    ax.set_title(f"{dataset} test split: the same images, moved", fontsize=9)
    ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
