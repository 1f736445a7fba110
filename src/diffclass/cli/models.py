"""Commands that make or tune a model: `train`, `sample`, `fit-temperature`, `calibrate`, `tune` (`prune` and
`distill`, which make a cheaper model from a trained one, are in cli/compress.py; `fit-anchors` in cli/anchors.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from diffclass.cli.app import (
    AugmentOption,
    BatchOption,
    DeviceOption,
    HoldOutOption,
    ImagesFromOption,
    JsonOption,
    ModelOption,
    SeedOption,
    app,
    output_file,
    output_folder,
    read_paths,
)
from diffclass.cli.common import wrote
from diffclass.errors import DiffclassError
from diffclass.hub import ensure_writable
from diffclass.progress import console


@app.command()
def train(
    out: Annotated[Path, typer.Option(help="Folder for the trained model and its checkpoint.", callback=output_folder)],
    dataset: Annotated[
        str,
        typer.Option(
            help="Training data: an embedded name, or your own images as folder:DIR (one sub-folder per class) or "
            "list:FILE.csv (path,label); their classes, size and colour are read from the images.",
            callback=read_paths,
        ),
    ] = "digits",
    steps: Annotated[int, typer.Option(min=1, help="Optimisation steps.")] = 3000,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per step.")] = 128,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 2e-3,
    width: Annotated[int, typer.Option(min=2, max=1024, help="Channels of the first UNet level (doubles twice).")] = 16,
    image_size: Annotated[
        int | None, typer.Option(min=4, max=1024, help="Resize the data to this size (default: the images' own).")
    ] = None,
    ema_decay: Annotated[float, typer.Option(min=0.0, max=1.0, help="EMA decay of the saved weights.")] = 0.999,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="Save a resumable checkpoint every N steps.")] = 500,
    resume: Annotated[
        bool, typer.Option(help="Continue from OUT's checkpoint; past a finished run, its fitting is dropped.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of weights, batches, timesteps and noise.")] = 0,
    device: DeviceOption = "cpu",
    tree: Annotated[
        str | None, typer.Option(help="Label tree (shipped name or JSON): gives internal nodes embeddings.")
    ] = None,
    ancestor_probability: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="With --tree: chance of conditioning a sample on an ancestor of its class."
        ),
    ] = 0.2,
    augment: AugmentOption = "none",
    hold_out: HoldOutOption = 0.15,
    init_from: Annotated[
        str | None,
        typer.Option(help="Start from this saved model's weights (e.g. an embedded one), with a fresh optimiser."),
    ] = None,
):
    """Train a class-conditional diffusion UNet (DDPM loss, AdamW, EMA)."""
    from diffclass.data.augment import Augmentation
    from diffclass.training import TrainConfig, train_model

    config = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        ema_decay=ema_decay,
        checkpoint_every=checkpoint_every,
        seed=seed,
        device=device,
        ancestor_probability=ancestor_probability if tree or init_from else 0.0,  # a started-from model keeps its tree
        augment=Augmentation.parse(augment).spec,
        hold_out=hold_out,
    )
    train_model(out, dataset, config, width=width, image_size=image_size, tree=tree, resume=resume, init_from=init_from)
    console.print(f"saved model to {out}")


@app.command()
def sample(
    out: Annotated[Path, typer.Option(help="PNG file for the grid.", callback=output_file)] = Path("samples.png"),
    model: ModelOption = "digits",
    per_class: Annotated[int, typer.Option(min=1, max=1000, help="Samples per class (one row per class).")] = 8,
    steps: Annotated[int, typer.Option(min=1, max=1000, help="DDIM steps.")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the starting noise.")] = 0,
    device: DeviceOption = "cpu",
):
    """Draw a grid of generated samples, one row per class (DDIM, seeded)."""
    from diffclass.training import sample_grid

    if out.is_dir() or out.suffix.lower() != ".png":
        raise DiffclassError(f"--out must name a .png file, got {out}")
    sample_grid(model, out, per_class=per_class, steps=steps, seed=seed, device=device)
    wrote(out)


def _diffusion_model(model: Path, seed: int, batch_size: int):
    """Commands that tune a diffusion model's scoring (temperature, timestep window) refuse DiDiCM models."""
    from diffclass.loading import load

    clf = load(model, seed=seed, batch_size=batch_size)
    if clf.scorer is None:
        raise DiffclassError(f"{model} is a DiDiCM model; this command tunes diffusion classifiers")
    return clf


@app.command("fit-temperature")
def fit_temperature_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model folder to update.", callback=read_paths)],
    images: Annotated[int, typer.Option(min=1, help="Held-out images to fit on.")] = 200,
    images_from: ImagesFromOption = None,
    slots: Annotated[
        int, typer.Option(min=1, max=1000, help="Timesteps every class is scored on (fewer: cheaper for many classes).")
    ] = 16,
    seed: SeedOption = 0,
):
    """Fit the softmax temperature (and the winner's typical error, which marks images unlike the training data) on
    images the model never trained on and store them in its diffclass.json."""
    from diffclass.classifier import fit_confidence
    from diffclass.loading import unseen_images

    ensure_writable(model)
    clf = _diffusion_model(model, seed, 256)
    data = unseen_images(clf, images, seed, images_from)
    clf.info.temperature, clf.info.typical_error = fit_confidence(clf, data.images, data.labels, data.ids, slots=slots)
    clf.info.save(model)
    typical = clf.info.typical_error["error"]
    console.print(f"temperature {clf.info.temperature:.3g} and typical error {typical:.3g} saved to {model}")


