"""DiDiCM against its plain twin and the generative diffusion classifier, over corruption severities and data sizes.

    python benchmarks/didicm_corruptions.py --didicm runs/didicm-glyphs --plain runs/plain-glyphs \
        [--didicm-small runs/didicm-glyphs-25 --plain-small runs/plain-glyphs-25] [--diffusion glyphs] \
        [--kind downsample] [--limit N] [--diffusion-limit N] [--records DIR] [--plot docs/didicm_corruptions.png]

For every severity 0-5 of one corruption kind, in one run with one seed: top-1 / top-5 of the plain classifier,
DiDiCM-CP with 1, 2, 4 and 8 steps, DiDiCM-CL (N=16, 2 steps), and (with --diffusion) the generative diffusion
classifier with --diffusion-strategy (on the first --diffusion-limit images: it costs hundreds of NFEs per image,
the others at most 32; its row says how many images it saw). The "-small" models are the same recipes trained on
a fraction of the data (`diffclass didicm train --data-fraction 0.25`).

Repeat --didicm/--plain (and the -small pair) once per training seed, in the same order: a half-point gap on a few
hundred test images is within the spread between training seeds, so the tables give the mean over seeds (with
the lowest and highest seed when there are several) and the CP-8 minus plain gap per seed and on average. With
--records every evaluation keeps its per-image records there and a rerun reuses them.
"""

from __future__ import annotations

import argparse
import functools
import json
from contextlib import nullcontext
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.table import Table  # noqa: E402

from diffclass.bench import run_folder  # noqa: E402
from diffclass.classifier import Classifier  # noqa: E402
from diffclass.data import load_dataset  # noqa: E402
from diffclass.data.corruptions import corrupt  # noqa: E402
from diffclass.didicm.classifier import DiDiCMClassifier  # noqa: E402
from diffclass.evaluation import evaluate  # noqa: E402
from diffclass.hub import weights_digest  # noqa: E402
from diffclass.progress import console  # noqa: E402
from diffclass.records import RecordStore  # noqa: E402

DIDICM_SPECS = ("cp(steps=1)", "cp(steps=2)", "cp(steps=4)", "cp(steps=8)", "cl(N=16;steps=2)")
GAP_ROW, BASE_ROW = "DiDiCM cp(steps=8)", "plain"


def rows_for(plains: list[Path], didicms: list[Path]) -> list[tuple[str, list, str]]:
    """(row name, one classifier per training seed, spec) for one data size."""
    if len(plains) != len(didicms):
        raise SystemExit(f"error: {len(didicms)} DiDiCM models but {len(plains)} plain ones; give one pair per seed")
    didicm_clfs = [DiDiCMClassifier.load(path) for path in didicms]
    rows = [(BASE_ROW, [DiDiCMClassifier.load(path) for path in plains], "plain")]
    return rows + [(f"DiDiCM {spec}", didicm_clfs, spec) for spec in DIDICM_SPECS]


digest_once = functools.cache(weights_digest)  # one read of each model's weights per run


