"""DiDiCM against its plain twin and the generative diffusion classifier, over corruption severities and data sizes.

    python benchmarks/didicm_corruptions.py --didicm runs/didicm-glyphs --plain runs/plain-glyphs \
        [--didicm-small runs/didicm-glyphs-25 --plain-small runs/plain-glyphs-25] [--diffusion glyphs] \
        [--kind downsample] [--limit N] [--diffusion-limit N] [--plot docs/didicm_corruptions.png]

For every severity 0-5 of one corruption kind, in one run with one seed: top-1 / top-5 of the plain classifier,
DiDiCM-CP with 1, 2, 4 and 8 steps, DiDiCM-CL (N=16, 2 steps), and (with --diffusion) the generative diffusion
classifier with --diffusion-strategy (on the first --diffusion-limit images: it costs hundreds of NFEs per image,
the others at most 32; its row says how many images it saw). The "-small" models are the same recipes trained on
a fraction of the data (`diffclass didicm train --data-fraction 0.25`). Prints one table per data size and the
CP-8 minus plain gap.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.table import Table  # noqa: E402

from diffclass.classifier import Classifier  # noqa: E402
from diffclass.data import load_dataset  # noqa: E402
from diffclass.data.corruptions import corrupt  # noqa: E402
from diffclass.didicm.classifier import DiDiCMClassifier  # noqa: E402
from diffclass.evaluation import evaluate  # noqa: E402
from diffclass.progress import console  # noqa: E402

DIDICM_SPECS = ("cp(steps=1)", "cp(steps=2)", "cp(steps=4)", "cp(steps=8)", "cl(N=16;steps=2)")


def rows_for(plain: Path, didicm: Path) -> list[tuple[str, object, str]]:
    """(row name, classifier, spec) for one data size."""
    didicm_clf = DiDiCMClassifier.load(didicm)
    rows = [("plain", DiDiCMClassifier.load(plain), "plain")]
    return rows + [(f"DiDiCM {spec}", didicm_clf, spec) for spec in DIDICM_SPECS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--didicm", type=Path, required=True)
    parser.add_argument("--plain", type=Path, required=True)
    parser.add_argument("--didicm-small", type=Path)
    parser.add_argument("--plain-small", type=Path)
    parser.add_argument("--small-label", default="25%")
    parser.add_argument("--diffusion", default=None, help="a diffusion model trained on all the data (e.g. glyphs)")
    parser.add_argument("--diffusion-strategy", default="adaptive")
    parser.add_argument("--kind", default="downsample", choices=["noise", "blur", "downsample"])
    parser.add_argument("--severities", default="0,1,2,3,4,5")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--diffusion-limit", type=int, default=None, help="images for the diffusion classifier")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/didicm_corruptions.json"))
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()

    sizes = {"100%": rows_for(args.plain, args.didicm)}
    if args.didicm_small and args.plain_small:
        sizes[args.small_label] = rows_for(args.plain_small, args.didicm_small)
    if args.diffusion:
        diffusion = Classifier.load(args.diffusion, seed=args.seed)
        sizes["100%"].append((f"diffusion {args.diffusion_strategy}", diffusion, args.diffusion_strategy))
    first = sizes["100%"][0][1]
    clean = load_dataset(first.info.dataset, "test", first.info.image_size, first.info.channels, first.class_names)
    severities = [int(s) for s in args.severities.split(",")]
    results = []
    for size, rows in sizes.items():
        for severity in severities:
            data = corrupt(clean, f"{args.kind}:{severity}")
            for name, clf, spec in rows:
                limit = args.diffusion_limit if isinstance(clf, Classifier) and args.diffusion_limit else args.limit
                summary = evaluate(clf, data, spec, limit=limit, show_progress=False)
                results.append(dict(summary.to_json(), data=size, row=name, severity=severity, kind=args.kind))
                console.print(f"{size} {name} {args.kind}:{severity}: top-1 {summary.top1:.2%}")
    for size, rows in sizes.items():
        table = Table(title=f"top-1 (top-5) by {args.kind} severity, {size} of the training data")
        table.add_column("classifier")
        table.add_column("images", justify="right")
        table.add_column("NFEs", justify="right")
        for severity in severities:
            table.add_column(str(severity), justify="right")
        for name, _, _ in rows:
            mine = [r for r in results if r["data"] == size and r["row"] == name]
            table.add_row(name, str(mine[0]["n_images"]), f"{mine[0]['nfe_per_image']:.0f}",
                          *(f"{r['top1']:.1%} ({r['top5']:.0%})" for r in mine))  # fmt: skip
        console.print(table)
        gaps = [
            100 * (cp["top1"] - plain["top1"])
            for cp, plain in zip(
                [r for r in results if r["data"] == size and r["row"] == "DiDiCM cp(steps=8)"],
                [r for r in results if r["data"] == size and r["row"] == "plain"],
            )
        ]
        console.print(f"{size}: DiDiCM-CP(8) minus plain, points by severity: " + ", ".join(f"{g:+.1f}" for g in gaps))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    if args.plot:
        fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.2), squeeze=False)
        for ax, (size, rows) in zip(axes[0], sizes.items()):
            for name, _, _ in rows:
                mine = [r for r in results if r["data"] == size and r["row"] == name]
                ax.plot(severities, [100 * r["top1"] for r in mine], marker="o", label=name)
            ax.set(title=f"{size} of the training data", xlabel=f"{args.kind} severity", ylabel="top-1 (%)")
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=8)
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=120)
        console.print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
