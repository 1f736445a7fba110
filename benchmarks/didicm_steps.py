"""Do more reverse steps help DiDiCM, and more so as the task gets harder? Top-1 against the number of CP steps, for
each head (ours: scores derived from p0; the paper's: free log scores) and each update (our exact step; the
paper's Euler step), clean and under Gaussian noise of severities 1-5, beside the plain twin, in one run.

    python benchmarks/didicm_steps.py --model ours=didicm-glyphs-p0 --model paper=didicm-glyphs \
        --plain plain-glyphs [--steps 1,2,4,8,16] [--limit N] \
        [--json results/didicm_steps.json] [--plot docs/didicm_steps.png]

A model trained on other data than the shipped twin (less of it, a lower resolution) names its own twin after a
comma, `--model r10=runs/didicm-r10,runs/plain-r10`: both are measured on that twin's test images, and its row is
headed `plain (r10)`, so one run compares DiDiCM's lead over its twin across data settings.

Every row sees the same images (the noise is seeded per image id). GMACs per image come from each model's
counted MACs per call, so a step of DiDiRN and a plain call compare by cost, not by count.
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

UPDATES = ("exact", "euler")


def row(clf, data, spec: str, severity: int, limit: int | None) -> dict:
    corrupted = corrupt(data, f"noise:{severity}" if severity else None)
    summary = clf.evaluate(corrupted, spec, limit=limit, show_progress=False)
    n = summary.n_images
    return dict(
        spec=summary.strategy,
        severity=severity,
        images=n,
        top1=round(summary.top1, 4),
        standard_error=round((summary.top1 * (1 - summary.top1) / n) ** 0.5, 4),
        nfe_per_image=summary.nfe_per_image,
        gmacs_per_image=round(summary.nfe_per_image * clf.macs_per_call / 1e9, 4),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="LABEL=DIDICM_MODEL (repeat)")
    parser.add_argument("--plain", default="plain-glyphs", help="the plain twin")
    parser.add_argument("--dataset", default="glyphs")
    parser.add_argument("--steps", default="1,2,4,8,16")
    parser.add_argument("--updates", default=",".join(UPDATES), help="CP updates: exact, euler or both")
    parser.add_argument("--severities", default="0,1,2,3,4,5", help="Gaussian noise severities (0: clean)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, default=Path("results/didicm_steps.json"))
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    severities = [int(s) for s in args.severities.split(",")]

    rows, twins = [], {}

    def twin_data(name: str, head: str):
        """The twin's test images, its rows measured once."""
        if name not in twins:
            plain = diffclass.load(name)
            twins[name] = eval_dataset(plain, args.dataset)
            for severity in severities:
                rows.append(dict(row(plain, twins[name], "plain", severity, args.limit), model=name, head=head))
        return twins[name]

    twin_data(args.plain, "plain")
    updates = args.updates.split(",")
    for entry in args.model:
        label, _, name = entry.partition("=")
        name, _, twin = name.partition(",")
        data = twin_data(twin, f"plain ({label})") if twin else twins[args.plain]
        clf = diffclass.load(name)
        for update in updates:
            for n in steps:
                for severity in severities:
                    spec = f"cp(steps={n};update={update})"
                    rows.append(dict(row(clf, data, spec, severity, args.limit), model=name, head=label))
                    console.print(f"{label} {spec} noise {severity}: {rows[-1]['top1']:.2%}", highlight=False)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dict(dataset=args.dataset, rows=rows), indent=1) + "\n")

    table = Table(title=f"top-1 on {args.dataset} under Gaussian noise ({rows[0]['images']} images)")
    for column in ("head", "spec", *(f"noise {s}" if s else "clean" for s in severities), "GMACs/img"):
        table.add_column(column, justify="left" if column in ("head", "spec") else "right")
    keys = list(dict.fromkeys((r["head"], r["spec"]) for r in rows))
    for head, spec in keys:
        cells = {r["severity"]: r for r in rows if (r["head"], r["spec"]) == (head, spec)}
        table.add_row(
            head,
            spec,
            *(f"{100 * cells[s]['top1']:.1f}" for s in severities),
            f"{cells[severities[0]]['gmacs_per_image']:.3f}",
        )
    console.print(table)
    console.print(f"wrote {args.json}")
    if args.plot:
        if any(r["head"].startswith("plain (") for r in rows):  # models with their own twins: their leads
            plot_gaps(rows, severities, args.plot)
        else:
            plot(rows, severities, args.plot)
        console.print(f"wrote {args.plot}")


def plot(rows: list[dict], severities: list[int], path: Path) -> None:
    """Top-1 against steps, one panel per noise severity, a line per head and update, the plain twin flat."""
    fig, axes = plt.subplots(1, len(severities), figsize=(3 * len(severities), 3.2), sharey=False)
    for ax, severity in zip(axes, severities):
        mine = [r for r in rows if r["severity"] == severity]
        for head in dict.fromkeys(r["head"] for r in mine if r["spec"] != "plain"):
            for update in UPDATES:
                line = [r for r in mine if r["head"] == head and f"update={update}" in r["spec"]]
                if not line and update == "exact":  # the exact update's name leaves it out
                    line = [r for r in mine if r["head"] == head and "update=" not in r["spec"]]
                if not line:
                    continue
                line.sort(key=lambda r: r["nfe_per_image"])
                style = "-" if update == "exact" else "--"
                ax.plot([r["nfe_per_image"] for r in line], [100 * r["top1"] for r in line], style, marker="o",
                        label=f"{head}, {update}")  # fmt: skip
        for twin in (r for r in mine if r["spec"] == "plain"):
            ax.axhline(100 * twin["top1"], color="grey", lw=1, ls=":" if "(" in twin["head"] else "-",
                       label="plain twin" if twin["head"] == "plain" else twin["head"])  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_title("clean" if severity == 0 else f"noise {severity}", fontsize=9)
        ax.set_xlabel("CP steps")
    axes[0].set_ylabel("top-1 (%)")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)


def plot_gaps(rows: list[dict], severities: list[int], path: Path) -> None:
    """Each model's lead over its own twin against the noise severity, one panel per sampler: does DiDiCM gain
    more where the data (less of it, lower resolution) or the images (more noise) make the task harder?"""
    specs = list(dict.fromkeys(r["spec"] for r in rows if r["spec"] != "plain"))
    fig, axes = plt.subplots(1, len(specs), figsize=(3.6 * len(specs), 3.2), sharey=True, squeeze=False)
    for ax, spec in zip(axes[0], specs):
        top1 = {(r["head"], r["severity"]): r["top1"] for r in rows if r["spec"] in (spec, "plain")}
        for label in dict.fromkeys(r["head"] for r in rows if r["spec"] == spec):
            twin = f"plain ({label})" if (f"plain ({label})", severities[0]) in top1 else "plain"
            gaps = [100 * (top1[label, s] - top1[twin, s]) for s in severities]
            ax.plot(severities, gaps, marker="o", label=label)
        ax.axhline(0, color="grey", lw=1)
        ax.set_title(spec, fontsize=9)
        ax.set_xlabel("noise severity (0: clean)")
    axes[0][0].set_ylabel("DiDiCM minus its twin (points)")
    axes[0][-1].legend(fontsize=7, title="training", title_fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)


if __name__ == "__main__":
    main()
