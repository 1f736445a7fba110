"""The ImageNet-C corruptions as diffclass applies them: one emoji (32 px, native) and one glyph (16 px, through
2 x 2 block enlargement) at severities 1-5, for docs/imagenet_c_examples.png.

    python scripts/corruption_sheet.py docs/imagenet_c_examples.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from diffclass.data import load_dataset  # noqa: E402
from diffclass.data.imagenet_c import NAMES, corrupt_batch  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    emoji = load_dataset("emoji", "test")
    pick = next(i for i, group in enumerate(emoji.groups) if group == "openmoji")
    samples = [emoji.subset([pick]), load_dataset("glyphs", "test").subset([0])]
    fig, axes = plt.subplots(len(NAMES), 12, figsize=(12, 1.05 * len(NAMES)))
    for row, name in enumerate(NAMES):
        for block, data in enumerate(samples):
            images = [data.images[0]] + [corrupt_batch(data.images, data.ids, name, s)[0] for s in range(1, 6)]
            for k, image in enumerate(images):
                ax = axes[row, 6 * block + k]
                shown = ((image + 1) / 2).clamp(0, 1).permute(1, 2, 0).numpy()
                ax.imshow(shown.squeeze(), cmap="gray" if shown.shape[2] == 1 else None, vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    ax.set_title("clean" if k == 0 else f"severity {k}", fontsize=7)
        axes[row, 0].set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.2)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
