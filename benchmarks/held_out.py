"""A model on the training images its training held out (`--hold-out`): drawings of the same task it never saw,
beside the test split's unseen styles.

    python benchmarks/held_out.py --model plain-emoji [--strategy SPEC] [--json results/emoji/plain_held_out.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import diffclass
from diffclass.data import load_dataset
from diffclass.progress import console


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--strategy", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    clf = diffclass.load(args.model)
    held_out = clf.info.training.get("held_out")
    if not held_out:
        raise SystemExit(f"error: {args.model} held nothing out of its training (train it with --hold-out)")
    _, data = load_dataset(clf.info.dataset, "train", clf.info.image_size).split_held_out(held_out)
    summary = clf.evaluate(data, args.strategy, show_progress=False)
    line = f"{args.model} on held-out {', '.join(held_out)}: {summary.top1:.2%} top-1, {summary.top5:.2%} top-5"
    console.print(f"{line} ({summary.n_images} images, {summary.strategy})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dict(summary.to_json(), held_out=held_out), indent=2) + "\n")
        console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