def spread(values: list[float]) -> str:
    """Mean top-1, with the lowest and highest training seed when there are several."""
    mean = sum(values) / len(values)
    return f"{mean:.1%}" if len(values) == 1 else f"{mean:.1%} [{min(values):.1%}-{max(values):.1%}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--didicm", type=Path, action="append", required=True, help="repeat once per training seed")
    parser.add_argument("--plain", type=Path, action="append", required=True, help="in the same order as --didicm")
    parser.add_argument("--didicm-small", type=Path, action="append", default=[])
    parser.add_argument("--plain-small", type=Path, action="append", default=[])
    parser.add_argument("--small-label", default="25%")
    parser.add_argument("--diffusion", default=None, help="a diffusion model trained on all the data (e.g. glyphs)")
    parser.add_argument("--diffusion-strategy", default="adaptive(keep=22,1;n=8,64)")
    parser.add_argument("--kind", default="downsample", choices=["noise", "blur", "downsample"])
    parser.add_argument("--severities", default="0,1,2,3,4,5")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--diffusion-limit", type=int, default=None, help="images for the diffusion classifier")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--records", type=Path, default=None, help="keep per-image records here; reruns reuse them")
    parser.add_argument("--out", type=Path, default=Path("results/didicm_corruptions.json"))
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()

    sizes = {"100%": rows_for(args.plain, args.didicm)}
    if args.didicm_small or args.plain_small:
        sizes[args.small_label] = rows_for(args.plain_small, args.didicm_small)
    if args.diffusion:
        diffusion = Classifier.load(args.diffusion, seed=args.seed)
        sizes["100%"].append((f"diffusion {args.diffusion_strategy}", [diffusion], args.diffusion_strategy))
    first = sizes["100%"][0][1][0]
    clean = load_dataset(first.info.dataset, "test", first.info.image_size, first.info.channels, first.class_names)
    severities = [int(s) for s in args.severities.split(",")]
    results = []
    for size, rows in sizes.items():
        for severity in severities:
            data = corrupt(clean, f"{args.kind}:{severity}")
            for name, clfs, spec in rows:
                for clf in clfs:
                    limit = args.diffusion_limit if clf.scorer is not None and args.diffusion_limit else args.limit
                    store = None
                    if args.records:
                        weights = digest_once(clf.model_name)
                        key = f"{clf.model_name}|{weights}|{spec}|{data.name}|seed={args.seed}|limit={limit}"
                        store = RecordStore(run_folder(args.records, key), dict(key=key))
                    with store or nullcontext():
                        summary = evaluate(clf, data, spec, limit=limit, show_progress=False, store=store)
                    results.append(dict(summary.to_json(), data=size, row=name, severity=severity, kind=args.kind))
                    console.print(f"{size} {name} ({clf.model_name}) {args.kind}:{severity}: top-1 {summary.top1:.2%}")

    def top1s(size: str, row: str, severity: int) -> list[float]:
        return [r["top1"] for r in results if (r["data"], r["row"], r["severity"]) == (size, row, severity)]

    summary_rows = []
    for size, rows in sizes.items():
        seeds = len(rows[0][1])
        table = Table(title=f"top-1 (top-5) by {args.kind} severity, {size} of the training data, {seeds} seed(s)")
        table.add_column("classifier")
        table.add_column("images", justify="right")
        table.add_column("NFEs", justify="right")
        for severity in severities:
            table.add_column(str(severity), justify="right")
        for name, _, _ in rows:
            mine = [r for r in results if r["data"] == size and r["row"] == name]
            cells = []
            for severity in severities:
                at = [r for r in mine if r["severity"] == severity]
                top5 = sum(r["top5"] for r in at) / len(at)
                cells.append(f"{spread([r['top1'] for r in at])} ({top5:.0%})")
            table.add_row(name, str(mine[0]["n_images"]), f"{mine[0]['nfe_per_image']:.0f}", *cells)
        console.print(table)
        per_seed = [
            [100 * (cp - plain) for cp, plain in zip(top1s(size, GAP_ROW, s), top1s(size, BASE_ROW, s))]
            for s in severities
        ]
        means = [sum(g) / len(g) for g in per_seed]
        summary_rows.append(dict(data=size, seeds=seeds, severities=severities, gap_per_seed=per_seed, gap_mean=means))
        console.print(
            f"{size}: DiDiCM-CP(8) minus plain, points by severity, mean of {seeds} seed(s): "
            + ", ".join(f"{g:+.1f}" for g in means)
        )
        if seeds > 1:
            for k in range(seeds):
                console.print(f"  training seed #{k + 1}: " + ", ".join(f"{g[k]:+.1f}" for g in per_seed))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(dict(runs=results, gaps=summary_rows), indent=2) + "\n")
    console.print(f"wrote {args.out}")
    if args.plot:
        fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.2), squeeze=False)
        for ax, (size, rows) in zip(axes[0], sizes.items()):
            for name, _, _ in rows:
                per_severity = [top1s(size, name, s) for s in severities]
                mean = [100 * sum(v) / len(v) for v in per_severity]
                (line,) = ax.plot(severities, mean, marker="o", label=name)
                if len(per_severity[0]) > 1:
                    low, high = ([100 * f(v) for v in per_severity] for f in (min, max))
                    ax.fill_between(severities, low, high, color=line.get_color(), alpha=0.15, linewidth=0)
            seeds = len(rows[0][1])
            band = "\nmean of the seeds, band: lowest to highest" if seeds > 1 else ""
            ax.set(
                title=f"{size} of the training data, {seeds} seed{'s' * (seeds > 1)}{band}",
                xlabel=f"{args.kind} severity",
                ylabel="top-1 (%)",
            )
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=8)
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=120)
        console.print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
