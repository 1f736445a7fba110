"""The typer apps every command module adds its commands to, and the options several commands share.

Nothing here imports torch: `diffclass --help` and the light commands must start instantly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)
tree_app = typer.Typer(no_args_is_help=True, help="Label trees: show, validate, build, induce, check.")
didicm_app = typer.Typer(no_args_is_help=True, help="DiDiCM: discrete diffusion over the label (and its plain twin).")
app.add_typer(tree_app, name="tree")
app.add_typer(didicm_app, name="didicm")


def _claim(ctx: typer.Context, option: str, paths: list[Path], writes: bool) -> None:
    """Remember the paths a run reads and writes, whichever option click parses first, and refuse an output that
    is one of the run's inputs or lies inside one (a model folder, an image folder): nothing read is overwritten."""
    seen = ctx.meta.setdefault("diffclass.paths", [])
    for claim in ((writes, option, p.resolve()) for p in paths):
        for other in seen:
            if other[0] != claim[0]:
                (_, read, source), (_, written, out) = sorted([claim, other])
                if out.is_relative_to(source):
                    raise typer.BadParameter(f"{written} {out} is {read} {source} or inside it; write elsewhere")
        seen.append(claim)


def _output(folder: bool):
    """An option callback that refuses an unwritable output path while the command line is parsed, before any work."""

    def check(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
        from diffclass.errors import DiffclassError
        from diffclass.files import check_output

        try:
            path = None if value is None else check_output(value, folder)
        except DiffclassError as exc:
            raise typer.BadParameter(str(exc)) from None
        _claim(ctx, param.opts[0], [path] if path else [], writes=True)
        return path

    check.output = "folder" if folder else "file"  # read by the tests that try every output option
    return check


def read_paths(ctx: typer.Context, param: typer.CallbackParam, value):
    """An option callback for what a run reads: a model folder, folder:DIR or list:FILE data, image files. Names
    that are not local paths (an embedded model, sd:HUB_ID) read nothing here an output could overwrite."""
    values = value if isinstance(value, list | tuple) else [value]
    paths = []
    for item in values:
        if item is None:
            continue
        text = str(item)
        local = Path(text.split(":", 1)[1] if text.startswith(("folder:", "list:")) else text)
        if local.exists():
            paths.append(local)
    _claim(ctx, param.opts[0] if param.opts else param.name, paths, writes=False)
    return value


output_file, output_folder = _output(folder=False), _output(folder=True)

DEBUG = {"traceback": False}  # set by --debug: show an unexpected error's traceback instead of saving it


@app.callback()
def root(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of an unexpected error.")] = False,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=1024,
            help="CPU threads for the networks (default: torch's, one per core). On a machine other work shares, "
            "1 or 2 can be many times faster.",
        ),
    ] = None,
) -> None:
    """Classify images with diffusion models, and make it fast."""
    DEBUG["traceback"] = debug
    if threads is not None:
        use_threads(threads)


def use_threads(threads: int) -> None:
    """torch reads OMP_NUM_THREADS when it is imported (the light commands never import it); set it then, or now."""
    import os
    import sys

    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


