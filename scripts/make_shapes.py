"""A small folder of labelled images to try `diffclass fit` on: four shapes drawn at random sizes, places,
rotations and colours on light backgrounds, 32x32 PNGs, one sub-folder per class (seeded, so every run makes the
same folder).

    python scripts/make_shapes.py runs/shapes --per-class 60
    diffclass fit folder:runs/shapes --out runs/shapes-model
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CORNERS = dict(triangle=3, square=4, star=10)


def draw(kind: str, rng: np.random.Generator, size: int = 32) -> Image.Image:
    scale = 4  # drawn large and shrunk, so edges are anti-aliased as in real images
    back = tuple(int(v) for v in rng.integers(190, 256, 3))
    ink = tuple(int(v) for v in rng.integers(0, 160, 3))
    image = Image.new("RGB", (size * scale, size * scale), back)
    radius = rng.uniform(0.22, 0.4) * size * scale
    cx, cy = (rng.uniform(radius, size * scale - radius) for _ in range(2))
    pen = ImageDraw.Draw(image)
    if kind == "circle":
        pen.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=ink)
    else:
        turn = rng.uniform(0, 2 * math.pi)
        corners = CORNERS[kind]
        points = [
            (
                cx + radius * (0.45 if kind == "star" and k % 2 else 1) * math.cos(turn + 2 * math.pi * k / corners),
                cy + radius * (0.45 if kind == "star" and k % 2 else 1) * math.sin(turn + 2 * math.pi * k / corners),
            )
            for k in range(corners)
        ]
        pen.polygon(points, fill=ink)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write (one sub-folder per shape)")
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for kind in ("circle", "square", "star", "triangle"):
        (args.out / kind).mkdir(parents=True, exist_ok=True)
        for k in range(args.per_class):
            draw(kind, rng).save(args.out / kind / f"{kind}{k:03d}.png")
    print(f"wrote {4 * args.per_class} images to {args.out}")


if __name__ == "__main__":
    main()
