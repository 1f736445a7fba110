"""One loader for every model kind, and the helpers that resolve what a zero-shot model needs.

`diffclass.load` resolves a name once and hands it to its registered model kind (`hub.MODEL_KINDS`): a diffusion
`Classifier` or a `DiDiCMClassifier`; both offer `classify`, `evaluate`, `class_names`, `info`, `default_strategy`
and `macs_per_call`, so callers (the CLI among them) never branch on the kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from diffclass.classifier import Classifier
from diffclass.data import ImageDataset, load_dataset
from diffclass.data.corruptions import corrupt
from diffclass.didicm.classifier import DiDiCMClassifier
from diffclass.errors import DiffclassError, check_device, check_range, check_type
from diffclass.hierarchy import LabelTree
from diffclass.hub import MODEL_KINDS, ModelRef, resolve_model
from diffclass.timesteps import TimestepGrid


def load(
    name_or_path: str | Path | ModelRef = "digits",
    *,
    device: str = "cpu",
    dtype: str = "float32",
    class_names: Sequence[str] | str | None = None,
    templates: Sequence[str] | dict | None = None,
    seed: int = 0,
    batch_size: int = 256,
    loss: str | None = None,
    timesteps: str | TimestepGrid | None = None,
    tree: str | LabelTree | None = None,
    node_conditioning: str | None = None,
    weighting: str | None = None,
) -> Classifier | DiDiCMClassifier:
    """Load any model diffclass runs, ready to classify.

    `name_or_path`: an embedded model (`digits`, `glyphs`, `didicm-glyphs`, `plain-glyphs`), a folder saved by
    diffclass (class UNet, pruned, DiDiCM), `sd:HUB_ID_OR_FOLDER` / a Stable Diffusion pipeline folder, or
    `dit:HUB_ID_OR_FOLDER` / a DiT pipeline folder. Zero-shot models take `class_names` (a list, a shipped list
    name such as `imagenet`, or a file) and `templates` ("a photo of a {}.", several to ensemble, or a dict of
    prompts per class); a folder saved by diffclass remembers both. `timesteps` ("MIN-MAX") narrows the grid,
    `tree` (a shipped name, a JSON file or a LabelTree) replaces the model's label tree and `node_conditioning`
    (ancestor, mean, inverted) says how its internal nodes are conditioned. `weighting` (uniform, clark, learned)
    weights each timestep's error; the default is the model's stored learned weights, else uniform.
    """
    check_type("the model", name_or_path, str, Path, ModelRef)
    check_type("batch_size", batch_size, int)
    check_range("batch_size", batch_size, 1, 1_000_000)
    check_type("seed", seed, int)
    check_type("dtype", dtype, str)
    check_type("class_names", class_names, str, list, tuple, allow_none=True)
    check_type("templates", templates, str, list, tuple, dict, allow_none=True)
    check_type("timesteps", timesteps, str, TimestepGrid, allow_none=True)
    check_type("tree", tree, str, LabelTree, allow_none=True)
    for option, value in dict(loss=loss, node_conditioning=node_conditioning, weighting=weighting).items():
        check_type(option, value, str, allow_none=True)
    check_device(device)
    model = resolve_model(name_or_path)  # once: every layer below receives it
    return MODEL_KINDS.get(model.kind).build(  # each kind refuses, by name, the options it cannot take
        model,
        device=device,
        dtype=dtype,
        class_names=class_names,
        templates=templates,
        seed=seed,
        batch_size=batch_size,
        loss=loss,
        timesteps=timesteps,
        tree=tree,
        node_conditioning=node_conditioning,
        weighting=weighting,
    )


def zero_shot_options(
    name_or_path: str | Path | ModelRef,
    classes: str | None = None,
    prompt: Sequence[str] | None = None,
    prompts: str | Path | None = None,
    dataset: str | None = None,
) -> dict:
    """`class_names` and `templates` for `load` from what a user names: a class list (shipped name or file) or the
    dataset to be classified (`folder:PATH` gives its sub-folder names), and prompt templates or a prompts file.
    Empty for models that know their classes (class UNets, DiDiCM); templates only for text-conditioned ones
    (Stable Diffusion). A value left None keeps what a saved folder stores."""
    from diffclass.backbones import BACKBONES, backbone_kind
    from diffclass.backbones.prompts import DEFAULT_TEMPLATES, read_classes, read_prompts
    from diffclass.data.folders import folder_class_names

    model = resolve_model(name_or_path)
    if not MODEL_KINDS.get(model.kind).extra.get("backbone"):
        return {}  # a DiDiCM model knows its classes and takes no prompts
    entry = BACKBONES.get(backbone_kind(model)[0])
    if not entry.extra.get("told_classes"):
        return {}
    names = None
    if classes:
        names = read_classes(classes)
    elif dataset and dataset.startswith("folder:"):
        names = folder_class_names(dataset.split(":", 1)[1])
    elif dataset:
        names = load_dataset(dataset, "test").class_names
    if not entry.extra.get("text"):
        return dict(class_names=names)
    if prompts:
        templates = read_prompts(prompts)
    elif prompt:
        templates = list(prompt)
    else:
        templates = DEFAULT_TEMPLATES.get(classes or dataset or "")
    return dict(class_names=names, templates=templates)


def eval_dataset(classifier, dataset: str | None = None, corruption: str | None = None) -> ImageDataset:
    """The labelled images a model is measured on: `dataset` (default: the model's own) at the model's input size,
    optionally corrupted (`noise:S`, `blur:S`, `downsample:S`)."""
    info = classifier.info
    data = load_dataset(dataset or info.dataset or "digits", "test", info.image_size, info.channels, info.class_names)
    return corrupt(data, corruption)


def unseen_images(
    classifier, images: int | None, seed: int = 0, images_from: str | None = None, prefilter_ranker: str | None = None
) -> ImageDataset:
    """`images` labelled images the model never trained on (None: all), drawn by seed, for what is fitted on them
    (the temperature, the timestep window, the tuned front: a model ranks its own training images better than new
    ones, so what is fitted there does not hold on new images). From `images_from` (images of the model's classes
    from anywhere but its own training data), else from the part its training held out (`diffclass train
    --hold-out`); with a prefilter ranker, from what both held out. Anything else is refused in one line."""
    info = classifier.info
    if images_from is not None:
        if same_data(images_from, info.dataset):
            raise DiffclassError(
                f"{classifier.model_name} was trained on {images_from}; --images-from must name images it never "
                "saw (leave it out to use the part its training held out)"
            )
        data = load_dataset(images_from, "train", info.image_size, info.channels, info.class_names)
        if data.class_names != info.class_names:
            raise DiffclassError(f"{images_from} has other classes than {classifier.model_name}")
        return draw(data, images, seed)
    within = (info.training or {}).get("held_out")
    if not within:
        raise DiffclassError(
            f"{classifier.model_name} records no held-out images (train it with --hold-out), and its training images "
            "would flatter it: pass --images-from folder:DIR with labelled images it never saw"
        )
    if prefilter_ranker is not None:
        ranker = classifier.prefilter_model(prefilter_ranker)
        if ranker.info.dataset == info.dataset:
            within = sorted(set(within) & set((ranker.info.training or {}).get("held_out") or ()))
        if not within:
            raise DiffclassError(
                f"{prefilter_ranker} and {classifier.model_name} hold out no images in common (train both with the "
                "same --hold-out and --seed)"
            )
    _, data = load_dataset(
        info.dataset or "digits", "train", info.image_size, info.channels, info.class_names
    ).split_held_out(within)
    return draw(data, images, seed)


def same_data(name: str, other: str | None) -> bool:
    """Whether two dataset names (embedded, `folder:PATH` or `list:FILE`) name the same images."""
    if other is None:
        return False
    if ":" in name and ":" in other:
        (kind, path), (other_kind, other_path) = name.split(":", 1), other.split(":", 1)
        return kind == other_kind and Path(path).resolve() == Path(other_path).resolve()
    return name == other


def draw(data: ImageDataset, images: int | None, seed: int) -> ImageDataset:
    """`images` of `data` (all of them if it holds fewer, or for None), drawn by seed."""
    import torch

    pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:images]
    return data.subset(pick.tolist())