@app.command()
def calibrate(
    model: Annotated[
        Path, typer.Option("--model", "-m", help="Model folder to calibrate (updated in place).", callback=read_paths)
    ],
    images: Annotated[int, typer.Option(min=1, help="Held-out images to measure on.")] = 100,
    images_from: ImagesFromOption = None,
    grid_size: Annotated[int, typer.Option(min=1, max=4096, help="Timesteps spread evenly over the whole range.")] = 32,
    window: Annotated[int, typer.Option(min=1, help="Consecutive timesteps per candidate window.")] = 8,
    save: Annotated[bool, typer.Option(help="Store the best window with the model.")] = True,
    weights: Annotated[
        bool, typer.Option(help="Also learn per-bin timestep weights on the window and store them (weighting learned).")
    ] = False,
    bins: Annotated[int, typer.Option(min=1, max=64, help="With --weights: bins of the window, one weight each.")] = 8,
    plot: Annotated[Path | None, typer.Option(help="PNG of accuracy against timestep.", callback=output_file)] = None,
    json_path: JsonOption = None,
    seed: SeedOption = 0,
    batch_size: BatchOption = 256,
):
    """Measure where along the timesteps the class information lies, and keep the best window."""
    from diffclass.calibration import calibrate as run_calibration
    from diffclass.calibration import calibration_plot
    from diffclass.loading import unseen_images
    from diffclass.report import calibration_table, write_json

    if save or weights:
        ensure_writable(model)
    clf = _diffusion_model(model, seed, batch_size)
    data = unseen_images(clf, images, seed, images_from)
    result = run_calibration(clf, data, grid_size=grid_size, window=window)
    console.print(calibration_table(result))
    if json_path:
        write_json(json_path, result.to_json())
    if plot:
        calibration_plot(result, plot)
        wrote(plot)
    if weights:
        from diffclass.calibration import learn_weights
        from diffclass.timesteps import TimestepGrid

        window = TimestepGrid(*result.best_window) if save else clf.scorer.grid
        learned = learn_weights(clf, data, window, bins=bins)
        console.print(
            "learned timestep weights: "
            + ", ".join(f"[{a}, {b}) {w:.2f}" for a, b, w in zip(learned.edges, learned.edges[1:], learned.weights))
        )
        clf.info.weighting = learned.to_dict()
    if save or weights:
        if save:
            clf.info.timestep_range = result.best_window
        clf.info.save(model)
        saved = [f"timestep window {list(result.best_window)}"] * save + ["learned timestep weights"] * weights
        console.print(f"saved {' and '.join(saved)} to {model}")


@app.command()
def tune(
    model: Annotated[
        Path,
        typer.Option("--model", "-m", help="Model folder to tune (its front is stored there).", callback=read_paths),
    ],
    images: Annotated[int, typer.Option(min=2, help="Held-out images to replay strategies on.")] = 400,
    images_from: ImagesFromOption = None,
    slots: Annotated[
        int | None, typer.Option(min=2, max=4096, help="Slots per class in the table (default: grid).")
    ] = None,
    prefilter: Annotated[
        str | None, typer.Option(help="A cheap model with the same classes (plain-glyphs): adds prefilter(by=...).")
    ] = None,
    prefilter_ranker: Annotated[
        str | None,
        typer.Option(help="The prefilter's twin trained with --hold-out: ranks its held-out images, tuned on."),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the error table, reused by a rerun (default: ~/.cache/diffclass).", callback=output_folder
        ),
    ] = None,
    seed: SeedOption = 0,
    batch_size: BatchOption = 256,
):
    """Replay hundreds of strategies on one error table of images the model never trained on and store the Pareto
    front of top-1 against compute with the model: `auto` (then the default strategy) picks from it for any
    budget, within its loss at a confidence the number of images supports."""
    from diffclass.loading import unseen_images
    from diffclass.report import front_table
    from diffclass.strategies.auto import pick
    from diffclass.tuning import tune as run_tuning

    if prefilter_ranker and not prefilter:
        raise DiffclassError("--prefilter-ranker ranks for a --prefilter; name the prefilter too")
    ensure_writable(model)
    clf = _diffusion_model(model, seed, batch_size)
    data = unseen_images(clf, images, seed, images_from, prefilter_ranker)
    tuned_on = images_from or f"the held-out part of {clf.info.dataset}"
    front = run_tuning(
        clf, data, slots, prefilter=prefilter, cache=cache, prefilter_ranker=prefilter_ranker, tuned_on=tuned_on
    )
    console.print(front_table(front))
    clf.info.front = front
    clf.info.save(model)
    default = pick(front)
    console.print(
        f"saved a front of {len(front['points'])} strategies to {model}; auto now runs {default['spec']} "
        f"({default['nfe_per_image']:g} NFEs/image: within 0.5 points of exhaustive at 90% confidence)"
    )
