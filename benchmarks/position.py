"""Does a classifier depend on where the object sits? Top-1 on the clean test split, centred on the content's
bounding box, and shifted by 1 to 4 pixels in x and y, for several models in one run.

    python benchmarks/position.py --dataset glyphs \
        --model plain-glyphs=plain --model didicm-glyphs="cp(steps=8)" --model glyphs-allclass="exhaustive(n=32)" \
        [--limit N] [--json results/position_glyphs.json] [--plot docs/position_glyphs.png] [--resume]
    python benchmarks/position.py --replot results/position_glyphs.json [--replot MORE.json] \
        --plot docs/position_glyphs.png

Every model sees the same images (the shift directions are fixed per image id). Each row is MODEL=STRATEGY; the
strategy's NFEs per image are in the JSON beside its top-1, with the standard error of each top-1. Each moved row
also counts the images the model read right as drawn and gets wrong there (`lost`), the reverse (`gained`), and how
many of the lost it reads as a class whose images sit at another height (`lost_to_another_height`: the classes' mean
ink centres, over the clean images, a pixel or more apart in y), the cue a centred crop no longer carries. The JSON
is written after every row; `--resume` keeps the rows it already holds and runs only the others. `--max-shift 3`
stops at three pixels, as the tables made before shift:4 did; `--max-shift 0` runs as drawn and centred only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from rich.table import Table  # noqa: E402

import diffclass  # noqa: E402
from diffclass.data.corruptions import corrupt  # noqa: E402
from diffclass.loading import eval_dataset  # noqa: E402
from diffclass.placement import ink_centres  # noqa: E402
from diffclass.progress import console  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="glyphs")
    parser.add_argument("--model", action="append", default=[], help="MODEL=STRATEGY (repeat)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("results/position_glyphs.json"))
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument(
        "--replot", type=Path, action="append", default=[], help="redraw --plot from the JSON of earlier runs (repeat)"
    )
    parser.add_argument("--resume", action="store_true", help="keep the rows --json holds and run the others")
    parser.add_argument("--max-shift", type=int, default=4, choices=range(0, 5), help="shift:1 to shift:N (default 4)")
    args = parser.parse_args()
    if args.replot:
        saved = [json.loads(path.read_text()) for path in args.replot]
        return plot([row for run in saved for row in run["rows"]], saved[0]["dataset"], args.plot)
    if not args.model:
        parser.error("give at least one --model MODEL=STRATEGY (or --replot JSON --plot PNG)")

    rows = json.loads(args.json.read_text())["rows"] if args.resume and args.json.exists() else []
    for entry in args.model:
        name, _, spec = entry.partition("=")
        clf = diffclass.load(name, seed=args.seed)
        clean = eval_dataset(clf, args.dataset)
        strategy = clf.strategy(spec or None).name
        heights = class_heights(clean)
        for placement in (None, "centre", *(f"shift:{s}" for s in range(1, args.max_shift + 1))):
            label = placement or "as drawn"
            if any((r["model"], r["strategy"], r["placement"]) == (name, strategy, label) for r in rows):
                continue
            summary = clf.evaluate(corrupt(clean, placement), spec or None, limit=args.limit, show_progress=False)
            n = summary.n_images
            error = (summary.top1 * (1 - summary.top1) / n) ** 0.5
            row = dict(
                model=name,
                strategy=summary.strategy,
                placement=label,
                images=n,
                top1=round(summary.top1, 4),
                standard_error=round(error, 4),
                nfe_per_image=summary.nfe_per_image,
            )
            if placement is None:  # what each moved row is compared with
                row["predictions"] = {r.id: r.prediction for r in summary.records}
            else:
                key = (name, strategy, "as drawn")
                drawn = next((r for r in rows if (r["model"], r["strategy"], r["placement"]) == key), {})
                if "predictions" in drawn:
                    row.update(changes(drawn["predictions"], summary.records, heights))
            rows.append(row)
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


def class_heights(dataset) -> list[float]:
    """Per class, the mean ink-centre row of its clean images (NaN for a class with none)."""
    ys, labels = ink_centres(dataset.images)[:, 0], torch.as_tensor(dataset.labels)
    return [
        float(ys[labels == c].mean()) if (labels == c).any() else float("nan") for c in range(len(dataset.class_names))
    ]


def changes(drawn: dict[str, int], records, heights: list[float]) -> dict[str, int]:
    """What moving the images changed: lost (right as drawn, wrong moved), gained, and the lost read as a class
    whose images sit a pixel or more higher or lower."""
    lost = [r for r in records if drawn.get(r.id) == r.label != r.prediction]
    other_height = [r for r in lost if abs(heights[r.label] - heights[r.prediction]) >= 1]
    gained = sum(drawn.get(r.id, r.label) != r.label == r.prediction for r in records)
    return dict(lost=len(lost), gained=gained, lost_to_another_height=len(other_height))


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
    for i, ((name, strategy), mine) in enumerate(entries.items()):
        top1, errors = [100 * r["top1"] for r in mine], [200 * r["standard_error"] for r in mine]
        style = "-" if i < 10 else "--"  # past ten lines the colours repeat
        placed = [r["placement"] for r in mine]
        ax.errorbar(placed, top1, yerr=errors, marker="o", capsize=3, linestyle=style, label=f"{name} {strategy}")
    ax.set_ylabel("top-1 (%), ± 2 s.e.")
    ax.set_ylim(0, 100)
    ax.set_title(f"{dataset} test split: the same images, moved", fontsize=9)
    ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")  # the long specs of the legend whole
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
