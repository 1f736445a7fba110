"""`diffclass fit-anchors`: where each class's images put their content, stored with a model for `registered`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from diffclass.cli.app import app, read_paths
from diffclass.errors import DiffclassError
from diffclass.hub import ensure_writable
from diffclass.progress import console


@app.command("fit-anchors")
def fit_anchors_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model folder to update.", callback=read_paths)],
    images_from: Annotated[
        str | None,
        typer.Option(
            help="Labelled images of the model's classes (folder:DIR, list:FILE.csv); default: its training data.",
            callback=read_paths,
        ),
    ] = None,
):
    """Store where each class's images put their content (the mean ink centre per class) in the model's
    diffclass.json, for the `registered` strategy. `diffclass train` stores them itself."""
    from diffclass.data import load_dataset
    from diffclass.hub import ModelInfo
    from diffclass.placement import fit_anchors

    ensure_writable(model)
    info = ModelInfo.load(model)
    source = images_from or info.dataset
    if source is None:
        raise DiffclassError(f"{model} does not name its training data; pass --images-from")
    data = load_dataset(source, "train", info.image_size, info.channels, info.class_names)
    if data.class_names != info.class_names:
        raise DiffclassError(f"{source} has other classes than {model}")
    info.anchors = fit_anchors(data.images, data.labels, len(info.class_names))
    info.save(model)
    ys, xs = [a[0] for a in info.anchors], [a[1] for a in info.anchors]
    console.print(
        f"anchors of {len(ys)} classes from {len(data)} images of {source} (y {min(ys):.1f}-{max(ys):.1f}, "
        f"x {min(xs):.1f}-{max(xs):.1f} pixels) saved to {model}"
    )
