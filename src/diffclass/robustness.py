"""Robustness the way the field measures it: a classifier evaluated clean and under every corruption and severity of
a suite (ImageNet-C's 15 test corruptions by default, its 4 held-out ones with `imagenet-c:all`, our own `noise`,
`blur`, `downsample` and the position ones), summarised as the mean corruption accuracy, its relative drop from
clean, and, against a baseline model run on the same images, the corruption error (Hendrycks & Dietterich's CE:
the model's errors summed over severities over the baseline's, per corruption; mCE is their mean, 1.0 = as bad
as the baseline)."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from diffclass.data.base import ImageDataset
from diffclass.data.corruptions import IMAGENET_C, KINDS, MAX_SHIFT, corrupt
from diffclass.data.imagenet_c import HELD_OUT, NAMES, TEST
from diffclass.errors import DiffclassError
from diffclass.evaluation import evaluate, run_identity
from diffclass.records import RecordStore

SUITES = {
    "imagenet-c": TEST,
    "imagenet-c:all": NAMES,
    "imagenet-c:held-out": HELD_OUT,
    "basic": ("noise", "blur", "downsample"),
    "position": ("shift", "centre"),
}


def parse_severities(text: str) -> list[int]:
    """`1-5`, `3` or `1,3,5` -> sorted severities in 1-5."""
    try:
        if "-" in text:
            low, high = (int(v) for v in text.split("-", 1))
            values = list(range(low, high + 1))
        else:
            values = [int(v) for v in text.split(",")]
    except ValueError:
        raise DiffclassError(f"--severities takes 1-5, 3 or 1,3,5; got {text!r}") from None
    if not values or not all(1 <= v <= 5 for v in values):
        raise DiffclassError(f"--severities must lie in 1-5, got {text!r}")
    return sorted(set(values))


def suite_specs(corruptions: str, severities: list[int]) -> list[tuple[str, int, str]]:
    """(corruption, severity, spec) for every corruption the list names (suite names or corruption names, comma
    separated) at every severity; `shift` goes by 1-4 pixels whatever the severities, `centre` has one."""
    names: list[str] = []
    for part in (p.strip() for p in corruptions.split(",")):
        names += SUITES.get(part, (part,))
    rows = []
    for name in dict.fromkeys(names):
        if name == "centre":
            rows.append((name, 1, "centre"))
        elif name == "shift":
            rows += [(name, s, f"shift:{s}") for s in range(1, min(4, MAX_SHIFT) + 1)]
        elif name in KINDS:
            rows += [(name, s, f"{name}:{s}") for s in severities]
        elif name in NAMES:
            rows += [(name, s, f"{IMAGENET_C}{name}:{s}") for s in severities]
        else:
            known = ", ".join([*SUITES, *KINDS, "centre", *NAMES])
            raise DiffclassError(f"unknown corruption {name!r}; known: {known}")
    return rows


def run_suite(
    classifier,
    data: ImageDataset,
    strategy=None,
    corruptions: str = "imagenet-c",
    severities: list[int] | None = None,
    limit: int | None = None,
    out: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Clean and corrupted top-1 of one classifier and strategy on the first `limit` images of `data`; with `out`,
    per-image records under `out/<corruption spec>`, so a rerun resumes where it stopped."""
    strategy = classifier.strategy(strategy)
    if limit is not None:
        data = data.subset(range(min(limit, len(data))))
    rows = suite_specs(corruptions, severities or [1, 2, 3, 4, 5])
    keys = run_identity(classifier, strategy.name)

    def measured(spec: str | None) -> float:
        folder = None if out is None else Path(out) / (spec or "clean").replace(":", "_")
        store = None if folder is None else RecordStore(folder, dict(keys, corruption=spec or "none"))
        with store or nullcontext():
            return evaluate(classifier, corrupt(data, spec), strategy, store=store, show_progress=progress).top1

    clean = measured(None)
    results = [dict(corruption=name, severity=s, top1=round(measured(spec), 4)) for name, s, spec in rows]
    damaging = [r for r in results if r["corruption"] not in ("shift", "centre")]  # position is not damage
    mean = sum(r["top1"] for r in damaging) / len(damaging) if damaging else None
    return dict(
        model=classifier.model_name,
        strategy=strategy.name,
        dataset=data.name,
        images=len(data),
        clean_top1=round(clean, 4),
        mean_corruption_top1=None if mean is None else round(mean, 4),
        relative_drop=None if mean is None or clean == 0 else round((clean - mean) / clean, 4),
        rows=results,
    )


def corruption_errors(result: dict, baseline: dict) -> dict:
    """Per corruption, the model's top-1 errors summed over severities over the baseline's on the same images and
    severities (CE), and their mean (mCE); 1.0 is the baseline's robustness, lower is better."""
    if (result["dataset"], result["images"]) != (baseline["dataset"], baseline["images"]):
        raise DiffclassError("a baseline is compared on the same images: run it on the same dataset and --limit")
    theirs = {(r["corruption"], r["severity"]): 1 - r["top1"] for r in baseline["rows"]}
    errors: dict[str, list[float]] = {}
    for row in result["rows"]:
        key = (row["corruption"], row["severity"])
        if key in theirs and row["corruption"] not in ("shift", "centre"):
            errors.setdefault(row["corruption"], [0.0, 0.0])
            errors[row["corruption"]][0] += 1 - row["top1"]
            errors[row["corruption"]][1] += theirs[key]
    ce = {name: round(mine / max(other, 1e-9), 4) for name, (mine, other) in errors.items()}
    return dict(baseline=baseline["model"], ce=ce, mce=round(sum(ce.values()) / len(ce), 4) if ce else None)


def heatmap(results: list[dict], path: str | Path) -> None:
    """Top-1 per corruption (rows) and severity (columns), one panel per model, clean top-1 in each title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["corruption"] for r in results[0]["rows"]))
    levels = sorted({r["severity"] for r in results[0]["rows"]})
    fig, axes = plt.subplots(
        1, len(results), figsize=(1.2 + 0.55 * len(levels) * len(results) + 1.6, 0.9 + 0.32 * len(names)), squeeze=False
    )
    for ax, result in zip(axes[0], results):
        grid = [[float("nan")] * len(levels) for _ in names]
        for row in result["rows"]:
            grid[names.index(row["corruption"])][levels.index(row["severity"])] = 100 * row["top1"]
        image = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        for i, line in enumerate(grid):
            for j, value in enumerate(line):
                if value == value:
                    ax.text(
                        j, i, f"{value:.0f}", ha="center", va="center", fontsize=7, color="w" if value < 60 else "k"
                    )
        ax.set_xticks(range(len(levels)), [str(s) for s in levels], fontsize=8)
        ax.set_yticks(range(len(names)), names if ax is axes[0][0] else [""] * len(names), fontsize=8)
        ax.set_xlabel("severity (shift: pixels)" if "shift" in names else "severity", fontsize=8)
        ax.set_title(f"{result['model']}\nclean {100 * result['clean_top1']:.1f}%", fontsize=9)
    fig.colorbar(image, ax=axes[0].tolist(), label="top-1 (%)", shrink=0.8)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
