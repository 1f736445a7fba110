"""What the commands share: loading a model from the command line's options, and record-folder keys."""

from __future__ import annotations

from diffclass.progress import console


def load_model(model: str, *, classes=None, prompt=None, prompts=None, dataset=None, **options):
    """`diffclass.load` with the zero-shot options the command line names (class list, prompts, dataset)."""
    from diffclass.loading import load, zero_shot_options

    return load(model, **zero_shot_options(model, classes, prompt, prompts, dataset), **options)


def record_options(clf, model, data, strategy_name: str, seed, loss, tree, node_conditioning) -> dict:
    """What a record folder is keyed by: a rerun with any of these changed must not reuse its records."""
    grid = getattr(clf, "scorer", None) and clf.scorer.grid
    return dict(
        model=str(model),
        dataset=data.name,
        strategy=strategy_name,
        seed=seed,
        loss=loss or "l2",
        timesteps=[grid.t_min, grid.t_max, grid.size] if grid else None,
        tree=tree,
        node_conditioning=node_conditioning,
    )


def wrote(path) -> None:
    console.print(f"wrote {path}")
