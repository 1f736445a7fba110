"""Fast by default: what `diffclass evaluate` gives with no --strategy, against the exhaustive reference.

    python benchmarks/fast_default.py [--limit N] [--original-limit 53] [--noisy-limit 106]
                                      [--json results/fast_default.json]
                                      [--plot docs/fast_default.png] [--replot]

One process, one seed, every glyph test image (424 unless --limit). The reference exhaustive(n=32) on `glyphs`
is one error table of every class on the test images' first 32 slots (exactly the network work of a live
exhaustive(n=32), timed as such; a live run on the first 32 images checks that it gives the same predictions),
clean and under Gaussian noise of severity 3. Sequential against adaptive at matched accuracy is replayed on the
clean table: each family's cheapest schedule within 0.5 points of the reference. Live rows: the untuned
fallback adaptive(keep=22,1;n=4,32), `auto` on `glyphs` and `glyphs-pruned` at their default and at speedup 20
and 50, the plain twin alone and as a prefilter (k = 5, 10, 20) before exhaustive(n=32) and before `auto`; under
noise (on the first --noisy-limit images, the noisy table included) the twin, both models' defaults, the
pruned model at speedup 20 (its front holds twin prefilters) and the exhaustive prefilters. The original
method's full-grid exhaustive(n=64;t=0-999) and the paper-default adaptive(keep=22,1;n=8,64) cost 6,784 and
2,080 NFEs per image, so they run on the first --original-limit images, beside the reference replayed on the
same images. Per-image records and the tables under --records let an interrupted run resume.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.table import Table

import diffclass
from diffclass.errors import DiffclassError
from diffclass.evaluation import evaluate, run_identity
from diffclass.loading import eval_dataset
from diffclass.progress import console
from diffclass.records import RecordStore
from diffclass.replay import ErrorTable
from diffclass.strategies.families import candidate_families

REFERENCE = "exhaustive(n=32)"
TWIN = "plain-glyphs"
ORIGINAL = ["exhaustive(n=64;t=0-999)", "adaptive(keep=22,1;n=8,64)"]
CLEAN = [
    ("glyphs", "adaptive(keep=22,1;n=4,32)"),
    ("glyphs", None),  # the default: auto from the shipped front
    ("glyphs", "auto(speedup=20)"),
    ("glyphs", "auto(speedup=50)"),
    ("glyphs-pruned", None),
    ("glyphs-pruned", "auto(speedup=20)"),
    ("glyphs-pruned", "auto(speedup=50)"),
    (TWIN, None),
    *[("glyphs", f"prefilter(by={TWIN};k={k};then={REFERENCE})") for k in (5, 10, 20)],
    *[("glyphs", f"prefilter(by={TWIN};k={k};then=auto)") for k in (5, 10, 20)],
]
NOISY = [
    (TWIN, None),
    ("glyphs", None),
    ("glyphs-pruned", None),
    ("glyphs-pruned", "auto(speedup=20)"),
    *[("glyphs", f"prefilter(by={TWIN};k={k};then={REFERENCE})") for k in (5, 10, 20)],
]
CORRUPTION = "noise:3"
CHECKED_IMAGES = 32  # the live reference run that the table must reproduce


def reference_table(classifier, data, indices: list[int], records: Path, corruption: str | None) -> tuple:
    """The 32-slot error table of every class on these images, and the seconds its computation took per image
    (kept beside the cached table, so a resumed run still reports them)."""
    folder = records / "tables" / (corruption or "clean")
    seconds_file = folder / f"seconds-{len(indices)}.json"
    started = time.perf_counter()
    table = ErrorTable.cached(folder, classifier, data, indices, slots=32, nodes=False)  # classes only
    if not seconds_file.is_file():
        seconds_file.write_text(json.dumps((time.perf_counter() - started) / len(indices)))
    return table, json.loads(seconds_file.read_text())


def replayed_row(
    classifier, table: ErrorTable, spec: str, seconds: float | None, corruption: str | None, images: slice = slice(None)
) -> dict:
    """A row from the table, with the fields of a live one (top-5 from the replayed ranking)."""
    outcomes, nfes = table.replay(classifier.strategy(spec))
    pairs = list(zip(outcomes, table.labels.tolist(), nfes))[images]
    nfe = sum(n for _, _, n in pairs) / len(pairs)
    return dict(
        model=classifier.model_name,
        strategy=spec,
        asked=f"{spec} (replayed)",
        corruption=corruption or "none",
        images=len(pairs),
        top1=round(sum(o.ranking[0] == y for o, y, _ in pairs) / len(pairs), 4),
        top5=round(sum(y in o.ranking[:5] for o, y, _ in pairs) / len(pairs), 4),
        nfe_per_image=round(nfe, 2),
        gmacs_per_image=round(nfe * classifier.macs_per_call / 1e9, 4),
        seconds_per_image=seconds and round(seconds, 4),
    )


def replay_families(classifier, table: ErrorTable, reference: dict) -> dict:
    """Cheapest sequential and adaptive schedules within 0.5 points of the reference, replayed on one table; the
    families are the ones `diffclass tune` replays (`diffclass.strategies.families`)."""
    every = candidate_families(len(classifier.class_names), table.slots, classifier.tree is not None)
    families = {name: every[name] for name in ("sequential", "adaptive")}
    target = reference["top1"] - 0.005
    out = {"target_top1": round(target, 4), "images": len(table.image_ids), "slots": table.slots}
    for family, specs in families.items():
        points = [(s, *table.top1(classifier.strategy(s))) for s in specs]
        reaching = [p for p in points if p[1] >= target - 1e-9]
        best = min(reaching, key=lambda p: (p[2], -p[1])) if reaching else None
        cheapest = best and dict(spec=best[0], top1=round(best[1], 4), nfe_per_image=round(best[2], 2))
        out[family] = dict(candidates=len(specs), cheapest=cheapest)
    return out


def run_row(model: str, spec: str | None, corruption: str | None, limit: int | None, records: Path, cache: dict):
    classifier = cache.setdefault(model, diffclass.load(model))
    data = eval_dataset(classifier, None, corruption)
    strategy = classifier.strategy(spec)
    keys = run_identity(classifier, strategy.name)
    folder = records / model / (corruption or "clean") / strategy.name.replace("/", "_")
    with RecordStore(folder, keys) as store:
        summary = evaluate(classifier, data, strategy, limit=limit, store=store)
    row = dict(
        model=model,
        strategy=summary.strategy,
        asked=spec or "(default)",
        corruption=corruption or "none",
        images=summary.n_images,
        top1=round(summary.top1, 4),
        top5=round(summary.top5, 4),
        nfe_per_image=round(summary.nfe_per_image, 2),
        gmacs_per_image=summary.gmacs_per_image,
        seconds_per_image=round(summary.seconds_per_image, 4),
    )
    console.print(
        f"{model} {row['asked']} -> {row['strategy']} [{row['corruption']}]: top-1 {row['top1']:.2%}, "
        f"{row['nfe_per_image']:.0f} NFEs, {row['gmacs_per_image']} GMACs",
        markup=False,
    )
    return row, data


def plot(rows: list[dict], path: Path) -> None:
    """One panel per image set; points are numbered (cheapest first) and named in the panel's key, since the
    prefilter compositions crowd a decade of GMACs where labels beside the points would overlap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(14, 6.5), sharey=False)
    for ax, corruption in zip(axes, ("none", CORRUPTION)):
        shown = [r for r in rows if r["corruption"] == corruption]
        shown = [r for r in shown if r["images"] == shown[0]["images"]]  # the originals ran on fewer images
        numbers: dict[tuple, list[str]] = {}  # a point two requests share is numbered once, "3,4"
        for n, row in enumerate(sorted(shown, key=lambda r: (r["gmacs_per_image"], -r["top1"])), start=1):
            marker = {"glyphs": "o", "glyphs-pruned": "s", TWIN: "^"}[row["model"]]
            colour = "tab:green" if row["strategy"].startswith("prefilter") else "tab:blue"
            colour = "tab:red" if row["strategy"] == REFERENCE and row["model"] == "glyphs" else colour
            asked = row["asked"] if row["asked"] != "(default)" else "default"
            label = f"{n}  {row['model']}: {asked}".replace(f"by={TWIN};", "")
            x, y = row["gmacs_per_image"], row["top1"] * 100
            ax.scatter(x, y, marker=marker, color=colour, s=42, label=label)
            numbers.setdefault((x, y), []).append(str(n))
        for (x, y), names in numbers.items():
            ax.annotate(",".join(names), (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("GMACs per image (log)")
        ax.set_ylabel("top-1 (%)")
        images = shown[0]["images"]
        where = "clean" if corruption == "none" else f"Gaussian noise, severity {CORRUPTION.split(':')[1]}"
        ax.set_title(f"{where} ({images} images)")
        ax.grid(alpha=0.3)
        ax.legend(
            fontsize=6,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.13),
            ncol=2,
            frameon=False,
            handletextpad=0.3,
            columnspacing=1.0,
        )
    fig.suptitle(
        "glyphs test images: top-1 against compute (red: exhaustive(n=32), green: plain-twin prefilter; "
        "circle: glyphs, square: glyphs-pruned, triangle: plain twin)",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N test images (default: all 424)")
    parser.add_argument("--original-limit", type=int, default=53, help="images for the two full-cost originals")
    parser.add_argument("--noisy-limit", type=int, default=106, help="images for the rows under noise")
    parser.add_argument("--records", type=Path, default=Path("runs/fast_default"), help="records and tables (resume)")
    parser.add_argument("--json", type=Path, default=Path("results/fast_default.json"))
    parser.add_argument("--plot", type=Path, default=Path("docs/fast_default.png"))
    parser.add_argument("--replot", action="store_true", help="only draw --plot again from the rows in --json")
    args = parser.parse_args()
    if args.replot:
        plot(json.loads(args.json.read_text())["rows"], args.plot)
        console.print(f"wrote {args.plot}")
        return

    cache: dict = {"glyphs": diffclass.load("glyphs")}
    glyphs = cache["glyphs"]
    rows: list[dict] = []
    out: dict = dict(rows=rows, checks={})

    def save() -> None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")

    tables = {}
    limits = {None: args.limit, CORRUPTION: min(args.noisy_limit, args.limit or args.noisy_limit)}
    for corruption in (None, CORRUPTION):
        data = eval_dataset(glyphs, None, corruption)
        indices = list(range(min(limits[corruption] or len(data), len(data))))
        table, seconds = reference_table(glyphs, data, indices, args.records, corruption)
        tables[corruption] = table
        rows.append(replayed_row(glyphs, table, REFERENCE, seconds, corruption))
    reference, noisy_reference = rows
    checked = min(CHECKED_IMAGES, reference["images"])
    live, _ = run_row("glyphs", REFERENCE, None, checked, args.records, cache)
    replayed = replayed_row(glyphs, tables[None], REFERENCE, None, None, slice(0, checked))
    if (live["top1"], live["top5"], live["nfe_per_image"]) != (
        replayed["top1"],
        replayed["top5"],
        replayed["nfe_per_image"],
    ):
        raise SystemExit(f"the table gives {replayed} on the first {checked} images, a live run {live}")
    out["checks"]["table_equals_live_reference"] = dict(images=checked, top1=live["top1"])
    out["replayed"] = replay_families(glyphs, tables[None], reference)
    save()

    for corruption, plan in ((None, CLEAN), (CORRUPTION, NOISY)):
        for model, spec in plan:
            try:
                row, _ = run_row(model, spec, corruption, limits[corruption], args.records, cache)
            except DiffclassError as exc:  # e.g. no tuned strategy of this model is that fast
                out["unreachable"] = out.get("unreachable", []) + [dict(model=model, asked=spec, why=str(exc))]
                console.print(f"{model} {spec}: {exc}", markup=False)
                continue
            rows.append(row)
            if model == "glyphs" and spec is None:  # the default's own choice, replayed, must give the same
                again = replayed_row(glyphs, tables[corruption], row["strategy"], None, corruption)
                same = (again["top1"], again["nfe_per_image"]) == (row["top1"], row["nfe_per_image"])
                out["checks"][f"default_equals_replay_{corruption or 'clean'}"] = same
            save()
    subset = min(args.original_limit, reference["images"])
    for spec in ORIGINAL:
        rows.append(run_row("glyphs", spec, None, subset, args.records, cache)[0])
    part = replayed_row(glyphs, tables[None], REFERENCE, reference["seconds_per_image"], None, slice(0, subset))
    rows.append(dict(part, asked=f"{REFERENCE} (replayed, first {subset} images)"))
    save()

    table = Table(title=f"against {REFERENCE} on glyphs ({reference['images']} images; the originals on {subset})")
    for column in (
        "model",
        "asked",
        "strategy",
        "noise",
        "images",
        "top-1",
        "points",
        "NFEs/img",
        "GMACs/img",
        "less compute",
        "s/img",
    ):
        table.add_column(
            column, justify="left" if column in ("model", "asked", "strategy") else "right", overflow="fold"
        )
    for row in rows:
        base = noisy_reference if row["corruption"] != "none" else part if row["images"] == subset else reference
        seconds = row["seconds_per_image"]
        table.add_row(
            row["model"],
            row["asked"],
            row["strategy"],
            row["corruption"],
            str(row["images"]),
            f"{row['top1']:.2%}",
            f"{(row['top1'] - base['top1']) * 100:+.2f}",
            f"{row['nfe_per_image']:.0f}",
            f"{row['gmacs_per_image']:.3g}",
            f"{reference['gmacs_per_image'] / row['gmacs_per_image']:.1f}x",
            "" if seconds is None else f"{seconds:.3f}",
        )
    console.print(table)
    console.print(f"replayed on the test table: {json.dumps(out['replayed'])}", markup=False)
    console.print(f"checks: {json.dumps(out['checks'])}", markup=False)
    plot(rows, args.plot)
    console.print(f"wrote {args.json} and {args.plot}")


if __name__ == "__main__":
    main()
