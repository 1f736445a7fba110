"""What the commands share: loading a model from the command line's options, and record-folder keys."""

from __future__ import annotations

from diffclass.progress import console


def load_model(model: str, *, classes=None, prompt=None, prompts=None, dataset=None, **options):
    """`diffclass.load` with the zero-shot options the command line names (class list, prompts, dataset)."""
    from diffclass.loading import load, zero_shot_options

    return load(model, **zero_shot_options(model, classes, prompt, prompts, dataset), **options)


def wrote(path) -> None:
    console.print(f"wrote {path}")
