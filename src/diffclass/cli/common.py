"""What the commands share: loading a model from the command line's options, and record-folder keys."""

from __future__ import annotations

from diffclass.errors import DiffclassError
from diffclass.progress import console, err_console


def load_model(model: str, *, classes=None, prompt=None, prompts=None, dataset=None, **options):
    """`diffclass.load` with the zero-shot options the command line names (class list, prompts, dataset)."""
    from diffclass.hub import resolve_model
    from diffclass.loading import load, zero_shot_options

    ref = resolve_model(model)  # once: its folder, diffclass.json and weights digest serve every layer
    return load(ref, **zero_shot_options(ref, classes, prompt, prompts, dataset), **options)


def wrote(path) -> None:
    console.print(f"wrote {path}")


def choose_strategy(clf, strategy=None, max_loss=None, budget=None, speedup=None):
    """The strategy the options name: `--strategy`, or `auto` with `--max-loss` / `--budget` / `--speedup`, or the
    model's default. What `auto` chose, or that an untuned model runs its fallback, is said in one line."""
    auto = {k: v for k, v in dict(max_loss=max_loss, budget=budget, speedup=speedup).items() if v is not None}
    if auto:
        if strategy and not strategy.startswith("auto"):
            raise DiffclassError("--max-loss, --budget and --speedup choose from a tuned front (auto); drop --strategy")
        strategy = "auto(" + ";".join(f"{k}={v}" for k, v in auto.items()) + ")"
    spec = clf.strategy(strategy)
    front = clf.info.front
    line = None
    if front and (strategy or clf.default_strategy).startswith("auto"):
        where = front.get("tuned_on", "training images")
        line = (
            f"auto chose {spec.name} (front of {len(front['points'])} strategies on {front['images']} images: {where})"
        )
    elif strategy is None and clf.scorer is not None:
        line = f"{clf.model_name} is not tuned: running {spec.name} (diffclass tune makes the default faster)"
    if line:
        err_console.print(line, markup=False, highlight=False, soft_wrap=True)
    return spec
