"""`diffclass fit`: from a folder of your own labelled images to a tuned, calibrated classifier in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from diffclass.cli.app import HoldOutOption, app, output_folder, read_paths
from diffclass.errors import DiffclassError
from diffclass.progress import console, err_console


@app.command()
def fit(
    dataset: Annotated[
        str,
        typer.Argument(
            help="Your labelled images: folder:DIR (one sub-folder per class) or list:FILE.csv.", callback=read_paths
        ),
    ],
    out: Annotated[Path, typer.Option(help="Folder for the model (and its plain twin).", callback=output_folder)],
    steps: Annotated[int | None, typer.Option(min=1, help="Training steps (default: about 120 passes).")] = None,
    width: Annotated[
        int | None, typer.Option(min=2, max=1024, help="UNet width (default: 16 up to 16 px, else 32).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per training step.")] = 128,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 2e-3,
    hold_out: HoldOutOption = 0.15,
    augment: Annotated[
        str | None,
        typer.Option(
            help="Training augmentation, e.g. shift=0.1,scale=0.1 for objects that move "
            "(default: colour=0.2 for colour images, else none)."
        ),
    ] = None,
    image_size: Annotated[
        int | None, typer.Option(min=4, max=1024, help="Model input size (default: the images' own).")
    ] = None,
    with_twin: Annotated[bool, typer.Option(help="Also train the plain twin and tune prefilters with it.")] = False,
    twin_steps: Annotated[int, typer.Option(min=1, help="The twin's training steps.")] = 3000,
    refit: Annotated[
        bool, typer.Option(help="Last, train again on every image (held-out part included), keeping what was fitted.")
    ] = True,
    seed: Annotated[int, typer.Option(help="Seed of the hold-out, training and noise bank.")] = 0,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="Save a resumable training state every N steps.")] = 250,
    resume: Annotated[bool, typer.Option(help="Continue a fit that was stopped, from where it stopped.")] = False,
):
    """The whole recipe from your folder to a tuned, calibrated classifier: hold out a part, train (with colour
    jitter for colour images), calibrate the timestep window, fit the temperature, tune the default strategy on
    the held-out part (optionally with a plain-twin prefilter), measure it there, and train it again on every
    image for the model you keep."""
    from diffclass.data.augment import Augmentation
    from diffclass.data.folders import survey
    from diffclass.recipe import fit as run_fit
    from diffclass.recipe import plan_for
    from diffclass.report import fit_table

    if not dataset.startswith(("folder:", "list:")):
        raise DiffclassError(f"diffclass fit takes your own images (folder:DIR or list:FILE.csv), got {dataset!r}")
    found = survey(dataset, image_size)
    overrides = dict(steps=steps, width=width, batch_size=batch_size, lr=lr, hold_out=hold_out, seed=seed)
    overrides.update(
        image_size=image_size,
        with_twin=with_twin,
        twin_steps=twin_steps,
        checkpoint_every=checkpoint_every,
        refit=refit,
    )
    if augment is not None:
        overrides["augment"] = Augmentation.parse(augment).spec
    plan = plan_for(found.images, found.image_size, found.channels, **overrides)
    err_console.print(
        f"fit: {plan.steps} training steps of {plan.batch_size} images at width {plan.width}, "
        f"augment {plan.augment}, {plan.hold_out:.0%} held out"
        + (", with the plain twin" if with_twin else "")
        + (", then again on every image" if refit else ""),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    record = run_fit(dataset, out, plan, resume=resume)
    console.print(fit_table(record))
    if "refit" in record["done"]:
        measured = out / record["done"]["refit"]["measured_model"]
        console.print(f"then trained again on every image; the measured model is in {measured}", soft_wrap=True)
    console.print(f"classify with: diffclass classify IMAGE --model {out}")
