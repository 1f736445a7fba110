"""Pruning methods side by side on one model: same ratio, same fine-tuning budget, same seed, one run.

    python benchmarks/pruning_methods.py [--model glyphs] [--ratio 0.25] [--finetune-steps 500] [--limit N]
        [--strategy SPEC]

For random, magnitude, taylor and diff-pruning (T = 0, 0.02, 0.05) it prunes the model, fine-tunes it with the
original recipe, and prints params, MACs per call, diffusion-classifier top-1/top-5 (the given strategy), SSIM of
generated samples against the original model's from the same noise, and seconds per network call relative to the
original (timed interleaved, median of repeats). Pruned models are kept under --work and reused when rerun, and
so are the classifier's per-image records (--work/records): an interrupted run resumes where it stopped.
(A pruned model with a fast strategy against exhaustive on the unpruned one: benchmarks/combined_speedup.py.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from rich.table import Table
from skimage.metrics import structural_similarity

from diffclass.backbones import call_cost, load_backbone
from diffclass.bench import run_folder
from diffclass.classifier import Classifier
from diffclass.data import load_dataset
from diffclass.evaluation import evaluate, run_identity
from diffclass.progress import console
from diffclass.pruning.finetune import finetune, prune_to_folder
from diffclass.records import RecordStore
from diffclass.training import sample

METHODS = [
    ("random", None),
    ("magnitude", None),
    ("taylor", None),
    ("diff-pruning", 0.0),
    ("diff-pruning", 0.02),
    ("diff-pruning", 0.05),
]


def label(method: str, threshold: float | None) -> str:
    return method if threshold is None else f"{method}(T={threshold:g})"


def pruned_model(args, method: str, threshold: float | None) -> Path:
    """Prune and fine-tune once; a finished model under --work is reused, an interrupted one resumed."""
    out = args.work / label(method, threshold).replace("(", "-").replace(")", "").replace("=", "")
    if (out / "diffclass.json").is_file():
        done = load_backbone(out)
        if done.info.pruning.get("ratio") != args.ratio:
            raise SystemExit(f"error: {out} was pruned at ratio {done.info.pruning.get('ratio')}; use another --work")
        if done.info.training.get("steps") == args.finetune_steps == done.info.pruning.get("finetune_steps"):
            return out
        done.info.pruning["finetune_steps"] = args.finetune_steps
        finetune(done, out, args.seed, resume=(out / "checkpoint").is_dir())
        return out
    backbone, report = prune_to_folder(
        args.model,
        out,
        method,
        args.ratio,
        args.finetune_steps,
        threshold=threshold if threshold is not None else 0.05,
        calibration_images=args.calibration_images,
        seed=args.seed,
    )
    console.print(f"{label(method, threshold)}: {report.summary()}")
    finetune(backbone, out, args.seed)
    return out


def generation_ssim(original, pruned, seed: int, steps: int) -> float:
    """Mean SSIM between the two models' DDIM samples from the same noise, one per class (on [0, 1] intensities:
    SSIM's luminance term assumes non-negative pixels)."""
    labels = torch.arange(len(original.info.class_names))
    a = (sample(original, labels, steps=steps, seed=seed).numpy() + 1) / 2
    b = (sample(pruned, labels, steps=steps, seed=seed).numpy() + 1) / 2
    return float(np.mean([structural_similarity(x[0], y[0], data_range=1.0) for x, y in zip(a, b)]))


def seconds_per_call(backbones: list, batch: int, repeats: int) -> list[float]:
    """Median seconds of one network call on `batch` images, models timed interleaved so load affects all alike."""
    info = backbones[0].info
    x = torch.randn(batch, info.channels, info.image_size, info.image_size, generator=torch.Generator().manual_seed(0))
    t = torch.randint(1000, (batch,), generator=torch.Generator().manual_seed(1))
    times = [[] for _ in backbones]
    with torch.no_grad():
        for _ in range(repeats):
            for i, backbone in enumerate(backbones):
                cond = backbone.condition((torch.arange(batch) % len(info.class_names)).tolist())
                started = time.perf_counter()
                backbone.predict_noise(x, t, cond)
                times[i].append((time.perf_counter() - started) / batch)
    return [statistics.median(ts) for ts in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="glyphs")
    parser.add_argument("--ratio", type=float, default=0.25)
    parser.add_argument("--finetune-steps", type=int, default=500)
    parser.add_argument("--calibration-images", type=int, default=64)
    parser.add_argument("--strategy", default="adaptive(keep=22,1;n=8,64)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--sample-steps", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("runs/pruning"))
    parser.add_argument("--out", type=Path, default=Path("results/pruning_methods.json"))
    args = parser.parse_args()

    original = load_backbone(args.model)
    folders = [pruned_model(args, m, t) for m, t in METHODS]
    backbones = [original] + [load_backbone(f) for f in folders]
    names = ["original"] + [label(m, t) for m, t in METHODS]
    data = load_dataset(original.info.dataset, "test", original.info.image_size)
    rows = []
    for name, source, backbone in zip(names, [args.model, *map(str, folders)], backbones):
        macs, params = call_cost(backbone)
        clf = Classifier(backbone, seed=args.seed, model_name=source)  # records keyed by its weights digest
        store = RecordStore(run_folder(args.work / "records" / name, args.strategy), run_identity(clf, args.strategy))
        with store:
            summary = evaluate(clf, data, args.strategy, limit=args.limit, store=store)
        ssim = 1.0 if backbone is original else generation_ssim(original, backbone, args.seed, args.sample_steps)
        rows.append(dict(summary.to_json(), model=name, params=params, macs=macs, ssim=ssim))
        console.print(f"{name}: top-1 {summary.top1:.2%}, SSIM {ssim:.3f}")
    for row, seconds in zip(rows, seconds_per_call(backbones, batch=256, repeats=7)):
        row["seconds_per_call"] = seconds
    base = rows[0]
    table = Table(title=f"pruning at ratio {args.ratio}, {args.finetune_steps} fine-tuning steps, {args.strategy}")
    for col in ("model", "params", "MACs/call", "MACs ratio", "top-1", "top-5", "SSIM", "s/call ratio"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for row in rows:
        table.add_row(
            row["model"],
            f"{row['params'] / 1e3:.0f}K",
            f"{row['macs'] / 1e6:.2f}M",
            f"{base['macs'] / row['macs']:.2f}x",
            f"{row['top1']:.2%}",
            f"{row['top5']:.2%}",
            f"{row['ssim']:.3f}",
            f"{row['seconds_per_call'] / base['seconds_per_call']:.2f}",
        )
    console.print(table)
    result = dict(
        ratio=args.ratio,
        finetune_steps=args.finetune_steps,
        strategy=args.strategy,
        rows=rows,
        original_training_steps=original.info.training.get("steps"),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
