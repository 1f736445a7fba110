"""Commands that make a cheaper model from a trained one: `prune` (fewer channels per call) and `distill` (an
all-class student: one call per slot for every class)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from diffclass.cli.app import AugmentOption, DeviceOption, ModelOption, app, output_folder, read_paths
from diffclass.progress import console


@app.command()
def prune(
    out: Annotated[Path, typer.Option(help="Folder for the pruned (and fine-tuned) model.", callback=output_folder)],
    model: ModelOption = "digits",
    method: Annotated[str, typer.Option(help="random, magnitude, taylor or diff-pruning.")] = "diff-pruning",
    ratio: Annotated[float, typer.Option(help="Fraction of each channel group to remove.")] = 0.25,
    threshold: Annotated[
        float, typer.Option(help="diff-pruning: skip timesteps whose loss is below this fraction of the largest.")
    ] = 0.05,
    finetune_steps: Annotated[int, typer.Option(min=0, help="Fine-tuning steps after pruning (0: none).")] = 500,
    calibration_images: Annotated[int, typer.Option(min=1, help="Training images the importance is measured on.")] = 64,
    calibration_steps: Annotated[int, typer.Option(min=1, max=1000, help="Timesteps walked from the clean end.")] = 100,
    protect_class_embedding: Annotated[bool, typer.Option(help="Never prune the class embedding.")] = True,
    resume: Annotated[bool, typer.Option(help="Continue the fine-tuning checkpointed in OUT.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the calibration batch, noise and fine-tuning.")] = 0,
):
    """Structurally prune a model's noise network (Diff-Pruning or a baseline), then fine-tune it."""
    from diffclass.pruning.finetune import prune_model

    report = prune_model(
        model,
        out,
        method,
        ratio,
        finetune_steps,
        resume=resume,
        seed=seed,
        threshold=threshold,
        calibration_images=calibration_images,
        calibration_steps=calibration_steps,
        protect_class_embedding=protect_class_embedding,
    )
    if report is not None:
        console.print(report.summary())
    console.print(f"saved {'fine-tuned' if resume else 'pruned'} model to {out}")


@app.command()
def distill(
    out: Annotated[
        Path, typer.Option(help="Folder for the all-class student and its checkpoint.", callback=output_folder)
    ],
    model: Annotated[
        str,
        typer.Option("--model", "-m", help="Class-conditional teacher (embedded name or folder).", callback=read_paths),
    ],
    steps: Annotated[int, typer.Option(min=1, help="Optimisation steps.")] = 4000,
    batch_size: Annotated[int, typer.Option(min=1, max=4096, help="Noised training images per step.")] = 64,
    classes_per_image: Annotated[
        int, typer.Option(min=1, max=4096, help="Teacher calls per image: its true class and random others.")
    ] = 8,
    window_fraction: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of timesteps drawn from the teacher's calibrated window.")
    ] = 0.8,
    lr: Annotated[float, typer.Option(min=1e-8, max=1.0, help="AdamW learning rate.")] = 1e-3,
    ema_decay: Annotated[float, typer.Option(min=0.0, max=1.0, help="EMA decay of the saved weights.")] = 0.999,
    rank_weight: Annotated[
        float, typer.Option(min=0.0, max=1e3, help="Weight of the term that ranks the true class first (0: off).")
    ] = 0.0,
    rank_temperature: Annotated[
        float, typer.Option(min=1e-8, max=1e3, help="Softmax temperature of the ranking term, in error units.")
    ] = 0.003,
    init: Annotated[
        str | None, typer.Option(help="Start from this all-class student of the same teacher (fine-tuning).")
    ] = None,
    augment: AugmentOption = "none",
    checkpoint_every: Annotated[int, typer.Option(min=1, help="Save a resumable checkpoint every N steps.")] = 500,
    resume: Annotated[bool, typer.Option(help="Continue from the checkpoint in OUT.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of batches, timesteps, noise and sampled classes.")] = 0,
    device: DeviceOption = "cpu",
):
    """Distil a class-conditional model into an all-class student: one network call then scores every class."""
    from diffclass.distillation import DistillConfig
    from diffclass.distillation import distill as run_distillation

    config = DistillConfig(
        steps=steps,
        batch_size=batch_size,
        classes_per_image=classes_per_image,
        window_fraction=window_fraction,
        lr=lr,
        ema_decay=ema_decay,
        rank_weight=rank_weight,
        rank_temperature=rank_temperature,
        init=init,
        augment=augment,
        checkpoint_every=checkpoint_every,
        seed=seed,
        device=device,
    )
    run_distillation(model, out, config, resume=resume)
    console.print(f"saved the all-class student to {out} (calibrate it: diffclass calibrate --model {out} --save)")
