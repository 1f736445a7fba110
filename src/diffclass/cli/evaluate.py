"""`diffclass evaluate`, `bench` and `classify`: run a model on labelled data, on many strategies, or on files."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from diffclass.cli.app import (
    BatchOption,
    BudgetOption,
    ClassesOption,
    CorruptionOption,
    DatasetOption,
    DeviceOption,
    DtypeOption,
    JsonOption,
    LossOption,
    MaxLossOption,
    ModelOption,
    NodeModeOption,
    OutOption,
    OverwriteOption,
    PromptOption,
    PromptsOption,
    SeedOption,
    SpeedupOption,
    StrategyOption,
    TimestepsOption,
    TreeOption,
    WeightingOption,
    app,
    output_file,
    output_folder,
    read_paths,
)
from diffclass.cli.common import choose_strategy, load_model, wrote
from diffclass.progress import console, err_console, print_error


@app.command()
def evaluate(
    model: ModelOption = "digits",
    dataset: DatasetOption = None,
    strategy: StrategyOption = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Evaluate only the first N test images.")] = None,
    seed: SeedOption = 0,
    batch_size: BatchOption = 256,
    loss: LossOption = None,
    device: DeviceOption = "cpu",
    json_path: JsonOption = None,
    tree: TreeOption = None,
    node_conditioning: NodeModeOption = None,
    timesteps: TimestepsOption = None,
    out: OutOption = None,
    overwrite: OverwriteOption = False,
    classes: ClassesOption = None,
    prompt: PromptOption = None,
    prompts: PromptsOption = None,
    dtype: DtypeOption = "float32",
    corruption: CorruptionOption = None,
    max_loss: MaxLossOption = None,
    budget: BudgetOption = None,
    speedup: SpeedupOption = None,
    weighting: WeightingOption = None,
):
    """Measure top-1, top-5, NFEs, GMACs and seconds per image on a labelled test split (resumable with --out;
    shard over processes with torchrun --nproc_per_node N -m diffclass evaluate ...)."""
    from diffclass.evaluation import evaluate_sharded, run_identity
    from diffclass.loading import eval_dataset
    from diffclass.records import refuse_store_file
    from diffclass.report import group_table, summary_table, write_json

    refuse_store_file(json_path, out)
    zero_shot = dict(classes=classes, prompt=prompt, prompts=prompts, dataset=dataset, device=device, dtype=dtype)
    scoring = dict(seed=seed, batch_size=batch_size, loss=loss, timesteps=timesteps, weighting=weighting)
    clf = load_model(model, tree=tree, node_conditioning=node_conditioning, **zero_shot, **scoring)
    data = eval_dataset(clf, dataset, corruption)
    spec = choose_strategy(clf, strategy, max_loss, budget, speedup)
    keys = run_identity(clf, spec.name, node_conditioning=node_conditioning)
    summary = evaluate_sharded(
        clf, data, spec, limit=limit, out=out, record_options=keys, overwrite=overwrite, device=device
    )
    if summary is None:  # not rank 0 of a torchrun job
        return
    console.print(summary_table([summary]))
    if summary.by_group and len(summary.by_group) > 1:
        console.print(group_table(summary))
    if json_path:
        write_json(json_path, summary.to_json())
        wrote(json_path)


@app.command()
def bench(
    model: ModelOption = "digits",
    dataset: DatasetOption = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option("--strategy", "-s", help="A strategy to run (repeat); default: six standard ones."),
    ] = None,
    sweep: Annotated[
        bool, typer.Option(help="Sweep budgets (exhaustive n, adaptive stages, K, m, b); implies --original-grid.")
    ] = False,
    original_grid: Annotated[
        bool,
        typer.Option(
            help="On a calibrated model, repeat the exhaustive and adaptive runs on the full timestep range "
            "(the original method's grid); E*, C_E and C_A are printed for both grids."
        ),
    ] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N test images.")] = None,
    tree: TreeOption = None,
    seed: SeedOption = 0,
    batch_size: BatchOption = 256,
    loss: LossOption = None,
    device: DeviceOption = "cpu",
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write every run's summary and options.", callback=output_file)
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write a Pareto plot (top-1 vs NFEs/image) as PNG.", callback=output_file)
    ] = None,
    timesteps: TimestepsOption = None,
    node_conditioning: NodeModeOption = None,
    classes: ClassesOption = None,
    prompt: PromptOption = None,
    prompts: PromptsOption = None,
    dtype: DtypeOption = "float32",
    corruption: CorruptionOption = None,
    weighting: WeightingOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for every run's per-image records (one subfolder per strategy); a rerun resumes.",
            callback=output_folder,
        ),
    ] = None,
    overwrite: OverwriteOption = False,
):
    """Compare strategies on one dataset with one model and one seed, in one process (resumable with --out; with
    --json the summaries are rewritten after every run)."""
    from diffclass.bench import baselines, bench_specs, run_bench, run_folder
    from diffclass.evaluation import run_identity
    from diffclass.loading import eval_dataset
    from diffclass.records import RecordStore, refuse_store_file
    from diffclass.registry import parse_spec
    from diffclass.report import bench_table, pareto_plot, write_json

    refuse_store_file(json_path, out)
    zero_shot = dict(classes=classes, prompt=prompt, prompts=prompts, dataset=dataset, device=device, dtype=dtype)
    scoring = dict(seed=seed, batch_size=batch_size, loss=loss, timesteps=timesteps, weighting=weighting)
    clf = load_model(model, tree=tree, node_conditioning=node_conditioning, **zero_shot, **scoring)
    data = eval_dataset(clf, dataset, corruption)
    specs = bench_specs(clf, strategy, sweep=sweep, original_grid=original_grid)

    def store_for(strategy_name: str):
        if out is None:
            return None
        keys = run_identity(clf, strategy_name, node_conditioning=node_conditioning)
        return RecordStore(run_folder(out, strategy_name), keys, overwrite=overwrite)

    def save(summaries):
        if json_path:
            write_json(json_path, [dict(s.to_json(), options=parse_spec(s.strategy)[1]) for s in summaries])

    summaries = run_bench(clf, data, specs, limit=limit, store_for=store_for, on_result=save)
    console.print(bench_table(summaries))
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    found = baselines(summaries)
    for base in found:
        console.print(
            f"on {base.grid_label}: E* (best exhaustive top-1) = {base.best_exhaustive_top1:.2%}; "
            "cheapest within 0.5 points: "
            f"exhaustive C_E = {fmt(base.cheapest_exhaustive_nfe)} NFEs/image, "
            f"adaptive C_A = {fmt(base.cheapest_adaptive_nfe)} NFEs/image"
        )
    if json_path:
        wrote(json_path)
    if plot:
        levels = {f"E* on {b.grid_label}": b.best_exhaustive_top1 for b in found}
        pareto_plot(summaries, plot, title=f"{data.name}, model {model}", levels=levels)
        wrote(plot)


@app.command()
def classify(
    images: Annotated[
        list[Path], typer.Argument(help="Image files or folders (recursive), any size.", callback=read_paths)
    ],
    model: ModelOption = "digits",
    strategy: StrategyOption = None,
    top_k: Annotated[int, typer.Option(min=1, help="Classes to show per image.")] = 3,
    seed: SeedOption = 0,
    batch_size: BatchOption = 256,
    loss: LossOption = None,
    device: DeviceOption = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    out: OutOption = None,
    overwrite: OverwriteOption = False,
    classes: ClassesOption = None,
    prompt: PromptOption = None,
    prompts: PromptsOption = None,
    dtype: DtypeOption = "float32",
    max_loss: MaxLossOption = None,
    budget: BudgetOption = None,
    speedup: SpeedupOption = None,
    weighting: WeightingOption = None,
    stretch: Annotated[
        bool, typer.Option(help="Stretch images that are not square (default: pad them with their border colour).")
    ] = False,
):
    """Predict the class of each image, with the top-k classes and their probabilities (a file that cannot be read
    is reported and skipped; the exit code is then 2)."""
    from dataclasses import asdict

    from diffclass.data.images import expand_inputs
    from diffclass.evaluation import classify_files, run_identity
    from diffclass.records import RecordStore
    from diffclass.report import classify_table

    files, skipped, failures = expand_inputs(images)
    for failure in failures:
        print_error(failure)
    if skipped:
        err_console.print(f"skipped {skipped} file(s) that are not images (by extension)")
    zero_shot = dict(classes=classes, prompt=prompt, prompts=prompts, device=device, dtype=dtype)
    clf = load_model(model, seed=seed, batch_size=batch_size, loss=loss, weighting=weighting, **zero_shot)
    spec = choose_strategy(clf, strategy, max_loss, budget, speedup)
    if clf.scorer is not None and clf.info.temperature == 1.0 and not as_json:
        err_console.print(
            f"{clf.model_name} has no fitted temperature: its probabilities rank the classes but are not calibrated "
            "(diffclass fit-temperature fits one)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    store = RecordStore(out, run_identity(clf, spec.name, top_k=top_k), overwrite=overwrite) if out else None
    with store or nullcontext():
        results, problems = classify_files(clf, files, spec, top_k=top_k, store=store, stretch=stretch)
    rows = [asdict(r) for r in results]
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif rows:
        console.print(classify_table(rows))
    if failures or problems:
        raise typer.Exit(2)
