"""Tables and JSON for results: what the CLI and the benchmarks print."""

from __future__ import annotations

import json
from pathlib import Path

from rich.markup import escape
from rich.table import Table
from rich.tree import Tree as RichTree

from diffclass.errors import DiffclassError


def summary_table(summaries, extra: dict[str, list[str]] | None = None) -> Table:
    """One row per strategy (dataset and model in the title); `extra` adds columns, one cell per row."""
    extra = extra or {}
    datasets = sorted({s.dataset for s in summaries})
    models = sorted({s.model for s in summaries})
    eces = ", ".join(
        f"{s.ece:.3f}" + (f" (stated {s.mean_confidence:.1%} on the mean)" if s.mean_confidence is not None else "")
        for s in summaries
        if s.ece is not None
    )
    caption = f"expected calibration error of the stated top-1 probability: {eces}" if eces else None
    table = Table(title=f"{', '.join(datasets)} test split, model {', '.join(models)}", caption=caption)
    table.add_column("strategy", overflow="fold")
    for column in ("images", "top-1", "top-5", "NFE/img", "GMAC/img", "s/img", *extra):
        table.add_column(column, justify="right", no_wrap=True)
    for i, s in enumerate(summaries):
        gmacs = "-" if s.gmacs_per_image is None else f"{s.gmacs_per_image:.3g}"
        table.add_row(
            s.strategy,
            str(s.n_images),
            f"{s.top1:.2%}",
            f"{s.top5:.2%}",
            f"{s.nfe_per_image:.1f}",
            gmacs,
            f"{s.seconds_per_image:.3f}",
            *(cells[i] for cells in extra.values()),
        )
    return table


