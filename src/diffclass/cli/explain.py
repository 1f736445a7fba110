"""`diffclass explain`: one figure (and JSON) showing what a decision rests on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from diffclass.cli.app import JsonOption, ModelOption, SeedOption, StrategyOption, app, output_file, read_paths
from diffclass.cli.common import wrote
from diffclass.errors import DiffclassError
from diffclass.progress import console


@app.command()
def explain(
    image: Annotated[Path, typer.Argument(help="An image file (any size or mode).", callback=read_paths)],
    model: ModelOption = "digits",
    strategy: StrategyOption = None,
    out: Annotated[Path, typer.Option(help="PNG file for the figure.", callback=output_file)] = Path("explain.png"),
    json_path: JsonOption = None,
    slots: Annotated[int, typer.Option(min=2, max=4096, help="Timesteps the error curves are drawn on.")] = 16,
    seed: SeedOption = 0,
):
    """Show a decision: the top classes' errors against the timestep on shared noise, where in the image the
    winner and the runner-up differ, each top class's estimate of the clean image, and the probabilities."""
    from diffclass.data.base import dataset_background
    from diffclass.data.images import load_image
    from diffclass.explain import explain as run_explain
    from diffclass.explain import explain_plot
    from diffclass.loading import load
    from diffclass.report import write_json

    if out.is_dir() or out.suffix.lower() != ".png":
        raise DiffclassError(f"--out must name a .png file, got {out}")
    clf = load(model, seed=seed)
    info = clf.info
    loaded = load_image(image, info.image_size, info.channels, dataset_background(info.dataset))
    result = run_explain(clf, loaded.tensor, strategy, loaded.image_id, slots)
    explain_plot(result, out)
    d = result.decision
    console.print(f"{image}: {d.class_name} ({d.probabilities[d.label]:.1%}, {d.nfe} NFEs)")
    wrote(out)
    if json_path:
        write_json(json_path, result.to_json())
        wrote(json_path)
