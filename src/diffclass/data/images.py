"""Reading image files of any size, mode and format into model-ready tensors, saying what was converted."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from diffclass.errors import DiffclassError

MAX_PIXELS = 100_000_000  # refuse larger non-JPEG images instead of running out of memory


@dataclass
class LoadedImage:
    tensor: torch.Tensor  # [C, H, W] in [-1, 1]
    image_id: str  # content hash: the noise bank follows the image, not its path
    notes: list[str]  # conversions made, in words: "padded 300x100 to a square with its border colour"


def _open(path: Path) -> Image.Image:
    if not path.exists():
        raise DiffclassError(f"{path}: no such file")
    if path.is_dir():
        raise DiffclassError(f"{path}: is a folder, not an image")
    if path.stat().st_size == 0:
        raise DiffclassError(f"{path}: empty file")
    return _decode(path, path)


def _decode(source, path) -> Image.Image:
    """Decode a file or a byte stream; `path` names it in errors."""
    limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # diffclass checks the size itself, after reading only the header
        image = Image.open(source)
        if image.format == "JPEG":
            image.draft("RGB", (1024, 1024))  # decode a huge JPEG at a reduced scale
        if image.width * image.height > MAX_PIXELS:
            raise DiffclassError(
                f"{path}: {image.width}x{image.height} is too large to decode safely "
                f"(over {MAX_PIXELS // 1_000_000} MP); downscale it first"
            )
        image.load()
    except DiffclassError:
        raise
    except UnidentifiedImageError:
        raise DiffclassError(f"{path}: not an image diffclass can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DiffclassError(f"{path}: corrupt image ({exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return image


CONTRAST = 64  # of 255: a drawing closer than this to the background it is put on would vanish


def to_model_input(
    image: Image.Image, size: int, channels: int, background: Sequence[int] | None = None, stretch: bool = False
) -> tuple[torch.Tensor, list[str]]:
    """Any image as the model's input, each change said in words: transparency filled with `background` (the
    colour the model's training images have around their content; white when unknown), a drawing that would vanish
    on it drawn in the contrasting extreme, the mode converted, the image padded to a square with its own border
    colour (or stretched) and resized to `size`."""
    notes = []
    if getattr(image, "n_frames", 1) > 1:
        notes.append(f"first of {image.n_frames} frames")
        image.seek(0)
    image = ImageOps.exif_transpose(image)
    target_mode = "L" if channels == 1 else "RGB"
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image, note = fill_transparency(image.convert("RGBA"), tuple(background or (255, 255, 255)))
        notes += [note] if note else []
    elif image.mode.startswith("I;16") or image.mode in ("I", "F"):
        source = image.mode
        array = np.asarray(image, dtype=np.float64)
        if not np.isfinite(array).all():
            raise DiffclassError("the image's pixels are not all finite (NaN or Inf)")
        span = max(array.max() - array.min(), 1e-12)
        image = Image.fromarray(((array - array.min()) / span * 255).astype(np.uint8))
        notes.append(f"{source} pixels scaled to 0-255")
    if image.mode != target_mode:
        image = image.convert("RGB") if image.mode not in ("RGB", "L") else image
        if target_mode == "L" and image.mode == "RGB" and np.ptp(np.asarray(image, dtype=np.int16), axis=2).max() > 8:
            notes.append("colour made grey")  # a grey image saved as RGB needs no word
        image = image.convert(target_mode)
    width, height = image.size
    if min(width, height) < size / 2:
        notes.append(f"only {width}x{height} pixels, far fewer than the model's {size}x{size}: little to go on")
    if width != height:
        if stretch:
            notes.append(f"stretched {width}x{height} to a square")
        else:
            side = max(width, height)
            image = ImageOps.pad(image, (side, side), color=border_colour(image), centering=(0.5, 0.5))
            notes.append(f"padded {width}x{height} to a square with its border colour")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=None)
        notes.append(f"resized to {size}x{size}")
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    if np.ptp(array) < 2 / 255:
        notes.append("one flat colour: there is nothing to classify, so the answer means nothing")
    tensor = torch.from_numpy(array.reshape(size, size, channels)).permute(2, 0, 1).contiguous()
    return tensor, notes


def fill_transparency(image: Image.Image, background: tuple[int, ...]) -> tuple[Image.Image, str | None]:
    """An RGBA image composited onto `background` (RGB). A drawing whose visible pixels are about the
    background's brightness (a black drawing on a transparent page, for a model of white strokes on black) would
    vanish: it is drawn in white or black instead, whichever stands out."""
    rgba = np.asarray(image, dtype=np.float32)
    alpha = rgba[..., 3:] / 255
    if alpha.min() >= 1:
        return image.convert("RGB"), None
    background = (tuple(background) * 3)[:3] if len(background) == 1 else tuple(background[:3])
    colour = rgba[..., :3]
    ink = alpha[..., 0] > 0.5
    back = float(shade(np.array(background, dtype=np.float32)))
    note = f"transparent background filled with {describe(background)}"
    if ink.any() and abs(float(shade(colour[ink]).mean()) - back) < CONTRAST:
        colour = np.full_like(colour, 255.0 if back < 128 else 0.0)
        note += f", the drawing in {'white' if back < 128 else 'black'} so that it shows"
    out = colour * alpha + np.array(background, dtype=np.float32) * (1 - alpha)
    return Image.fromarray(out.round().clip(0, 255).astype(np.uint8), "RGB"), note


def shade(rgb: np.ndarray) -> np.ndarray:
    """Brightness as a grey conversion sees it (ITU-R 601 weights)."""
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def describe(colour: Sequence[int]) -> str:
    names = {(0, 0, 0): "black", (255, 255, 255): "white", (128, 128, 128): "grey"}
    rgb = tuple(int(c) for c in colour[:3])
    return names.get(rgb, "rgb" + str(rgb))


def border_colour(image: Image.Image) -> int | tuple[int, ...]:
    """The median colour of the image's outermost pixels: what continues its background."""
    array = np.asarray(image)
    edge = np.concatenate([array[0], array[-1], array[:, 0], array[:, -1]])
    median = np.median(edge, axis=0)
    return int(median) if np.ndim(median) == 0 else tuple(int(v) for v in median)


