"""`diffclass robustness`: a model under a whole corruption suite (ImageNet-C by default), with a baseline;
`diffclass attack`: the same model under an adversarial attack (torchattacks)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from diffclass.cli.app import (
    BatchOption,
    DatasetOption,
    DeviceOption,
    JsonOption,
    ModelOption,
    OutOption,
    SeedOption,
    StrategyOption,
    app,
    output_file,
)
from diffclass.cli.common import choose_strategy, load_model, wrote
from diffclass.errors import DiffclassError
from diffclass.progress import console


@app.command()
def robustness(
    model: ModelOption = "digits",
    dataset: DatasetOption = None,
    strategy: StrategyOption = None,
    corruptions: Annotated[
        str,
        typer.Option(
            help="Comma-separated suites or corruptions: imagenet-c (its 15), imagenet-c:all (19), "
            "imagenet-c:held-out, basic (noise, blur, downsample), position (shift 1-4 px, centre), or names."
        ),
    ] = "imagenet-c",
    severities: Annotated[str, typer.Option(help="Severities: 1-5, 3 or 1,3,5.")] = "1-5",
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N test images (the same for every run).")
    ] = None,
    baseline: Annotated[
        str | None, typer.Option(help="A model run on the same suite and images: corruption errors relative to it.")
    ] = None,
    out: OutOption = None,
    json_path: JsonOption = None,
    plot: Annotated[
        Path | None, typer.Option(help="PNG heatmap of top-1 per corruption and severity.", callback=output_file)
    ] = None,
    seed: SeedOption = 0,
    batch_size: BatchOption = 256,
    device: DeviceOption = "cpu",
):
    """Top-1 clean and under every corruption and severity of a suite (ImageNet-C by default), the mean corruption
    accuracy and its drop from clean, and with --baseline the corruption error relative to another model
    (resumable with --out)."""
    from diffclass.loading import eval_dataset
    from diffclass.records import refuse_store_file
    from diffclass.report import robustness_table, write_json
    from diffclass.robustness import corruption_errors, heatmap, parse_severities, run_suite, suite_specs

    refuse_store_file(json_path, out)
    levels = parse_severities(severities)
    suite_specs(corruptions, levels)  # a bad name is refused before any model loads
    results = []
    for name, folder in ((model, "model"), *(((baseline, "baseline"),) if baseline else ())):
        clf = load_model(name, seed=seed, batch_size=batch_size, device=device, dataset=dataset)
        spec = choose_strategy(clf, strategy if name == model else None)
        data = eval_dataset(clf, dataset)
        records = None if out is None else out / folder
        results.append(run_suite(clf, data, spec, corruptions, levels, limit, records))
    result = results[0]
    if baseline:
        result["against"] = corruption_errors(result, results[1])
        result["baseline"] = results[1]
    console.print(robustness_table(results, result.get("against")))
    if json_path:
        write_json(json_path, result)
        wrote(json_path)
    if plot:
        heatmap(results, plot)
        wrote(plot)


@app.command()
def attack(
    model: ModelOption = "digits",
    dataset: DatasetOption = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            help="What is attacked and answers: exhaustive(n=K) or prefilter(by=…;then=exhaustive(n=K)) for "
            "diffusion models (default: theirs where it is one of these, else exhaustive(n=8)), cp(steps=K) or plain "
            "for DiDiCM models (default: theirs)."
        ),
    ] = None,
    name: Annotated[
        str, typer.Option("--attack", help="pgd-linf, pgd-l2, apgd-ce, apgd-dlr or autoattack (rand version).")
    ] = "pgd-linf",
    eps: Annotated[str, typer.Option(help="Budget in [0, 1] pixel units: 8/255, 0.5 (ℓ2).")] = "8/255",
    steps: Annotated[int, typer.Option(min=1, max=10_000, help="Attack iterations.")] = 10,
    eot: Annotated[
        int,
        typer.Option(
            min=0, max=1000, help="0: the model's own noise (its exact decision); K: average K fresh noise draws."
        ),
    ] = 0,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N test images.")] = None,
    json_path: JsonOption = None,
    batch: Annotated[int, typer.Option(min=1, max=4096, help="Images attacked together.")] = 16,
    seed: SeedOption = 0,
    device: DeviceOption = "cpu",
):
    """Robust top-1 under an adversarial attack on the model's differentiable score, beside clean top-1 on the
    same images and the share of images with a non-zero input gradient; resumable through --json."""
    from diffclass.attack import ATTACKS, parse_eps
    from diffclass.attack import attack as run_attack
    from diffclass.loading import eval_dataset
    from diffclass.progress import progress_bar
    from diffclass.report import attack_table

    budget = parse_eps(eps)
    ATTACKS.get(name)  # an unknown attack is refused before any model loads
    clf = load_model(model, seed=seed, device=device, dataset=dataset)
    data = eval_dataset(clf, dataset)
    data = data.subset(range(min(limit, len(data)))) if limit else data
    runs = run_attack(clf, data, name, budget, steps, strategy or clf.attack_strategy, eot, batch, seed, json_path)
    run = None
    with progress_bar() as bar:
        task = bar.add_task(f"{name} eps={eps}", total=len(data))
        for run in runs:
            bar.update(task, completed=run.images, status=f"robust {run.robust_top1:.1%}")
    if run is None:
        raise DiffclassError("no image to attack")
    console.print(attack_table(run.summary()))
    if json_path:
        wrote(json_path)
