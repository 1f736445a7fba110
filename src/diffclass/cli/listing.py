"""`diffclass strategies` and `diffclass models`: what can be named, with every option and its default."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from diffclass.cli.app import app
from diffclass.progress import console


def _registry_table(title: str, registry) -> Table:
    table = Table(title=title, show_lines=True)
    for column in ("name", "what it does", "options (default; kind)"):
        table.add_column(column, overflow="fold")
    for entry in registry:
        options = "\n".join(
            f"{o.name}={'(derived)' if o.default is None else escape(_shown(o.default))}; {o.kind}"
            + (f" — {o.help}" if o.help else "")
            for o in entry.options
        )
        table.add_row(escape(entry.name), entry.help, options or "-")
    return table


def _shown(value) -> str:
    from diffclass.registry import format_option

    return format_option(value)


@app.command()
def strategies() -> None:
    """Every strategy, pruning rule and DiDiCM sampler, with its options and their defaults; any strategy also
    takes t=MIN-MAX, a timestep range of its own. Spell one as name(option=value;...), e.g. adaptive(n=8,32)."""
    from diffclass.didicm.samplers import SAMPLERS
    from diffclass.strategies import RULES, STRATEGIES

    console.print(_registry_table("strategies (diffusion models)", STRATEGIES))
    console.print(_registry_table("pruning rules of hdc / hdc+beam (rule=NAME plus its option)", RULES))
    console.print(_registry_table("samplers (DiDiCM models)", SAMPLERS))


@app.command()
def models() -> None:
    """The embedded models (no download) and the other kinds of model `--model` takes."""
    from diffclass.hub import embedded_models, resolve_model

    table = Table(title="embedded models: pass the name as --model")
    for column in ("name", "kind", "network"):
        table.add_column(column)
    for name in embedded_models():
        ref = resolve_model(name)
        table.add_row(name, ref.kind, ref.info.backbone if ref.info else "DiDiRN")
    console.print(table)
    console.print(
        "also: a model folder saved by diffclass, sd:HUB_ID_OR_FOLDER (Stable Diffusion, zero-shot), "
        "sd3:HUB_ID_OR_FOLDER (Stable Diffusion 3, flow matching), dit:HUB_ID_OR_FOLDER (DiT), a DiDiCM "
        "folder",
        highlight=False,
    )