def check_batch(images, image_ids: Sequence[str] | None = None) -> None:
    """What the Python API's `classify` takes, refused in one line otherwise: a finite float [B, C, H, W] tensor in
    [-1, 1] (values up to 8 are let through: noise overshoots; pixels in 0..255 are not), one id per image."""
    if not isinstance(images, torch.Tensor):
        raise DiffclassError(f"images must be a tensor, image files or PIL images, got {type(images).__name__}")
    if not images.is_floating_point():
        raise DiffclassError(
            f"images must be a float tensor in [-1, 1], got {str(images.dtype).removeprefix('torch.')} "
            "(pixels in 0..255: pass x / 127.5 - 1, or the files or PIL images)"
        )
    if images.dim() != 4:
        raise DiffclassError(f"images must be [batch, channels, height, width], got shape {list(images.shape)}")
    if not torch.isfinite(images).all():
        raise DiffclassError("images hold NaN or Inf values")
    if images.numel() and images.abs().max() > 8:
        raise DiffclassError(
            f"images must lie in [-1, 1]; these reach {images.abs().max().item():.4g} "
            "(pixels in 0..255: pass x / 127.5 - 1)"
        )
    if image_ids is not None and len(image_ids) != len(images):
        raise DiffclassError(f"{len(image_ids)} image ids for {len(images)} images; give one id per image")


def content_id(image: torch.Tensor) -> str:
    """An image's id by content: the noise bank of an image is keyed by it, so the same pixels get the same noise
    wherever they come from (a file, a tensor, another run)."""
    return hashlib.sha256(image.detach().cpu().float().numpy().tobytes()).hexdigest()[:16]


def load_image(
    path: str | Path, size: int, channels: int, background: Sequence[int] | None = None, stretch: bool = False
) -> LoadedImage:
    path = Path(path)
    image = _open(path)
    try:
        tensor, notes = to_model_input(image, size, channels, background, stretch)
    except DiffclassError as exc:
        raise DiffclassError(f"{path}: {exc}") from None
    return LoadedImage(tensor, content_id(tensor), notes)


def image_from_bytes(
    data: bytes, name: str, size: int, channels: int, background: Sequence[int] | None = None, stretch: bool = False
) -> LoadedImage:
    """An uploaded image, with the same checks and conversions as a file."""
    import io

    try:
        tensor, notes = to_model_input(_decode(io.BytesIO(data), name), size, channels, background, stretch)
    except DiffclassError as exc:
        raise DiffclassError(str(exc) if str(exc).startswith(name) else f"{name}: {exc}") from None
    return LoadedImage(tensor, content_id(tensor), notes)


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


def expand_inputs(paths: list[Path]) -> tuple[list[Path], int, list[str]]:
    """Files as given, folders searched recursively for images: (image files, non-images skipped, problems)."""
    files, skipped, problems = [], 0, []
    for path in map(Path, paths):
        if not path.is_dir():
            files.append(path)  # a missing or unreadable file is reported when it is loaded
            continue
        found = sorted(p for p in path.rglob("*") if p.is_file())
        images = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES]
        skipped += len(found) - len(images)
        if not images:
            problems.append(f"{path}: no images in this folder")
        files += images
    return files, skipped, problems
