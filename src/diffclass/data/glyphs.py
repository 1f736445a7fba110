"""`glyphs`: a many-class character benchmark rendered from the fonts that ship inside matplotlib.

106 classes in a 3-level tree (script -> case -> glyph). Train and test are split by font style: the test
styles never appear in training, so the task is recognising a character in a typeface never seen.

Left out, because they look the same as another class in most fonts (a classifier could not be right except by
luck): Latin small l (= capital I in sans fonts); the Greek capitals that are Latin capitals (Α Β Ε Ζ Η Ι Κ Μ Ν Ο
Ρ Τ Υ Χ) and the small letters ο ι κ ν υ (= o, ı, small-cap K, v, u); the Cyrillic capitals that are Latin or
Greek ones (А В Е К М Н О Р С Т Х, Г П Ф), З (= 3), Ё and Й (= Е, И with a mark too small at 16 px); and all
Cyrillic small letters, which are mostly small copies of their capitals (a case distinction the Latin script
already tests).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from diffclass.data.base import DATASETS, ImageDataset
from diffclass.hierarchy.builders import TREE_BUILDERS
from diffclass.hierarchy.tree import LabelTree, TreeNode

GLYPHS_VERSION = 1
GLYPHS_IMAGE_SIZE = 16
GLYPHS_SEED = 0
TRAIN_COPIES = 8  # augmented renders per (class, training style)
TEST_COPIES = 1  # per (class, held-out style)

SCRIPTS: dict[str, dict[str, str]] = {
    "Latin": {
        "capital": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "small": "abcdefghijkmnopqrstuvwxyz",
    },
    "Greek": {
        "capital": "ΓΔΘΛΞΠΣΦΨΩ",
        "small": "αβγδεζηθλμξπρστφχψω",
    },
    "Cyrillic": {"capital": "БДЖИЛУЦЧШЩЪЫЬЭЮЯ"},
    "digits": {"digit": "0123456789"},
}

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
ALL_SCRIPTS = ("Latin", "Greek", "Cyrillic", "digits")
# style name -> (font file, scripts it covers); Computer Modern has no Greek or Cyrillic code points
STYLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "DejaVu Sans": ("DejaVuSans.ttf", ALL_SCRIPTS),
    "DejaVu Sans Bold": ("DejaVuSans-Bold.ttf", ALL_SCRIPTS),
    "DejaVu Sans Oblique": ("DejaVuSans-Oblique.ttf", ALL_SCRIPTS),
    "DejaVu Sans Bold Oblique": ("DejaVuSans-BoldOblique.ttf", ALL_SCRIPTS),
    "DejaVu Sans Mono": ("DejaVuSansMono.ttf", ALL_SCRIPTS),
    "DejaVu Sans Mono Bold": ("DejaVuSansMono-Bold.ttf", ALL_SCRIPTS),
    "DejaVu Sans Mono Oblique": ("DejaVuSansMono-Oblique.ttf", ALL_SCRIPTS),
    "DejaVu Sans Mono Bold Oblique": ("DejaVuSansMono-BoldOblique.ttf", ALL_SCRIPTS),
    "DejaVu Serif": ("DejaVuSerif.ttf", ALL_SCRIPTS),
    "DejaVu Serif Bold": ("DejaVuSerif-Bold.ttf", ALL_SCRIPTS),
    "DejaVu Serif Italic": ("DejaVuSerif-Italic.ttf", ALL_SCRIPTS),
    "DejaVu Serif Bold Italic": ("DejaVuSerif-BoldItalic.ttf", ALL_SCRIPTS),
    "STIX": ("STIXGeneral.ttf", ALL_SCRIPTS),
    "STIX Bold": ("STIXGeneralBol.ttf", ALL_SCRIPTS),
    "STIX Italic": ("STIXGeneralItalic.ttf", ALL_SCRIPTS),
    "STIX Bold Italic": ("STIXGeneralBolIta.ttf", ALL_SCRIPTS),
    "Computer Modern Roman": ("cmr10.ttf", ("Latin", "digits")),
    "Computer Modern Bold": ("cmb10.ttf", ("Latin", "digits")),
    "Computer Modern Sans": ("cmss10.ttf", ("Latin", "digits")),
    "Computer Modern Italic": ("cmti10.ttf", ("Latin", "digits")),
    "Computer Modern Typewriter": ("cmtt10.ttf", ("Latin", "digits")),
}
TEST_STYLES = ("DejaVu Sans Bold Oblique", "DejaVu Serif Italic", "DejaVu Sans Mono Bold", "STIX")


@dataclass(frozen=True)
class GlyphClass:
    char: str
    script: str
    case: str

    @property
    def name(self) -> str:
        return f"{self.script} {self.case} {self.char}" if self.script != "digits" else f"digit {self.char}"


def glyph_classes() -> list[GlyphClass]:
    return [
        GlyphClass(char, script, case)
        for script, cases in SCRIPTS.items()
        for case, chars in cases.items()
        for char in chars
    ]


def render_glyph(font: ImageFont.FreeTypeFont, char: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """Draw white on black at 4x, augment (rotation, scale, shift, stroke, blur), downsample, add noise."""
    canvas = 4 * size
    image = Image.new("L", (canvas, canvas), 0)
    ImageDraw.Draw(image).text((canvas / 2, canvas * 0.72), char, fill=255, font=font, anchor="ms")
    angle = rng.uniform(-10, 10)
    scale = rng.uniform(0.85, 1.15)
    dx, dy = rng.uniform(-0.06, 0.06, size=2) * canvas
    cos, sin = np.cos(np.radians(angle)) / scale, np.sin(np.radians(angle)) / scale
    cx = cy = canvas / 2
    # inverse affine map (output -> input) for Image.transform
    matrix = (cos, sin, cx - cos * (cx + dx) - sin * (cy + dy), -sin, cos, cy + sin * (cx + dx) - cos * (cy + dy))
    image = image.transform(image.size, Image.Transform.AFFINE, matrix, resample=Image.Resampling.BILINEAR)
    stroke = rng.choice(["thin", "plain", "plain", "bold"])
    if stroke == "bold":
        image = image.filter(ImageFilter.MaxFilter(3))
    elif stroke == "thin":
        image = image.filter(ImageFilter.MinFilter(3))
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 1.5)))
    small = np.asarray(image.resize((size, size), Image.Resampling.BOX), dtype=np.float32) / 255
    small = small + rng.normal(0, rng.uniform(0, 0.06), small.shape)
    return (np.clip(small, 0, 1) * 255).round().astype(np.uint8)


def _font_has(font_path: Path, char: str, font: ImageFont.FreeTypeFont) -> bool:
    return font.getmask(char).getbbox() is not None


def generate_glyphs(size: int = GLYPHS_IMAGE_SIZE, seed: int = GLYPHS_SEED) -> dict[str, np.ndarray]:
    """Render the whole benchmark; deterministic for a (size, seed) pair."""
    classes = glyph_classes()
    out = {f"{split}_{key}": [] for split in ("train", "test") for key in ("images", "labels", "styles")}
    for style_index, (style, (file, scripts)) in enumerate(STYLES.items()):
        font = ImageFont.truetype(str(FONT_DIR / file), size=int(4 * size * 0.6))
        split = "test" if style in TEST_STYLES else "train"
        copies = TEST_COPIES if split == "test" else TRAIN_COPIES
        for label, glyph in enumerate(classes):
            if glyph.script not in scripts or not _font_has(FONT_DIR / file, glyph.char, font):
                continue
            for copy in range(copies):
                rng = np.random.default_rng([seed, style_index, label, copy])
                out[f"{split}_images"].append(render_glyph(font, glyph.char, rng, size))
                out[f"{split}_labels"].append(label)
                out[f"{split}_styles"].append(style_index)
    return {k: np.asarray(v) for k, v in out.items()}


def cache_dir() -> Path:
    return Path(os.environ.get("DIFFCLASS_CACHE", Path.home() / ".cache" / "diffclass"))


def load_glyph_arrays(size: int = GLYPHS_IMAGE_SIZE, seed: int = GLYPHS_SEED) -> dict[str, np.ndarray]:
    """Generated once per (version, size, seed) and cached on disk as a plain .npz (no pickle)."""
    path = cache_dir() / f"glyphs-v{GLYPHS_VERSION}-{size}px-seed{seed}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            return dict(data)
    arrays = generate_glyphs(size, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return arrays


@DATASETS.register(
    "glyphs", background=(0, 0, 0), help="106 characters of three scripts, test styles unseen in training"
)
def load_glyphs_dataset(split: str = "test", image_size: int | None = None) -> ImageDataset:
    """Images come in a fixed shuffled order, so `--limit N` takes a sample across styles and classes."""
    size = image_size or GLYPHS_IMAGE_SIZE
    arrays = load_glyph_arrays(size)
    order = np.random.default_rng(GLYPHS_SEED).permutation(len(arrays[f"{split}_labels"]))
    images = torch.from_numpy(arrays[f"{split}_images"][order]).float().unsqueeze(1) / 127.5 - 1
    labels = torch.from_numpy(arrays[f"{split}_labels"][order]).long()
    digest = hashlib.sha256(arrays[f"{split}_images"].tobytes()).hexdigest()[:8]
    style_names = list(STYLES)
    return ImageDataset(
        "glyphs",
        images,
        labels,
        [g.name for g in glyph_classes()],
        [f"glyphs-{digest}/{split}/{i}" for i in order],
        groups=[style_names[s] for s in arrays[f"{split}_styles"][order]],  # the font style
    )


@TREE_BUILDERS.register("glyphs", help="script -> case -> glyph of the glyphs dataset")
def glyph_tree() -> LabelTree:
    """script -> case -> glyph; Cyrillic has capitals only and digits one case, so those chains have lone children."""
    nodes = [TreeNode("root", "character", children=list(SCRIPTS))]
    label = 0
    for script, cases in SCRIPTS.items():
        nodes.append(
            TreeNode(
                script,
                f"{script} script" if script != "digits" else "digits",
                children=[f"{script}/{case}" for case in cases],
            )
        )
        for case, chars in cases.items():
            case_id = f"{script}/{case}"
            nodes.append(
                TreeNode(
                    case_id,
                    f"{script} {case} letters" if script != "digits" else "digits",
                    children=[f"{case_id}/{char}" for char in chars],
                )
            )
            for char in chars:
                glyph = GlyphClass(char, script, case)
                nodes.append(TreeNode(f"{case_id}/{char}", glyph.name, class_index=label))
                label += 1
    return LabelTree(nodes, label)
