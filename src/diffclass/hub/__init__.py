"""Model folders: what a saved model carries besides its weights (`diffclass.json`), where models live, their
weights digest, and the refusal of pickles. Below every backbone and DiDiCM, so each reads folders the same way."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from diffclass.errors import DiffclassError
from diffclass.files import read_json, write_text_atomic
from diffclass.registry import Registry

INFO_FILE = "diffclass.json"
DIDICM_FILE = "didicm.json"  # a DiDiCM (or plain baseline) model folder: see diffclass.didicm.model

# The kinds of model a resolved name can be, and how each becomes a classifier: registered by the classifier that
# runs it (`diffusion`: any registered backbone scored class by class, in diffclass.classifier; `didicm`: a DiDiCM
# or plain-twin network, in diffclass.didicm.classifier). `MODEL_KINDS.get(ref.kind).build(ref, **options)` loads.
MODEL_KINDS = Registry("model kind")
ASSETS = Path(__file__).resolve().parent.parent / "assets"


@dataclass
class ModelInfo:
    """What the classifier needs at inference, stored beside the weights as `diffclass.json`."""

    backbone: str
    class_names: list[str]
    image_size: int
    channels: int
    value_range: tuple[float, float] = (-1.0, 1.0)
    scheduler: dict[str, Any] = field(default_factory=dict)  # DDPMScheduler keyword arguments
    temperature: float = 1.0  # softmax(-error / temperature) gives calibrated probabilities
    timestep_range: tuple[int, int] | None = None  # calibrated window the default grid spans (None: all)
    dataset: str | None = None
    training: dict[str, Any] = field(default_factory=dict)  # how the weights were made
    tree: dict[str, Any] | None = None  # LabelTree.to_dict() of the tree the model knows
    node_conditioning: str | None = None  # how internal tree nodes are conditioned: ancestor / mean / inverted
    node_embeddings: dict[str, int] = field(default_factory=dict)  # internal node id -> class-embedding row
    pruning: dict[str, Any] = field(default_factory=dict)  # how a structurally pruned network was made
    templates: list[str] | dict[str, list[str]] | None = None  # prompt templates of a text-conditioned model
    front: dict[str, Any] | None = None  # `diffclass tune`'s Pareto front of strategies, which `auto` picks from
    weighting: dict[str, Any] | None = None  # learned timestep weights (`diffclass calibrate --weights`)
    text_tokens: int | None = None  # SD3: T5 tokens per prompt (zeros without T5), the pipeline's max_sequence_length
    typical_error: dict[str, Any] | None = None  # {"error": 99th percentile of the winner's error on held-out
    # images, "grid": the grid it was measured on, "slots": timesteps per class}: an image far above it is unlike
    # what the model knows
    anchors: list[list[float]] | None = None  # per class, the mean ink centre (y, x) of its training images, in
    # pixels: where `registered` moves an image's content to read that class (`diffclass.placement`)

    def keep_tuning_of(self, saved: ModelInfo) -> None:
        """What a saved folder learned about its own weights, taken over by a hub-layout model loaded from it: the
        temperature, window and timestep weights (whatever classes are asked), the T5 token count it was trained
        with, and the front (for its classes)."""
        for key in ("temperature", "timestep_range", "weighting", "dataset", "training"):
            setattr(self, key, getattr(saved, key))
        if saved.text_tokens is not None:
            self.text_tokens = saved.text_tokens
        if saved.class_names == self.class_names:
            self.front = saved.front

    def label_tree(self):
        from diffclass.hierarchy import LabelTree

        return None if self.tree is None else LabelTree.from_dict(self.tree, len(self.class_names))

    def save(self, folder: Path) -> None:
        """Writes diffclass.json, the last file of a saved model folder, and drops the local paths the libraries
        left in its configs (`drop_local_paths`)."""
        write_text_atomic(Path(folder) / INFO_FILE, json.dumps(asdict(self), indent=2) + "\n")
        drop_local_paths(Path(folder))

    @classmethod
    def load(cls, folder: Path) -> ModelInfo:
        path = Path(folder) / INFO_FILE
        if not path.is_file():
            raise DiffclassError(f"{folder} is not a diffclass model folder (no {INFO_FILE})")
        raw = read_json(path, "model file")
        if not isinstance(raw, dict):
            raise DiffclassError(f"{path} is malformed: it must hold a JSON object")
        try:
            info = cls(**raw)
        except TypeError as exc:
            raise DiffclassError(f"{path} is malformed: {exc}") from None
        problem = info.problem()
        if problem:
            raise DiffclassError(f"{path}: {problem}")
        info.value_range = tuple(info.value_range)
        if info.timestep_range is not None:
            info.timestep_range = tuple(info.timestep_range)
        return info

    def problem(self) -> str | None:
        """What is wrong with the values (types, ranges, consistency), checked before anything is built."""
        names = self.class_names
        problem = classes_and_size_problem(names, self.image_size)
        if problem:
            return problem
        if not _is_int(self.channels) or not 1 <= self.channels <= 4:
            return f"channels must be an integer in [1, 4], got {self.channels!r}"
        if not is_number(self.temperature) or self.temperature <= 0:
            return f"temperature must be a finite number > 0, got {self.temperature!r}"
        typical = self.typical_error
        if typical is not None and not (
            isinstance(typical, dict) and is_number(typical.get("error")) and typical["error"] > 0
        ):
            return f"typical_error must be {{'error': a number > 0, 'grid': ...}}, got {typical!r}"
        pair = self.timestep_range
        if pair is not None and not (
            isinstance(pair, (list, tuple)) and len(pair) == 2 and all(map(_is_int, pair)) and 0 <= pair[0] <= pair[1]
        ):
            return f"timestep_range must be null or [MIN, MAX] with 0 <= MIN <= MAX, got {pair!r}"
        low_high = self.value_range
        if not (isinstance(low_high, (list, tuple)) and len(low_high) == 2 and all(map(is_number, low_high))):
            return f"value_range must be [LOW, HIGH], got {low_high!r}"
        rows = self.node_embeddings
        if not isinstance(rows, dict) or not all(_is_int(r) and r >= len(names) for r in rows.values()):
            return "node_embeddings must map tree node ids to embedding rows after the classes'"
        if self.text_tokens is not None and not (_is_int(self.text_tokens) and 1 <= self.text_tokens <= 512):
            return f"text_tokens must be null or an integer in [1, 512], got {self.text_tokens!r}"
        anchors = self.anchors
        if anchors is not None and not (
            isinstance(anchors, list)
            and len(anchors) == len(names)
            and all(
                isinstance(p, list) and len(p) == 2 and all(is_number(v) and 0 <= v <= self.image_size - 1 for v in p)
                for p in anchors
            )
        ):
            return f"anchors must be null or one (y, x) pair inside the image per class ({len(names)} pairs)"
        if self.dataset is not None and not isinstance(self.dataset, str):
            return f"dataset must be null or a dataset's name, got {self.dataset!r}"
        problem = scheduler_problem(self.scheduler) if self.backbone in OWN_SCHEDULE else None
        if problem:
            return problem
        for key in ("scheduler", "training", "pruning"):
            if not isinstance(getattr(self, key), dict):
                return f"{key} must be an object"
        if self.weighting is not None:
            from diffclass.weighting import TimestepWeighting

            try:
                TimestepWeighting.from_dict(self.weighting)
            except DiffclassError as exc:
                return str(exc)
        return None


# What a class UNet's DDPM noise schedule may say (diffusers' DDPMScheduler keywords, checked here without
# importing it, so listing models stays instant): a bad schedule is one line, never an allocation or a traceback.
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2", "laplace", "sigmoid")
SCHEDULER_CHOICES = dict(
    beta_schedule=BETA_SCHEDULES,
    variance_type=("fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log", "learned", "learned_range"),
    prediction_type=("epsilon", "sample", "v_prediction"),
    timestep_spacing=("leading", "trailing", "linspace"),
)
SCHEDULER_NUMBERS = dict(
    beta_start=(0.0, 1.0),
    beta_end=(0.0, 1.0),
    dynamic_thresholding_ratio=(0.0, 1.0),
    clip_sample_range=(0.0, 1e6),
    sample_max_value=(0.0, 1e6),
)
SCHEDULER_FLAGS = ("clip_sample", "thresholding", "rescale_betas_zero_snr")
MAX_TRAIN_TIMESTEPS = 100_000
OWN_SCHEDULE = ("class_unet", "all_class_unet")  # folders whose diffclass.json holds the schedule they are built on


SCHEDULER_FIELDS = frozenset(
    ("num_train_timesteps", "steps_offset", "trained_betas", *SCHEDULER_CHOICES, *SCHEDULER_NUMBERS, *SCHEDULER_FLAGS)
)


def scheduler_problem(config, known: frozenset[str] = SCHEDULER_FIELDS) -> str | None:
    """What is wrong with a stored noise schedule: fields outside `known`, wrong types, betas outside (0, 1), a
    step count past a bound, before the scheduler allocates its tables."""
    if not isinstance(config, dict):
        return "scheduler must be an object"
    unknown = sorted(k for k in config if k not in known and not str(k).startswith("_"))
    unknown += ["trained_betas"] if config.get("trained_betas") is not None else []
    if unknown:
        return f"scheduler has unknown fields {unknown}"
    steps = config.get("num_train_timesteps", 1000)
    if not _is_int(steps) or not 2 <= steps <= MAX_TRAIN_TIMESTEPS:
        return f"scheduler.num_train_timesteps must be an integer in [2, {MAX_TRAIN_TIMESTEPS}], got {steps!r}"
    offset = config.get("steps_offset", 0)
    if not _is_int(offset) or not 0 <= offset < steps:
        return f"scheduler.steps_offset must be an integer in [0, num_train_timesteps), got {offset!r}"
    for key, choices in SCHEDULER_CHOICES.items():
        if key in config and config[key] not in choices:
            return f"scheduler.{key} must be one of {', '.join(choices)}, got {config[key]!r}"
    for key, (low, high) in SCHEDULER_NUMBERS.items():
        if key in config and not (is_number(config[key]) and low < config[key] <= high):
            return f"scheduler.{key} must be a number in ({low:g}, {high:g}], got {config[key]!r}"
    if config.get("beta_start", 1e-4) > config.get("beta_end", 0.02):
        return "scheduler.beta_start must not exceed scheduler.beta_end"
    for key in SCHEDULER_FLAGS:
        if key in config and not isinstance(config[key], bool):
            return f"scheduler.{key} must be true or false, got {config[key]!r}"
    return None


MAX_IMAGE_SIZE = 4096


def classes_and_size_problem(names, image_size, min_classes: int = 1, min_size: int = 1) -> str | None:
    """What every model folder's config must get right, whatever its kind: distinct class names and a sane
    image size (`diffclass.json` and DiDiCM's `didicm.json` alike)."""
    if not isinstance(names, list) or len(names) < min_classes or not all(isinstance(n, str) for n in names):
        return f"class_names must be a list of at least {min_classes} name{'s' if min_classes > 1 else ''}"
    if len(set(names)) != len(names):
        return "class_names repeat"
    if not _is_int(image_size) or not min_size <= image_size <= MAX_IMAGE_SIZE:
        return f"image_size must be an integer in [{min_size}, {MAX_IMAGE_SIZE}], got {image_size!r}"
    return None


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def ensure_writable(name_or_path: str | Path) -> Path:
    """The folder of a model a command will update in place, checked before any work is done: not an embedded
    model inside the installed package (copy it first), and writable."""
    folder = resolve_model_folder(name_or_path)
    if folder.resolve().is_relative_to(ASSETS.resolve()):
        raise DiffclassError(
            f"{name_or_path} is an embedded model; copy it first (cp -r {folder} my-model) and pass the copy"
        )
    info = folder / INFO_FILE
    if not os.access(folder, os.W_OK) or (info.exists() and not os.access(info, os.W_OK)):
        raise DiffclassError(f"{folder} is not writable; the result could not be stored there")
    return folder


def _is_model_folder(path: Path) -> bool:
    return (path / INFO_FILE).is_file() or (path / DIDICM_FILE).is_file()


def embedded_models() -> list[str]:
    return sorted(p.name for p in ASSETS.iterdir() if _is_model_folder(p)) if ASSETS.is_dir() else []


def resolve_model_folder(name_or_path: str | Path) -> Path:
    """An embedded model's name (`digits`, `didicm-glyphs`) or a folder holding a model and its safetensors weights."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    if _is_model_folder(ASSETS / str(name_or_path)):
        return ASSETS / str(name_or_path)
    known = ", ".join(embedded_models()) or "none"
    raise DiffclassError(f"unknown model {str(name_or_path)!r}: not a folder, nor an embedded model ({known})")


HUB_PREFIX = re.compile(r"^([a-z][a-z0-9]+):(.+)$")  # sd:ID, sd3:ID, dit:ID, clip:ID (a drive letter is one char)


@dataclass
class ModelRef:
    """A model's name resolved once, the one value every layer receives: where it loads from, what its folder
    says, and the digest of its weights, which keys records, error tables and tuned fronts."""

    name: str  # as the user wrote it
    prefix: str | None  # the hub prefix of `sd:ID`-style names (which backbone, `diffclass.backbones` decides)
    folder: Path | None  # the local folder (None: a hub id that is not one)
    info: ModelInfo | None  # the folder's diffclass.json, read and checked once (None: it has none)
    kind: str = "diffusion"  # the registered model kind that runs it (`didicm`: a folder holding didicm.json)

    @property
    def source(self) -> str | Path:
        """What a loader reads: the local folder, else the hub id (the name without its prefix)."""
        return self.folder if self.folder is not None else self.name.split(":", 1)[1]

    @property
    def digest(self) -> str:
        """Every safetensors byte of the folder (a pipeline's sub-folders included), hashed once per process and
        again only when a file changes; a hub id that is not a local folder is named by itself."""
        return folder_digest(self.folder) if self.folder is not None else self.name


def resolve_model(name_or_ref: str | Path | ModelRef) -> ModelRef:
    """An embedded model's name, a model or pipeline folder, or a prefixed hub id (`sd:ID_OR_FOLDER`), resolved
    once: unknown names are refused in one line."""
    if isinstance(name_or_ref, ModelRef):
        return name_or_ref
    text = str(name_or_ref)
    match = HUB_PREFIX.match(text)
    if match and not Path(text).is_dir():
        prefix, rest = match.groups()
        folder = Path(rest) if Path(rest).is_dir() else None
        info = ModelInfo.load(folder) if folder is not None and (folder / INFO_FILE).is_file() else None
        return ModelRef(text, prefix, folder, info)
    folder = resolve_model_folder(text)
    info = ModelInfo.load(folder) if (folder / INFO_FILE).is_file() else None
    return ModelRef(text, None, folder, info, kind="didicm" if (folder / DIDICM_FILE).is_file() else "diffusion")


NOT_WEIGHTS = ("train_state.json", "didicm.json", "diffclass.json")  # a checkpoint or a model of its own


def folder_digest(folder: Path) -> str:
    """The digest of a model folder's weights: every safetensors file in it, but not those of a sub-folder that is
    a training checkpoint or another model (a fit's plain twin), which change without the model changing."""
    folder = Path(folder)
    nested = {p.parent for name in NOT_WEIGHTS for p in folder.rglob(name) if p.parent != folder}
    files = sorted(p for p in folder.rglob("*.safetensors") if not any(d in p.parents for d in nested))
    stats = [(p, p.stat()) for p in files]
    signature = tuple((str(p.relative_to(folder)), s.st_size, s.st_mtime_ns, s.st_ino) for p, s in stats)
    return _hashed(str(Path(folder).resolve()), signature)


@lru_cache(maxsize=64)
def _hashed(folder: str, signature: tuple) -> str:
    """The digest of the files a signature (names, sizes, modification times) describes: read once per process."""
    digest = hashlib.sha256()
    for name, *_ in signature:
        digest.update(name.encode())
        digest.update((Path(folder) / name).read_bytes())
    return digest.hexdigest()[:12]


def weights_digest(name_or_path: str | Path | ModelRef) -> str:
    """The weights digest of a model by name (`ModelRef.digest`); a name that resolves to nothing local is named
    by itself, and a model built in memory (no name) is `unsaved`."""
    if isinstance(name_or_path, ModelRef):
        return name_or_path.digest
    text = str(name_or_path)
    if not text:
        return "unsaved"  # a model built in memory has no files to digest
    try:
        return resolve_model(text).digest
    except DiffclassError:
        return text


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
MAX_HEADER = 100_000_000  # bytes of a safetensors JSON header; a larger one is not a weights file


def is_safetensors(path: Path) -> bool:
    """By content, not by name: an 8-byte little-endian header length, then that many bytes of a JSON object."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
            size = path.stat().st_size
    except OSError:
        return False
    if len(head) < 9:
        return False
    length = int.from_bytes(head[:8], "little")
    return 1 < length <= min(MAX_HEADER, size - 8) and head[8:9] == b"{"


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files holding a network's weights: the shards a `*.safetensors.index.json` names (which
    must be safetensors files inside the folder), else every `*.safetensors` file."""
    folder = Path(folder)
    indices = sorted(folder.glob("*.safetensors.index.json"))
    if not indices:
        return sorted(folder.glob("*.safetensors"))
    shards = set()
    for index in indices:
        parsed = read_json(index, "weights index")
        weight_map = parsed.get("weight_map") if isinstance(parsed, dict) else None
        if not isinstance(weight_map, dict):
            raise DiffclassError(f"{index} is not a weights index (no weight_map object)")
        names = weight_map.values()
        for name in names:
            shard = (folder / str(name)).resolve()
            if shard.parent != folder.resolve() or shard.suffix != ".safetensors":
                raise DiffclassError(f"{index} names {name!r}; diffclass loads safetensors shards in the folder only")
            shards.add(shard)
    return sorted(shards)


def refuse_pickles(folder: Path) -> None:
    """Weights must be safetensors, recognised by content: a pickle can run arbitrary code when loaded, whatever
    its file is called. Pickles beside safetensors weights are ignored (the loaders read safetensors only)."""
    folder = Path(folder)
    safetensors = weight_files(folder)
    fake = [p.name for p in safetensors if p.is_file() and not is_safetensors(p)]
    if fake:
        raise DiffclassError(f"{folder}: {', '.join(fake)} is not a safetensors file (a pickle under another name?)")
    pickles = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
    if pickles and not safetensors:
        raise DiffclassError(
            f"{folder} holds pickled weights ({', '.join(sorted(pickles))}); diffclass loads safetensors only"
        )


def check_weights_fit(module, folder: Path) -> None:
    """Every tensor the network's config calls for is in the weight files with its shape, and nothing else: a
    missing tensor would otherwise be initialised at random and classify without complaint."""
    from safetensors import SafetensorError, safe_open

    shapes = {}
    for path in weight_files(folder):
        try:
            with safe_open(str(path), "pt") as handle:
                shapes.update({key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()})
        except (OSError, SafetensorError) as exc:
            raise DiffclassError(f"{path} is not a readable safetensors file ({str(exc).splitlines()[0]})") from None
    expected = {key: tuple(t.shape) for key, t in module.state_dict().items()}
    problems = [f"missing tensor {k}" for k in sorted(set(expected) - set(shapes))]
    problems += [f"unexpected tensor {k}" for k in sorted(set(shapes) - set(expected))]
    problems += [
        f"tensor {k} has shape {list(shapes[k])}, the config needs {list(v)}"
        for k, v in expected.items()
        if k in shapes and shapes[k] != v
    ]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DiffclassError(f"{folder}: the weights do not fit the config: {problems[0]}{more}")


def drop_local_paths(folder: Path) -> None:
    """diffusers and transformers save `_name_or_path`, where a model was loaded from (often an absolute path on
    the saving machine), into each config.json; a folder meant to be shared should not carry it. Only configs
    that parse are touched."""
    for path in [folder / "config.json", *sorted(folder.glob("*/config.json"))]:
        try:
            config = read_json(path, "config")
        except DiffclassError:
            continue
        if isinstance(config, dict) and config.pop("_name_or_path", None) is not None:
            write_text_atomic(path, json.dumps(config, indent=2, sort_keys=True) + "\n")
