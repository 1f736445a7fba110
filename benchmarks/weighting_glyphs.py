"""Timestep weighting on glyphs: uniform, clark and learned weights at the same NFEs, on all 424 test images.

    python benchmarks/weighting_glyphs.py [--fit-images 100] [--tables runs/fast_default]
                                          [--json results/weighting_glyphs.json]

Learned weights are fitted as `diffclass calibrate --weights` fits them (8 bins of the calibrated window, 32 slots)
on --fit-images training images, never test images. The 32-slot error table of every class on the test images is
computed once under uniform weighting (and cached with `benchmarks/fast_default.py`'s, which needs the same table);
each weighting multiplies a slot's errors by its w(t), and exhaustive(n) for n = 8, 16, 32 is replayed on the
result: the same noise, the same NFEs, only the weighting differs.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from fast_default import reference_table
from rich.table import Table

import diffclass
from diffclass.calibration import learn_weights
from diffclass.data import load_dataset
from diffclass.loading import draw, eval_dataset
from diffclass.progress import console
from diffclass.replay import ErrorTable
from diffclass.weighting import TimestepWeighting

SLOTS = (8, 16, 32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit-images", type=int, default=100, help="training images the learned weights see")
    parser.add_argument("--tables", type=Path, default=Path("runs/fast_default"), help="error-table cache")
    parser.add_argument("--json", type=Path, default=Path("results/weighting_glyphs.json"))
    args = parser.parse_args()

    classifier = diffclass.load("glyphs", weighting="uniform")
    data = eval_dataset(classifier, None, None)
    table, _ = reference_table(classifier, data, list(range(len(data))), args.tables, None)
    train = load_dataset("glyphs", "train", classifier.info.image_size)  # the shipped glyphs trained on all of it
    learned = learn_weights(classifier, draw(train, args.fit_images, seed=0), slots=32, bins=8)
    grid = classifier.scorer.grid
    timesteps = [grid.timestep(s) for s in range(table.slots)]
    weightings = dict(uniform=TimestepWeighting(), clark=TimestepWeighting("clark"), learned=learned)
    rows = []
    for name, weighting in weightings.items():
        w = weighting.per_timestep(grid.timesteps, len(classifier.backbone.alphas_cumprod))
        scale = torch.tensor([w[t] for t in timesteps], dtype=table.errors.dtype)
        weighted = ErrorTable(table.errors * scale, table.candidates, table.labels, table.image_ids)
        for n in SLOTS:
            top1, nfe = weighted.top1(classifier.strategy(f"exhaustive(n={n})"))
            rows.append(
                dict(
                    weighting=name,
                    strategy=f"exhaustive(n={n})",
                    images=len(table.labels),
                    top1=round(top1, 4),
                    nfe_per_image=nfe,
                )
            )
    result = dict(
        rows=rows,
        learned=learned.to_dict(),
        window=list(classifier.info.timestep_range or ()),
        fit_images=args.fit_images,
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    shown = Table(title=f"glyphs, {len(table.labels)} test images: top-1 by weighting")
    for column in ("weighting", *(f"n={n}" for n in SLOTS)):
        shown.add_column(column, justify="right")
    for name in weightings:
        cells = [r for r in rows if r["weighting"] == name]
        shown.add_row(name, *(f"{r['top1']:.2%}" for r in cells))
    console.print(shown)
    se = math.sqrt(0.9 * 0.1 / len(table.labels))
    console.print(f"one standard error near 90% on {len(table.labels)} images: {se:.1%}; wrote {args.json}")


if __name__ == "__main__":
    main()
