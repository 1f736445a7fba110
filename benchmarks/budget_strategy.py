"""Pick the most accurate strategy within a compute budget, on test images kept apart from those it is reported on.

    python benchmarks/budget_strategy.py --model glyphs-pruned --reference-model glyphs \
        --reference "exhaustive(n=32)" --speedup 20 --skip 106 \
        [--json results/budget_strategy.json] [--plot docs/budget_strategy.png]

Selection images are the test images after the first --skip, which stay unseen for the run that reports the
chosen strategy (e.g. combined_speedup.py --limit 106). The budget is the reference strategy's compute per image
(NFEs x MACs per call, on the reference model, on the selection images) divided by --speedup. Every candidate
of the family `diffclass tune` replays (exhaustive budgets, staged adaptive schedules, sequential tests, timestep
beams and hierarchical descents: `diffclass.strategies.families`) is replayed on one error table per model: every
class and tree node on the first --slots slots, computed once and cached under --work, so
hundreds of strategies cost one exhaustive pass. The winner is the most accurate candidate within the budget, the
cheaper one on a tie.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.table import Table  # noqa: E402

from diffclass.backbones import call_cost  # noqa: E402
from diffclass.classifier import Classifier  # noqa: E402
from diffclass.data import load_dataset  # noqa: E402
from diffclass.errors import DiffclassError  # noqa: E402
from diffclass.progress import console  # noqa: E402
from diffclass.registry import parse_spec  # noqa: E402
from diffclass.replay import ErrorTable  # noqa: E402
from diffclass.strategies.families import candidate_specs  # noqa: E402


def error_table(classifier: Classifier, skip: int, count: int | None, slots: int, work: Path) -> ErrorTable:
    """The classifier's error table on the selection images, cached under the digest of its model's weights."""
    data = load_dataset(classifier.info.dataset, "test", classifier.info.image_size)
    stop = len(data) if count is None else min(len(data), skip + count)
    if skip >= stop:
        raise SystemExit(f"error: no selection images: the test set has {len(data)} images and --skip is {skip}")
    return ErrorTable.cached(work, classifier, data, range(skip, stop), slots)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="the model whose strategy is chosen (e.g. a pruned folder)")
    parser.add_argument("--reference-model", default="glyphs")
    parser.add_argument("--reference", default="exhaustive(n=32)", help="the strategy the budget is measured from")
    parser.add_argument("--speedup", type=float, default=20.0, help="budget = reference compute / speedup")
    parser.add_argument("--skip", type=int, default=106, help="test images left for the report run")
    parser.add_argument("--count", type=int, default=None, help="selection images (default: the rest)")
    parser.add_argument("--slots", type=int, default=64, help="slots per candidate in the model's error table")
    parser.add_argument("--reference-slots", type=int, default=32, help="slots in the reference model's table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("runs/budget"), help="where error tables are cached")
    parser.add_argument("--json", type=Path, default=Path("results/budget_strategy.json"))
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--show", type=int, default=15, help="rows of the printed table")
    args = parser.parse_args()

    reference_clf = Classifier.load(args.reference_model, seed=args.seed)
    clf = Classifier.load(args.model, seed=args.seed)
    reference_macs, macs = call_cost(reference_clf.backbone)[0], call_cost(clf.backbone)[0]
    reference_strategy = reference_clf.strategy(args.reference)  # a bad spec fails before the long table
    reference_table = error_table(reference_clf, args.skip, args.count, args.reference_slots, args.work)
    reference_top1, reference_nfe = reference_table.top1(reference_strategy)
    budget = reference_nfe * reference_macs / args.speedup / macs
    console.print(
        f"reference {args.reference} on {args.reference_model}: {reference_top1:.2%} on {len(reference_table.labels)}"
        f" images at {reference_nfe:.0f} NFEs; budget {budget:.0f} NFEs/image on {args.model}"
    )

    table = error_table(clf, args.skip, args.count, args.slots, args.work)
    own_top1, _ = table.top1(clf.strategy(args.reference))
    console.print(f"{args.reference} on {args.model}: {own_top1:.2%} (the model against the reference, same strategy)")
    specs = candidate_specs(len(clf.class_names), args.slots, clf.tree is not None)  # what `diffclass tune` replays
    rows = []
    for spec in specs:
        top1, nfe = table.top1(clf.strategy(spec))
        compute_ratio = reference_nfe * reference_macs / (nfe * macs)
        rows.append(dict(strategy=spec, top1=top1, nfe_per_image=nfe, compute_ratio=compute_ratio))
    rows.sort(key=lambda r: (-r["top1"], r["nfe_per_image"]))
    within = [r for r in rows if r["nfe_per_image"] <= budget]
    if not within:
        raise SystemExit(f"error: no candidate fits {budget:.0f} NFEs/image; lower --speedup")
    chosen = within[0]

    shown = Table(title=f"within {args.speedup:g}x less compute than {args.reference} ({len(table.labels)} images)")
    for col in ("strategy", "top-1", "points", "NFEs/img", "less compute"):
        shown.add_column(col, justify="left" if col == "strategy" else "right")
    for row in within[: args.show]:
        shown.add_row(
            row["strategy"],
            f"{row['top1']:.2%}",
            f"{100 * (row['top1'] - reference_top1):+.2f}",
            f"{row['nfe_per_image']:.0f}",
            f"{row['compute_ratio']:.1f}x",
        )
    console.print(shown)
    console.print(f"chosen: {chosen['strategy']}")

    reference = dict(
        model=args.reference_model,
        strategy=args.reference,
        top1=reference_top1,
        nfe=reference_nfe,
        top1_on_model=own_top1,
    )
    result = dict(
        model=args.model,
        reference=reference,
        speedup=args.speedup,
        budget_nfe=budget,
        macs_per_call=macs,
        reference_macs_per_call=reference_macs,
        selection_images=table.image_ids,
        chosen=chosen,
        candidates=rows,
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.json}")
    if args.plot:
        plot(rows, chosen, reference_top1, len(table.labels), args)


def plot(rows: list[dict], chosen: dict, reference_top1: float, n_images: int, args) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for kind, marker in (("exhaustive", "x"), ("adaptive", "o"), ("sequential", "v"), ("hdc", "^"), ("beam", "s")):
        mine = [r for r in rows if parse_spec(r["strategy"])[0] == kind]
        ax.scatter(
            [r["compute_ratio"] for r in mine],
            [100 * r["top1"] for r in mine],
            s=12,
            marker=marker,
            alpha=0.5,
            label=f"{kind} candidates",
        )
    ax.scatter(
        [chosen["compute_ratio"]],
        [100 * chosen["top1"]],
        s=120,
        marker="*",
        color="k",
        zorder=3,
        label=f"chosen: {chosen['strategy']}",
    )
    ax.axhline(100 * reference_top1, color="grey", ls="--", label=f"{args.reference} on {args.reference_model}")
    ax.axhline(100 * reference_top1 - 1.5, color="grey", ls=":", label="1.5 points below it")
    ax.axvline(args.speedup, color="r", ls=":", label=f"{args.speedup:g}x less compute")
    ax.set_xscale("log")
    ratio_label = matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}x" if f"{value:g}"[0] in "1235" else "")
    ax.xaxis.set_major_formatter(ratio_label)
    ax.xaxis.set_minor_formatter(ratio_label)
    ax.set_xlabel(f"less compute than {args.reference} on {args.reference_model} (NFEs x MACs per call)")
    ax.set_ylabel("top-1 on the selection images (%)")
    ax.set_ylim(max(0, 100 * reference_top1 - 25), 100)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(f"{args.model}: candidates replayed on {n_images} held-out test images", fontsize=9)
    fig.tight_layout()
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=120)
    console.print(f"wrote {args.plot}")


if __name__ == "__main__":
    try:
        main()
    except DiffclassError as exc:  # a bad model, spec or cached table: one line, not a traceback
        raise SystemExit(f"error: {exc}") from None
