"""Reading image files of any size, mode and format into model-ready tensors, saying what was converted."""

from __future__ import annotations

import hashlib
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
    notes: list[str]  # conversions made, e.g. "RGBA -> L", "resized 640x480 -> 16x16"


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


def to_model_input(image: Image.Image, size: int, channels: int) -> tuple[torch.Tensor, list[str]]:
    """Convert mode, resize the short side to `size` and centre-crop; report every change."""
    notes = []
    if getattr(image, "n_frames", 1) > 1:
        notes.append(f"first of {image.n_frames} frames")
        image.seek(0)
    image = ImageOps.exif_transpose(image)
    target_mode = "L" if channels == 1 else "RGB"
    if image.mode != target_mode:
        source = image.mode
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            background = Image.new("RGBA", image.size, (0, 0, 0, 255))
            image = Image.alpha_composite(background, image.convert("RGBA"))
        elif image.mode.startswith("I;16") or image.mode in ("I", "F"):
            array = np.asarray(image, dtype=np.float64)
            if not np.isfinite(array).all():
                raise DiffclassError("the image's pixels are not all finite (NaN or Inf)")
            span = max(array.max() - array.min(), 1e-12)
            image = Image.fromarray(((array - array.min()) / span * 255).astype(np.uint8))
        image = image.convert(target_mode)
        notes.append(f"{source} -> {target_mode}")
    if image.size != (size, size):
        before = f"{image.width}x{image.height}"
        image = ImageOps.fit(image, (size, size), method=Image.Resampling.BICUBIC)
        notes.append(f"resized {before} -> {size}x{size}")
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    tensor = torch.from_numpy(array.reshape(size, size, channels)).permute(2, 0, 1).contiguous()
    return tensor, notes


def content_id(image: torch.Tensor) -> str:
    """An image's id by content: the noise bank of an image is keyed by it, so the same pixels get the same noise
    wherever they come from (a file, a tensor, another run)."""
    return hashlib.sha256(image.detach().cpu().float().numpy().tobytes()).hexdigest()[:16]


def load_image(path: str | Path, size: int, channels: int) -> LoadedImage:
    path = Path(path)
    image = _open(path)
    try:
        tensor, notes = to_model_input(image, size, channels)
    except DiffclassError as exc:
        raise DiffclassError(f"{path}: {exc}") from None
    return LoadedImage(tensor, content_id(tensor), notes)


def image_from_bytes(data: bytes, name: str, size: int, channels: int) -> LoadedImage:
    """An uploaded image, with the same checks and conversions as a file."""
    import io

    try:
        tensor, notes = to_model_input(_decode(io.BytesIO(data), name), size, channels)
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
