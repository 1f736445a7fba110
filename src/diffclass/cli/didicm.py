"""`diffclass didicm train`: DiDiCM classifiers and their plain twins (evaluated by `evaluate` and `bench`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from diffclass.cli.app import AugmentOption, HoldOutOption, didicm_app, output_folder, read_paths
from diffclass.progress import console


@didicm_app.command("train")
def didicm_train(
    out: Annotated[
        Path,
        typer.Option(
            help="Folder for the model (didicm.json + model.safetensors) and its checkpoint.", callback=output_folder
        ),
    ],
    dataset: Annotated[
        str,
        typer.Option(
            help="glyphs, emoji, digits, or your own images: folder:DIR or list:FILE.csv.", callback=read_paths
        ),
    ] = "glyphs",
    steps: Annotated[int, typer.Option(min=1, help="Optimisation steps.")] = 3000,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per step.")] = 128,
    lr: Annotated[float, typer.Option(help="Peak AdamW learning rate (one-cycle).")] = 2e-3,
    width: Annotated[int, typer.Option(min=1, max=1024, help="Channels of the first ResNet stage.")] = 32,
    data_fraction: Annotated[float, typer.Option(help="Train on this fraction of the training split.")] = 1.0,
    data_ratio: Annotated[
        float, typer.Option(help="Train on this fraction of each class (stratified, seeded: the paper's protocol).")
    ] = 1.0,
    image_size: Annotated[
        int | None,
        typer.Option(min=4, max=1024, help="Train (and so test) at this resolution, e.g. 8 for low-resolution glyphs."),
    ] = None,
    hold_out: HoldOutOption = 0.15,
    baseline: Annotated[bool, typer.Option(help="Train the plain classifier of the same backbone instead.")] = False,
    mixup: Annotated[float, typer.Option(help="Mixup Beta(a, a) parameter; soft labels (0: off).")] = 0.0,
    cutmix: Annotated[float, typer.Option(help="CutMix Beta(a, a) parameter; soft labels by area (0: off).")] = 0.0,
    label_smoothing: Annotated[float, typer.Option(help="Label smoothing mass (0: off).")] = 0.0,
    head: Annotated[
        str,
        typer.Option(
            help="scores: free log concrete scores (the paper's; more robust under noise); p0: concrete scores "
            "derived from a clean-label distribution (ours before)."
        ),
    ] = "scores",
    transitions: Annotated[
        str,
        typer.Option(
            help="balanced: half the noisy labels changed, importance-weighted (ours); sampled: drawn from the "
            "forward process (the paper's SEDD loss)."
        ),
    ] = "balanced",
    schedule: Annotated[
        str, typer.Option(help="The label diffusion's noise schedule: loglinear, or geometric (the paper's option).")
    ] = "loglinear",
    augment: AugmentOption = "none",
    seed: Annotated[int, typer.Option(help="Seed of weights, batches and noise.")] = 0,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="Save a resumable checkpoint every N steps.")] = 500,
    resume: Annotated[bool, typer.Option(help="Continue from the checkpoint in OUT (same options).")] = False,
):
    """Train a DiDiCM classifier (score entropy over noisy labels) or, with --baseline, its plain twin."""
    from diffclass.data import load_dataset
    from diffclass.data.augment import Augmentation
    from diffclass.didicm.training import DiDiCMTrainConfig, train_didicm
    from diffclass.hub.checkpoints import CHECKPOINT_DIR

    config = DiDiCMTrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        width=width,
        baseline=baseline,
        data_fraction=data_fraction,
        data_ratio=data_ratio,
        hold_out=hold_out,
        mixup=mixup,
        cutmix=cutmix,
        label_smoothing=label_smoothing,
        head=head,
        transitions=transitions,
        schedule=schedule,
        augment=Augmentation.parse(augment).spec,
        seed=seed,
    )
    model = train_didicm(
        load_dataset(dataset, "train", image_size),
        config,
        checkpoint=out / CHECKPOINT_DIR,
        checkpoint_every=checkpoint_every,
        resume=resume,
    )
    model.save_pretrained(out)
    console.print(f"saved {'baseline' if baseline else 'DiDiCM'} model to {out}")
