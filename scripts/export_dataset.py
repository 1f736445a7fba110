"""Write an embedded dataset's split as a folder of class sub-folders (PNG), with its groups in `groups.csv`
where it has them (glyphs: the font style), the layout `diffclass fit folder:DIR` and `--dataset folder:DIR` read.
It lets the recipe a user runs on their own folder be checked against the shipped model on the same images.

    python scripts/export_dataset.py glyphs train runs/glyphs-folder
    python scripts/export_dataset.py glyphs test runs/glyphs-test-folder
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image

from diffclass.data import load_dataset
from diffclass.data.folders import GROUPS_FILE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("split", choices=["train", "test"])
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    data = load_dataset(args.dataset, args.split)
    pixels = ((data.images.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy().astype(np.uint8)
    rows = []
    for index, (image, label) in enumerate(zip(pixels, data.labels.tolist())):
        name = f"{data.class_names[label]}/{index:05d}.png"
        (args.out / data.class_names[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(args.out / name)
        if data.groups is not None:
            rows.append((name, data.groups[index]))
    if rows:
        with (args.out / GROUPS_FILE).open("w", newline="") as file:
            csv.writer(file).writerows([("path", "group"), *rows])
    print(f"wrote {len(pixels)} images of {len(data.class_names)} classes to {args.out}")


if __name__ == "__main__":
    main()
