"""The engine's overhead: the share of evaluation wall time spent outside the network's forward passes.

    python benchmarks/engine_overhead.py [--model glyphs] [--strategy adaptive] [--limit 200]

Everything else (noise bank, memo, batching, strategy logic, records) should stay under 5%.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from diffclass import load
from diffclass.data import load_dataset
from diffclass.evaluation import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="glyphs")
    parser.add_argument("--strategy", nargs="+", default=["exhaustive", "adaptive"])
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("results/engine_overhead.json"))
    args = parser.parse_args()

    clf = load(args.model, batch_size=args.batch_size)
    info = clf.backbone.info
    data = load_dataset(info.dataset, "test", info.image_size)
    forward = {"seconds": 0.0, "calls": 0}
    network = clf.backbone.predict_noise

    def timed(x_t, t, cond):
        began = time.perf_counter()
        eps = network(x_t, t, cond)
        forward["seconds"] += time.perf_counter() - began
        forward["calls"] += 1
        return eps

    clf.backbone.predict_noise = timed
    results = []
    for spec in args.strategy:
        forward.update(seconds=0.0, calls=0)
        began = time.perf_counter()
        summary = evaluate(clf, data, spec, limit=args.limit, show_progress=False)
        total = time.perf_counter() - began
        overhead = 1 - forward["seconds"] / total
        results.append(
            dict(
                strategy=summary.strategy,
                images=summary.n_images,
                wall_seconds=round(total, 2),
                forward_seconds=round(forward["seconds"], 2),
                forward_calls=forward["calls"],
                nfe_per_image=summary.nfe_per_image,
                overhead=round(overhead, 4),
            )
        )
        print(
            f"{summary.strategy}: {summary.n_images} images, wall {total:.1f} s, forward passes "
            f"{forward['seconds']:.1f} s in {forward['calls']} calls -> engine overhead {overhead:.1%}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