ModelOption = Annotated[
    str,
    typer.Option(
        "--model", "-m", help="Embedded model name, model folder, sd:HUB_ID or dit:HUB_ID.", callback=read_paths
    ),
]
StrategyOption = Annotated[
    str | None,
    typer.Option(
        "--strategy",
        "-s",
        help="Strategy name, optionally with options: adaptive(keep=2,1;n=8,64) (default: auto on a tuned model, "
        "else adaptive sized to its timestep window; for DiDiCM models cp(steps=8), with the Euler update on the "
        "paper's head, or plain for their baselines). "
        "`diffclass strategies` lists them all.",
    ),
]
MaxLossOption = Annotated[
    float | None,
    typer.Option(min=0, max=100, help="auto: the cheapest tuned strategy within this many points of the best."),
]
BudgetOption = Annotated[
    str | None, typer.Option(help="auto: the best tuned strategy within NFEs/image (300) or GMACs/image (5GMAC).")
]
SpeedupOption = Annotated[
    float | None,
    typer.Option(min=1, help="auto: the best tuned strategy at least this many times cheaper than exhaustive."),
]
AugmentOption = Annotated[
    str,
    typer.Option(
        help="Training augmentation: none, or KEY=VALUE,... over shift (fraction of the side), scale, rotate "
        "(degrees), colour (jitter), grey (chance), noise (largest Gaussian std in [-1, 1] units) and "
        "randaugment (RandAugment's magnitude, 0-30, kornia's), e.g. shift=0.1,scale=0.1,rotate=10,colour=0.2,grey=0.2."
    ),
]
SeedOption = Annotated[int, typer.Option(help="Seed of the noise bank.")]
ImagesFromOption = Annotated[
    str | None,
    typer.Option(
        help="Labelled images the model never trained on (folder:DIR, list:FILE.csv) to fit on; default: the part "
        "its training held out.",
        callback=read_paths,
    ),
]
HoldOutOption = Annotated[
    float,
    typer.Option(
        min=0.0,
        max=0.9,
        help="Never train on this fraction of the training data (emoji, glyphs: of the styles; else of each class's "
        "images), recorded with the model: fit-temperature, calibrate and tune fit on it. 0: train on everything.",
    ),
]
BatchOption = Annotated[int, typer.Option(min=1, help="(image, class, timestep) triples per network call.")]
LossOption = Annotated[str | None, typer.Option(help="Denoising error: l1, l2 or huber (default: l2).")]


def _device(value: str) -> str:
    """Refuse a device this torch cannot use while the command line is parsed (torch is imported only then)."""
    if value != "cpu":
        from diffclass.errors import DiffclassError, check_device

        try:
            check_device(value)
        except DiffclassError as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


DeviceOption = Annotated[str, typer.Option(help="cpu, cuda or cuda:N.", callback=_device)]
DatasetOption = Annotated[
    str | None,
    typer.Option(
        help="Dataset: digits, glyphs, emoji, folder:PATH or list:FILE.csv (default: the model's own).",
        callback=read_paths,
    ),
]
TreeOption = Annotated[
    str | None, typer.Option(help="Label tree for hierarchical strategies (default: the model's own).")
]
NodeModeOption = Annotated[
    str | None,
    typer.Option(
        help="How internal tree nodes are scored: ancestor, mean or inverted; on all-class models leaf-min or "
        "leaf-mean of the node's classes on the same call (default: what fits)."
    ),
]
WeightingOption = Annotated[
    str | None,
    typer.Option(help="Timestep weighting: uniform, clark (exp(-7t/T)) or learned (default: the model's stored)."),
]
TimestepsOption = Annotated[
    str | None,
    typer.Option(help="Timestep range MIN-MAX of the grid (default: the model's calibrated window, else all)."),
]
CorruptionOption = Annotated[
    str | None,
    typer.Option(
        help="Corrupt the test images: noise:S, blur:S or downsample:S with severity S in 0-5, shift:P (P pixels in "
        "x and y) or centre (content moved to the middle)."
    ),
]
OutOption = Annotated[
    Path | None,
    typer.Option(help="Folder for per-image records (JSON lines); a rerun resumes from them.", callback=output_folder),
]
OverwriteOption = Annotated[bool, typer.Option(help="With --out: discard earlier records.")]
JsonOption = Annotated[
    Path | None, typer.Option("--json", help="Write the results as JSON here.", callback=output_file)
]
ClassesOption = Annotated[
    str | None,
    typer.Option(help="Zero-shot: imagenet, cifar100, cifar10, or a file (one name per line, or a JSON list)."),
]
PromptOption = Annotated[
    list[str] | None, typer.Option(help='Zero-shot prompt template with {} (repeat to ensemble): "a photo of a {}."')
]
PromptsOption = Annotated[str | None, typer.Option(help="Zero-shot prompts per class: JSON {class: [..]} or CSV.")]
DtypeOption = Annotated[str, typer.Option(help="float32, or float16 / bfloat16 on CUDA (latent models).")]