def group_table(summary) -> Table:
    """Top-1 and top-5 per group of the data (emoji and glyphs: per style), with each one's standard error."""
    table = Table(title=f"{summary.strategy} by group")
    for column in ("group", "images", "top-1", "± s.e.", "top-5"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for group, row in summary.by_group.items():
        n, top1 = row["n_images"], row["top1"]
        table.add_row(group, str(n), f"{top1:.2%}", f"{(top1 * (1 - top1) / n) ** 0.5:.2%}", f"{row['top5']:.2%}")
    return table


UNFAMILIAR = 2.0  # an image whose best fit errs this many times the model's typical error is called unfamiliar


def classify_table(rows: list[dict]) -> Table:
    table = Table(title="predictions")
    for column in ("image", "prediction", "top classes", "NFEs", "notes"):
        table.add_column(column)
    for row in rows:
        top = ", ".join(f"{t['name']} {t['probability']:.1%}" for t in row["top"])
        notes = list(row["converted"])
        if (row.get("unfamiliar") or 0) >= UNFAMILIAR:
            notes.append(
                f"unlike the images the model learnt from (its best fit errs {row['unfamiliar']:.1f}x as much): "
                "the probabilities are flattened by that factor and the answer means little"
            )
        table.add_row(
            escape(row["path"]), escape(row["prediction"]), escape(top), str(row["nfe"]), "; ".join(notes) or "-"
        )
    return table


def write_json(path: str | Path, data) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise DiffclassError(f"cannot write {path}: {exc.strerror or exc}") from None


def tree_table(tree) -> Table:
    table = Table(title=f"tree: {len(tree.nodes)} nodes, {tree.num_classes} classes, depth {tree.max_depth}")
    for column in ("depth", "internal nodes", "leaves"):
        table.add_column(column, justify="right")
    for depth, (internal, leaves) in enumerate(tree.level_counts()):
        table.add_row(str(depth), str(internal), str(leaves))
    return table


def tree_outline(tree, max_depth: int) -> RichTree:
    def label(node_id: str) -> str:
        node = tree.nodes[node_id]
        if node.is_leaf:
            return f"{escape(node.name)} [dim]#{node.class_index}[/dim]"
        return f"[bold]{escape(node.name)}[/bold] [dim]({len(tree.leaves_under(node_id))} classes)[/dim]"

    def grow(branch: RichTree, node_id: str, depth: int) -> None:
        for child in tree.children(node_id):
            sub = branch.add(label(child))
            if depth + 1 < max_depth:
                grow(sub, child, depth + 1)

    root = RichTree(label(tree.root))
    grow(root, tree.root, 0)
    return root


def bench_table(summaries) -> Table:
    """The summary columns plus NFE and time ratios against the first exhaustive and adaptive runs."""
    extra: dict[str, list[str]] = {}
    for kind in ("exhaustive", "adaptive"):
        ref = reference(summaries, kind)
        if ref is not None:
            extra[f"NFE/{kind[:4]}"] = [f"{s.nfe_per_image / ref.nfe_per_image:.3f}" for s in summaries]
            extra[f"time/{kind[:4]}"] = [f"{s.seconds_per_image / ref.seconds_per_image:.3f}" for s in summaries]
    return summary_table(summaries, extra)


def reference(summaries, kind: str):
    """The first run of a kind: the reference its ratios are computed against."""
    return next((s for s in summaries if s.strategy.startswith(kind + "(") or s.strategy == kind), None)


def pareto_plot(summaries, path: str | Path, title: str = "", levels: dict[str, float] | None = None) -> None:
    """top-1 against NFEs/image (log x), one curve per strategy family; `levels` (label -> top-1) are drawn as
    dashed horizontal lines, e.g. E* per grid, so matched accuracy can be read off."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    families: dict[str, list] = {}
    for s in summaries:
        families.setdefault(_family(s.strategy), []).append(s)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for family, runs in families.items():
        runs = sorted(runs, key=lambda s: s.nfe_per_image)
        ax.plot([r.nfe_per_image for r in runs], [100 * r.top1 for r in runs], "o-", label=family)
    for i, (label, top1) in enumerate((levels or {}).items()):
        ax.axhline(100 * top1, color="0.3", linestyle=("--", ":", "-.")[i % 3], linewidth=1, label=label)
    ax.set_xscale("log")
    label = ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if f"{v:.0e}"[0] in "125" else "")  # 100, 200, 500, ...
    ax.xaxis.set_major_formatter(label)
    ax.xaxis.set_minor_formatter(label)
    ax.set_xlabel("network evaluations per image (log)")
    ax.set_ylabel("top-1 (%)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _family(spec: str) -> str:
    """Runs that differ only in budget share a curve; a rule or a start direction makes a family of its own."""
    from diffclass.registry import parse_spec

    kind, options = parse_spec(spec)
    label = kind
    for marker in ("top-fraction", "within-std", "noisy-first", "middle-out", "clean-first"):
        if marker in spec:
            label += f" {marker}"
    return label + (f" t={options['t']}" if "t" in options else "")


def calibration_table(calibration) -> Table:
    best = max(calibration.windows, key=lambda w: (w[2], -w[0]))
    table = Table(
        title=f"timestep calibration: all {len(calibration.timesteps)} timesteps {calibration.full_range_top1:.1%}, "
        f"best window [{best[0]}, {best[1]}] {best[2]:.1%}"
    )
    for column in ("t", "alone", "window from t"):
        table.add_column(column, justify="right")
    windows = {a: (b, acc) for a, b, acc in calibration.windows}
    for t, acc in zip(calibration.timesteps, calibration.single_top1):
        window = f"[{t}, {windows[t][0]}] {windows[t][1]:.1%}" if t in windows else ""
        table.add_row(str(t), f"{acc:.1%}", window)
    return table


def tree_check_table(checks, title: str) -> Table:
    rules = list(checks[0].survives) if checks else []
    table = Table(title=f"does the true node rank first / survive pruning? {title}")
    for column in ("level", "nodes", "ranks first", *(f"survives {r}" for r in rules)):
        table.add_column(column, justify="right")
    for c in checks:
        table.add_row(str(c.level), str(c.nodes), f"{c.ranks_first:.1%}", *(f"{c.survives[r]:.1%}" for r in rules))
    return table


def front_table(front: dict, confidence: float = 0.9) -> Table:
    """The tuned front with, per point, its paired counts against exhaustive on the same images and the loss it
    may have at `confidence` (what `auto`'s max_loss is compared with)."""
    from diffclass.strategies.auto import loss_bound

    where = front.get("tuned_on", "training images")
    table = Table(title=f"tuned front: {front['candidates']} strategies replayed on {front['images']} images ({where})")
    columns = ("strategy", "top-1", "NFE/img", "GMAC/img", "gained", "lost", f"loss ≤ ({confidence:.0%})")
    for column in columns:
        table.add_column(column, justify="right" if column != "strategy" else "left", overflow="fold")
    for p in front["points"]:
        paired = ("", "", "")
        if "lost" in p:
            bound = loss_bound(p, front["images"], confidence)
            paired = (str(p["gained"]), str(p["lost"]), f"{bound:.1%}")
        table.add_row(
            escape(p["spec"]), f"{p['top1']:.1%}", f"{p['nfe_per_image']:.1f}", f"{p['gmacs_per_image']:.3g}", *paired
        )
    return table


def fit_table(record: dict) -> Table:
    """What `diffclass fit` made, measured on the images its training held out."""
    measured = record["done"]["measure"]
    table = Table(title=f"fitted on {record['dataset']}: measured on {measured['images']} held-out images")
    for column in ("strategy", "top-1", "NFE/img", "s/img", "ECE"):
        table.add_column(column, justify="right" if column != "strategy" else "left", overflow="fold")
    for name in ("default", "exhaustive"):
        row = measured[name]
        table.add_row(
            f"{escape(row['strategy'])} ({name})",
            f"{row['top1']:.1%}",
            f"{row['nfe_per_image']:g}",
            f"{row['seconds_per_image']:.3g}",
            f"{row['ece']:.3f}",
        )
    return table


def robustness_table(results: list[dict], against: dict | None = None) -> Table:
    """Top-1 per corruption (rows) and severity (columns) for each model, with the summary beneath."""
    first = results[0]
    levels = sorted({r["severity"] for r in first["rows"]})
    names = list(dict.fromkeys(r["corruption"] for r in first["rows"]))
    title = f"{first['dataset']}, {first['images']} images: top-1 by corruption and severity"
    table = Table(title=title, caption=_robustness_caption(results, against))
    table.add_column("model")
    table.add_column("corruption")
    for level in levels:
        table.add_column(str(level), justify="right")
    table.add_column("mean", justify="right")
    if against:
        table.add_column(f"CE vs {against['baseline']}", justify="right")
    for result in results:
        for name in names:
            cells = {r["severity"]: r["top1"] for r in result["rows"] if r["corruption"] == name}
            row = [f"{100 * cells[s]:.1f}" if s in cells else "" for s in levels]
            mean = f"{100 * sum(cells.values()) / len(cells):.1f}"
            extra = [f"{against['ce'][name]:.2f}" if name in against["ce"] else ""] if against else []
            if result is not first and against:
                extra = [""]
            table.add_row(escape(result["model"]), name, *row, mean, *extra)
    return table


def _robustness_caption(results: list[dict], against: dict | None) -> str:
    lines = []
    for r in results:
        line = f"{r['model']} ({r['strategy']}): clean {100 * r['clean_top1']:.2f}%"
        if r["mean_corruption_top1"] is not None:
            line += f", mean corruption top-1 {100 * r['mean_corruption_top1']:.2f}%"
        if r["relative_drop"] is not None:
            line += f" ({100 * r['relative_drop']:.1f}% below clean)"
        lines.append(line)
    if against and against["mce"] is not None:
        lines.append(f"mCE against {against['baseline']}: {against['mce']:.3f} (1 = as robust as it; lower is better)")
    return "\n".join(lines)


def attack_table(summary: dict) -> Table:
    """One attack: clean and robust top-1 on the same images, with the checks an attack must pass."""
    eps, in_255 = summary["eps"], summary["eps"] * 255
    shown = f"{round(in_255)}/255" if abs(in_255 - round(in_255)) < 1e-6 else f"{eps:g}"
    table = Table(title=f"{summary['attack']} at eps {shown} on {summary['model']} ({summary['strategy']})")
    for column in (
        "images",
        "clean top-1",
        "robust top-1",
        "steps",
        "EOT draws",
        "non-zero gradient",
        "max ℓ∞",
        "max ℓ2",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        str(summary["images"]),
        f"{100 * summary['clean_top1']:.2f}%",
        f"{100 * summary['robust_top1']:.2f}% ± {100 * summary['robust_standard_error']:.2f}",
        str(summary["steps"]),
        str(summary["eot"]) if summary["eot"] else "none",
        f"{100 * summary['gradient_nonzero']:.0f}% of images",
        f"{summary['max_linf']:.4f}",
        f"{summary['max_l2']:.3f}",
    )
    return table
