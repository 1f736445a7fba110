"""All-class heads: one network call scores every class, against the teacher's exhaustive(n=32).

    python benchmarks/all_class_heads.py [--student glyphs-allclass] [--limit N] [--noisy-limit 106]
                                         [--json results/all_class_heads.json]
                                         [--plot docs/all_class_heads.png]

One process, one seed, every glyph test image (424 unless --limit). The reference is the class-conditional
teacher `glyphs` with exhaustive(n=32), replayed from the error table `benchmarks/fast_default.py` caches under
--tables, or, when that cache is absent, its rows in --reference (the same seed and images, as fast_default.py
measured them; computing the table again costs about 80 minutes on 2 CPU cores); the teacher also runs it live
on the first --timed images, so the seconds ratios are measured side by side in this run. The student runs
exhaustive with n = 8, 16, 32, 64 and one adaptive schedule (one call fills every class of a slot, so
elimination saves no calls: it costs what its last stage's exhaustive costs). Robustness: Gaussian noise of
severity 0-5 on the first --noisy-limit images for the student's exhaustive(n=32), the teacher's default (`auto`
from its front) and the plain twin, and the teacher's exhaustive(n=32) at severity 3 (cached table or row).
Per-image records under --records let an interrupted run resume.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fast_default import REFERENCE, TWIN, reference_table, replayed_row, run_row
from rich.table import Table

import diffclass
from diffclass.loading import eval_dataset
from diffclass.progress import console

TEACHER = "glyphs"
STUDENT_SPECS = [*(f"exhaustive(n={n})" for n in (8, 16, 32, 64)), "adaptive(keep=10,1;n=8,32)"]
SEVERITIES = range(6)


def noise(severity: int) -> str | None:
    return f"noise:{severity}" if severity else None


def plot(rows: list[dict], student: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (cost, robust) = plt.subplots(1, 2, figsize=(12, 4.8))
    for row in (r for r in rows if r["corruption"] == "none" and r["images"] == rows[0]["images"]):
        colour = {TEACHER: "tab:red", student: "tab:blue", TWIN: "tab:gray"}[row["model"]]
        cost.scatter(row["gmacs_per_image"], row["top1"] * 100, color=colour)
        cost.annotate(
            f"{row['model']}: {row['strategy']}",
            (row["gmacs_per_image"], row["top1"] * 100),
            fontsize=6,
            xytext=(3, 2),
            textcoords="offset points",
        )
    cost.set_xscale("log")
    cost.set_xlabel("GMACs per image (log)")
    cost.set_ylabel("top-1 (%)")
    cost.set_title(f"clean, {rows[0]['images']} test images")
    for model, spec, colour in (
        (student, REFERENCE, "tab:blue"),
        (TEACHER, "(default)", "tab:red"),
        (TWIN, "(default)", "tab:gray"),
    ):
        points = sorted(
            (r["severity"], r["top1"] * 100)
            for r in rows
            if r.get("severity") is not None and r["model"] == model and r["asked"] == spec
        )
        robust.plot(
            *zip(*points), marker="o", color=colour, label=f"{model}: {'default' if spec == '(default)' else spec}"
        )
    for row in (r for r in rows if r["model"] == TEACHER and r["asked"].startswith(REFERENCE) and r.get("severity")):
        robust.scatter(
            row["severity"], row["top1"] * 100, marker="*", s=120, color="tab:red", label=f"{TEACHER}: {REFERENCE}"
        )
    robust.set_xlabel("Gaussian noise severity")
    robust.set_ylabel("top-1 (%)")
    robust.set_title(f"under noise, the first {max(r['images'] for r in rows if r.get('severity'))} test images")
    robust.legend(fontsize=7)
    for ax in (cost, robust):
        ax.grid(alpha=0.3)
    fig.suptitle(f"{student} (one call per slot for all classes) against its teacher {TEACHER}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)


def reference_row(teacher, data, indices: list[int], corruption: str | None, args) -> dict:
    """The teacher's exhaustive(n=32) on these images: replayed from fast_default's cached table, else its row."""
    if (args.tables / "tables" / (corruption or "clean")).is_dir() or not args.reference.is_file():
        table, _ = reference_table(teacher, data, indices, args.tables, corruption)
        return replayed_row(teacher, table, REFERENCE, None, corruption)
    for row in json.loads(args.reference.read_text())["rows"]:
        if (row["model"], row["strategy"], row["corruption"], row["images"]) == (
            TEACHER,
            REFERENCE,
            corruption or "none",
            len(indices),
        ):
            return dict(row, seconds_per_image=None, asked=f"{REFERENCE} (from {args.reference})")
    raise SystemExit(f"{args.reference} has no {REFERENCE} row on {len(indices)} images ({corruption or 'clean'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="glyphs-allclass", help="an all-class model (name or folder)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N test images (default: all 424)")
    parser.add_argument("--noisy-limit", type=int, default=106, help="images for the rows under noise")
    parser.add_argument("--timed", type=int, default=16, help="images the teacher's reference runs live, timed")
    parser.add_argument("--tables", type=Path, default=Path("runs/fast_default"), help="fast_default's tables")
    parser.add_argument(
        "--reference",
        type=Path,
        default=Path("results/fast_default.json"),
        help="fast_default's results: the reference rows when --tables holds no table",
    )
    parser.add_argument("--records", type=Path, default=Path("runs/all_class_heads"), help="records (resume)")
    parser.add_argument("--json", type=Path, default=Path("results/all_class_heads.json"))
    parser.add_argument("--plot", type=Path, default=Path("docs/all_class_heads.png"))
    args = parser.parse_args()

    cache: dict = {TEACHER: diffclass.load(TEACHER)}
    teacher = cache[TEACHER]
    rows: list[dict] = []
    out: dict = dict(rows=rows)

    def save() -> None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")

    data = eval_dataset(teacher, None, None)
    indices = list(range(min(args.limit or len(data), len(data))))
    reference = reference_row(teacher, data, indices, None, args)
    rows.append(reference)
    timed = min(args.timed, len(indices))
    live_reference, _ = run_row(TEACHER, REFERENCE, None, timed, args.records, cache)
    for spec in STUDENT_SPECS:
        rows.append(run_row(args.student, spec, None, args.limit, args.records, cache)[0])
    rows.append(run_row(TWIN, None, None, args.limit, args.records, cache)[0])
    timed_student = run_row(args.student, REFERENCE, None, timed, args.records / "timed", cache)[0]
    slow, fast = live_reference["seconds_per_image"], timed_student["seconds_per_image"]
    out["timed"] = dict(
        images=timed, teacher_seconds_per_image=slow, student_seconds_per_image=fast, ratio=round(slow / fast, 1)
    )
    save()

    noisy = min(args.noisy_limit, len(indices))
    for severity in SEVERITIES:
        for model, spec in ((args.student, REFERENCE), (TEACHER, None), (TWIN, None)):
            row, _ = run_row(model, spec, noise(severity), noisy, args.records, cache)
            rows.append(dict(row, severity=severity))
        save()
    rows.append(
        dict(
            reference_row(teacher, eval_dataset(teacher, None, noise(3)), list(range(noisy)), noise(3), args),
            severity=3,
        )
    )
    save()

    shown = Table(title=f"against {TEACHER} {REFERENCE} ({reference['images']} clean images; noise on {noisy})")
    for column in (
        "model",
        "strategy",
        "noise",
        "images",
        "top-1",
        "top-5",
        "points",
        "NFEs/img",
        "GMACs/img",
        "less compute",
        "s/img",
    ):
        shown.add_column(column, justify="left" if column in ("model", "strategy") else "right", overflow="fold")
    for row in rows:
        seconds = row["seconds_per_image"]
        points = "" if "severity" in row else f"{(row['top1'] - reference['top1']) * 100:+.2f}"
        shown.add_row(
            row["model"],
            row["strategy"],
            row["corruption"],
            str(row["images"]),
            f"{row['top1']:.2%}",
            f"{row['top5']:.2%}",
            points,
            f"{row['nfe_per_image']:.0f}",
            f"{row['gmacs_per_image']:.3g}",
            f"{reference['gmacs_per_image'] / row['gmacs_per_image']:.1f}x",
            "" if seconds is None else f"{seconds:.3f}",
        )
    console.print(shown)
    console.print(f"timed side by side: {json.dumps(out['timed'])}", markup=False)
    plot(rows, args.student, args.plot)
    console.print(f"wrote {args.json} and {args.plot}")


if __name__ == "__main__":
    main()
