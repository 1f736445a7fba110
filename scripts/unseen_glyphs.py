"""Render every glyph class in typefaces the glyph benchmark never uses (the Liberation families, Debian's
`fonts-liberation`), as a folder of class sub-folders: images a glyph model never trained on, to fit its
temperature and tune its front on (`--images-from folder:DIR`) when its own training kept nothing out.

    python scripts/unseen_glyphs.py runs/unseen-glyphs [--fonts /usr/share/fonts/truetype/liberation]

Each image goes through the benchmark's own rendering (baseline placement, small rotation, scale, shift, stroke,
blur and noise, seeded per style and class), so only the typeface is new.
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageFont

from diffclass.data.glyphs import GLYPHS_IMAGE_SIZE, GLYPHS_SEED, glyph_classes, render_glyph

STYLES = (
    "LiberationSans-Regular",
    "LiberationSans-Bold",
    "LiberationSans-Italic",
    "LiberationSerif-Regular",
    "LiberationSerif-BoldItalic",
    "LiberationMono-Regular",
    "LiberationMono-Italic",
    "LiberationSansNarrow-Regular",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--fonts", type=Path, default=Path("/usr/share/fonts/truetype/liberation"))
    args = parser.parse_args()
    classes = glyph_classes()
    written = 0
    for style_index, style in enumerate(STYLES):
        path = args.fonts / f"{style}.ttf"
        if not path.is_file():
            raise SystemExit(f"error: {path} is missing (apt-get install fonts-liberation)")
        font = ImageFont.truetype(str(path), size=int(4 * GLYPHS_IMAGE_SIZE * 0.6))
        for label, glyph in enumerate(classes):
            if font.getmask(glyph.char).getbbox() is None:
                continue  # the typeface has no such character
            rng = np.random.default_rng([GLYPHS_SEED, 1000 + style_index, label])
            folder = args.out / glyph.name
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(render_glyph(font, glyph.char, rng, GLYPHS_IMAGE_SIZE)).save(folder / f"{style}.png")
            written += 1
    print(f"wrote {written} images of {len(classes)} classes in {len(STYLES)} typefaces to {args.out}")


if __name__ == "__main__":
    main()
