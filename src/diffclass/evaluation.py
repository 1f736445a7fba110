"""Running a classifier over images: one record per image, resumable, sharded over ranks, and the summary
computed from the records. Every classifier (diffusion or DiDiCM) gets `evaluate` from `Evaluates`."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch

from diffclass.data.base import ImageDataset, dataset_background
from diffclass.data.images import content_id, load_image
from diffclass.decision import Decision
from diffclass.errors import DiffclassError
from diffclass.hub import ModelInfo, ModelRef, is_number, weights_digest
from diffclass.progress import progress_bar
from diffclass.records import RecordStore, json_digest

if TYPE_CHECKING:
    from diffclass.hierarchy import LabelTree
    from diffclass.scoring import ErrorScorer

logger = logging.getLogger(__name__)


@dataclass
class EvalRecord:
    id: str
    label: int
    prediction: int
    top5: list[tuple[int, float]]  # (class, probability), best first
    nfe: int
    seconds: float
    macs: int | None = None  # when calls of different networks were mixed (a prefilter): their MACs, summed
    image: str = ""  # the content digest of the image it was made from: a changed image is redone, not answered


@dataclass
class EvalSummary:
    dataset: str
    model: str
    strategy: str
    n_images: int
    top1: float
    top5: float
    nfe_per_image: float
    seconds_per_image: float
    macs_per_call: int | None = None  # one network call on one image
    gmacs_per_image: float | None = None  # NFEs x MACs per call: the cost that does not depend on the machine
    by_group: dict[str, dict] | None = None  # per group of the data (emoji, glyphs: style): images, top-1, top-5
    ece: float | None = None  # expected calibration error of the top class's probability (0: calibrated)
    mean_confidence: float | None = None  # the mean stated top-1 probability: above top-1, over-confident
    records: list[EvalRecord] = field(default_factory=list, repr=False)

    def to_json(self, with_records: bool = False) -> dict:
        data = asdict(self)
        if not with_records:
            data.pop("records")
        return data


def record_of(image_id: str, label: int, decision: Decision, image: str) -> EvalRecord:
    """Probabilities are rounded so that records do not depend on float noise from the batch composition."""
    top5 = [(c, round(p, 4)) for c, p in decision.top(5)]
    seconds = round(decision.seconds, 5)
    return EvalRecord(image_id, label, decision.label, top5, decision.nfe, seconds, decision.macs, image)


def record_from_json(data: dict, label: int, image: str, num_classes: int) -> EvalRecord | None:
    """The record a stored line holds for an image of class `label` and content digest `image`, or None when its
    fields are not such a record's (another image or label, wrong types, classes out of range, non-finite
    numbers): the image is then redone."""

    def count(value) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(value)
        return value

    def real(value) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
            raise ValueError(value)
        return float(value)

    def klass(value) -> int:
        if count(value) >= num_classes:
            raise ValueError(value)
        return value

    try:
        record = EvalRecord(
            data["id"],
            klass(data["label"]),
            klass(data["prediction"]),
            [(klass(c), real(p)) for c, p in data["top5"]],
            count(data["nfe"]),
            real(data["seconds"]),
            None if data.get("macs") is None else count(data["macs"]),
            data.get("image"),
        )
    except (KeyError, TypeError, ValueError):
        return None
    complete = len(record.top5) == min(5, num_classes) and all(p <= 1 for _, p in record.top5)
    return record if record.label == label and record.image == image and complete else None


def summarise(
    records: list[EvalRecord],
    dataset: str,
    model: str,
    strategy: str,
    macs_per_call: int | None = None,
    group_of: dict[str, str] | None = None,
) -> EvalSummary:
    """The summary of records; with `group_of` (image id -> group), top-1 and top-5 per group too."""
    n = len(records)
    if n == 0:
        raise DiffclassError("no images were evaluated")
    nfe = sum(r.nfe for r in records) / n
    by_group = None
    if group_of:
        members: dict[str, list[EvalRecord]] = {}
        for r in records:
            members.setdefault(group_of[r.id], []).append(r)
        by_group = {g: _accuracy(rs) for g, rs in sorted(members.items())}
    return EvalSummary(
        dataset=dataset,
        model=model,
        strategy=strategy,
        n_images=n,
        top1=sum(r.prediction == r.label for r in records) / n,
        top5=sum(r.label in [c for c, _ in r.top5] for r in records) / n,
        nfe_per_image=nfe,
        seconds_per_image=sum(r.seconds for r in records) / n,
        macs_per_call=macs_per_call,
        gmacs_per_image=_gmacs(records, nfe, macs_per_call),
        by_group=by_group,
        ece=_calibration_error(records),
        mean_confidence=round(sum(_confidence(r) for r in records) / n, 4),
        records=records,
    )


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """How far stated confidence is from accuracy: the image-weighted mean, over equal-width confidence bins, of
    |accuracy - mean confidence| (Guo et al., 2017). 0 is perfectly calibrated."""
    if not confidences:
        raise DiffclassError("no decisions to measure calibration on")
    total, n = 0.0, len(confidences)
    for k in range(bins):
        low, high = k / bins, (k + 1) / bins
        inside = [i for i, c in enumerate(confidences) if low < c <= high or (k == 0 and c == 0)]
        if inside:
            accuracy = sum(bool(correct[i]) for i in inside) / len(inside)
            confidence = sum(confidences[i] for i in inside) / len(inside)
            total += len(inside) / n * abs(accuracy - confidence)
    return total


def _confidence(record: EvalRecord) -> float:
    return record.top5[0][1] if record.top5 else 0.0


def _calibration_error(records: list[EvalRecord]) -> float:
    confidences = [_confidence(r) for r in records]
    return round(expected_calibration_error(confidences, [r.prediction == r.label for r in records]), 4)


def _accuracy(records: list[EvalRecord]) -> dict:
    n = len(records)
    top1 = sum(r.prediction == r.label for r in records) / n
    return dict(n_images=n, top1=top1, top5=sum(r.label in [c for c, _ in r.top5] for r in records) / n)


def _gmacs(records: list[EvalRecord], nfe: float, macs_per_call: int | None) -> float | None:
    """GMACs per image: the records' own MACs where they carry them (mixed networks), else NFEs x MACs per call."""
    if all(r.macs is not None for r in records):
        return round(sum(r.macs for r in records) / len(records) / 1e9, 4)
    return None if macs_per_call is None else round(nfe * macs_per_call / 1e9, 4)


def evaluate(
    classifier,
    dataset: ImageDataset,
    strategy=None,
    limit: int | None = None,
    show_progress: bool = True,
    store: RecordStore | None = None,
    shard: tuple[int, int] = (0, 1),
) -> EvalSummary:
    """Classify every image of `dataset` (or the first `limit`) and summarise top-1, top-5, NFEs, MACs and time.

    With a `store`, records are appended as they are made and images already recorded are skipped; with
    `shard=(rank, world)` this process only does every world-th image and the summary covers what it did.
    """
    if dataset.class_names != classifier.class_names:
        raise DiffclassError(
            f"dataset {dataset.name!r} has classes {dataset.class_names[:5]}..., the model "
            f"{classifier.model_name!r} has {classifier.class_names[:5]}...; they must match"
        )
    strategy = classifier.strategy(strategy)
    if limit is not None:
        dataset = dataset.subset(range(min(limit, len(dataset))))
    rank, world = shard
    mine = list(range(rank, len(dataset), world))
    digests = {i: content_id(dataset.images[i]) for i in mine}  # a record holds the pixels it was made from
    done = {}
    stored = store.done() if store else {}
    for i, digest in digests.items():
        image_id = dataset.ids[i]
        for candidate in reversed(stored.get(image_id, [])):  # the newest one made from this very image
            record = record_from_json(candidate, int(dataset.labels[i]), digest, len(classifier.class_names))
            if record is not None:
                done[image_id] = record
                break
    todo = [i for i in mine if dataset.ids[i] not in done]
    records = [done[dataset.ids[i]] for i in mine if dataset.ids[i] in done]
    step = classifier.images_per_pass()
    with progress_bar(show_progress) as bar:
        task = bar.add_task(strategy.kind, total=len(mine), completed=len(records), status="")
        for start in range(0, len(todo), step):
            chunk = todo[start : start + step]
            began = time.perf_counter()
            decisions = classifier.classify(dataset.images[chunk], strategy, [dataset.ids[i] for i in chunk])
            new = [record_of(dataset.ids[i], int(dataset.labels[i]), d, digests[i]) for i, d in zip(chunk, decisions)]
            if start == 0:
                warn_if_long(strategy.name, new, time.perf_counter() - began, len(todo))
            if store:
                store.append(new)
            records += new
            correct = sum(r.prediction == r.label for r in records)
            bar.update(task, completed=len(records), status=f"top-1 {correct / len(records):.1%}")
    order = {image_id: k for k, image_id in enumerate(dataset.ids)}
    records.sort(key=lambda r: order[r.id])
    return summarise(
        records, dataset.name, classifier.model_name, strategy.name, classifier.macs_per_call, group_map(dataset)
    )


LONG_RUN = 3600.0  # seconds: a run expected to take longer is announced with its estimate before it goes on


def warn_if_long(strategy: str, first: list[EvalRecord], seconds: float, images: int) -> None:
    """After the first pass, one line when the whole run would take over an hour at its pace, with the cost that
    makes it so, while there is still time to stop it."""
    expected = seconds / len(first) * images
    if expected > LONG_RUN:
        nfe = sum(r.nfe for r in first) / len(first)
        logger.warning(
            f"{strategy}: about {expected / 3600:.1f} h for {images} images at the first pass's pace "
            f"({nfe:,.0f} network calls per image); --limit N or a cheaper --strategy shortens it"
        )


def group_map(dataset: ImageDataset) -> dict[str, str] | None:
    """Image id -> group, for the per-group summary (None when the data has no groups)."""
    return None if dataset.groups is None else dict(zip(dataset.ids, dataset.groups))


def evaluate_sharded(
    classifier,
    dataset: ImageDataset,
    strategy=None,
    *,
    limit: int | None = None,
    out: str | Path | None = None,
    record_options: dict | None = None,
    overwrite: bool = False,
    device: str = "cpu",
) -> EvalSummary | None:
    """`evaluate` as one rank of a torchrun job (or alone): records under `out` keyed by `record_options`, every
    rank's records gathered on rank 0, which gets the summary of all of them (the other ranks get None)."""
    from diffclass.distributed import finish, gather_to_rank0, init_from_env

    rank, world = init_from_env(device)
    spec = classifier.strategy(strategy)
    store = None if out is None else RecordStore(out, record_options or {}, overwrite=overwrite, rank=rank)
    with store or nullcontext():
        local = evaluate(classifier, dataset, spec, limit=limit, store=store, shard=(rank, world))
    if world == 1:  # alone: the local summary is the whole one
        return local
    records = gather_to_rank0(local.records)
    finish()
    if rank != 0:
        return None
    return summarise(
        records, dataset.name, classifier.model_name, spec.name, classifier.macs_per_call, group_map(dataset)
    )


def run_identity(classifier: ImageClassifier, strategy: str, **extra) -> dict:
    """Every input besides the image that can change a record, for a record store's options: the classifier's
    `identity()` and the strategy. The image itself is in each record, by content (`content_id`), so a changed
    image is redone and only it. A strategy that reads the model's anchors (`registered`, on its own or as a
    stage) also keys on them: `diffclass fit-anchors` changes them under the same weights."""
    keys = {**classifier.identity(), "strategy": strategy, **extra}
    if "registered(" in strategy:
        keys["anchors"] = json_digest(classifier.info.anchors)
    return keys


def model_identity(classifier: ImageClassifier, weights: str) -> dict:
    """The part of an identity every classifier kind shares: the model's name, weights digest, classes, prompts,
    tree and temperature."""
    info = classifier.info
    return dict(
        model=classifier.model_name,
        weights=weights,
        classes=json_digest(info.class_names),
        templates=json_digest(info.templates),
        tree=json_digest(classifier.tree.to_dict() if classifier.tree is not None else None),
        node_embeddings=json_digest(info.node_embeddings),
        temperature=info.temperature,
    )


class ImageClassifier(Protocol):
    """What every classifier kind offers (the diffusion `Classifier`, `DiDiCMClassifier`, `ClipFilter`), and the
    only way callers reach one: nothing outside the code that builds them asks which kind it has.

    `scorer` is the `ErrorScorer` whose denoising errors the decisions rest on, or None for kinds that decide
    otherwise (DiDiCM's samplers, CLIP's similarities): calibration, tuning, temperature fitting and the
    per-timestep explanation need one.
    """

    model_name: str
    info: ModelInfo
    tree: LabelTree | None
    scorer: ErrorScorer | None

    @property
    def class_names(self) -> list[str]: ...

    @property
    def default_strategy(self) -> str: ...

    @property
    def macs_per_call(self) -> int: ...  # one network call on one image

    @property
    def bench_specs(self) -> tuple[str, ...]: ...  # the runs `diffclass bench` makes by default

    def strategy(self, spec=None): ...  # a spec -> what `classify` runs (it has `name` and `kind`)

    def images_per_pass(self) -> int: ...  # images classified together; results do not depend on it

    def classify(self, images, strategy=None, image_ids: Sequence[str] | None = None) -> list[Decision]: ...

    def identity(self) -> dict: ...  # everything besides the image and strategy that can change a decision

    def evaluate(self, dataset: ImageDataset, strategy=None, **options) -> EvalSummary: ...

    @property
    def attack_strategy(self) -> str: ...  # what `diffclass attack` attacks by default

    def logits_fn(self, strategy, image_ids: Sequence[str], eot: int = 0): ...  # differentiable stand-in (attacks)


class Evaluates:
    """What every classifier offers besides `classify`: its name and weights digest, and a whole labelled dataset,
    summarised."""

    ref: ModelRef | None = None  # the model resolved once, when it was loaded by name
    model_name: str = ""

    def named(self, model_name: str | ModelRef) -> None:
        """Take the model's name, or the resolved model (whose digest is then never computed twice)."""
        self.ref = model_name if isinstance(model_name, ModelRef) else None
        self.model_name = str(model_name.name if self.ref else model_name)

    @property
    def weights(self) -> str:
        """The weights digest records, error tables and fronts are keyed by (hashed once per process)."""
        return weights_digest(self.ref or self.model_name)

    def evaluate(self, dataset: ImageDataset, strategy=None, **options) -> EvalSummary:
        return evaluate(self, dataset, strategy, **options)

    @property
    def attack_strategy(self) -> str:
        """What `diffclass attack` attacks when no strategy is named: the default, where it has a gradient."""
        return self.default_strategy

    def logits_fn(self, strategy, image_ids: Sequence[str], eot: int = 0):
        """images -> logits [B, classes] with gradients to the images, whose argmax is `classify`'s decision
        under `strategy` for these image ids; kinds whose decisions have no gradient refuse in one line."""
        name = self.model_name or "this model"
        raise DiffclassError(f"{name}: its decisions have no gradient, so it cannot be attacked")


@dataclass
class FileResult:
    """One classified file: what `diffclass classify` prints and records."""

    path: str
    prediction: str
    label: int
    top: list[dict]  # {label, name, probability}, best first
    nfe: int
    converted: list[str]
    id: str = ""  # the image's content id: records are keyed by what the image is, not where it lies
    unfamiliar: float | None = None  # the winner's error over the model's typical one, where over 1


def _file_result(stored: dict, path: Path, notes: list[str], class_names: list[str]) -> FileResult | None:
    """A recorded result for this file (same content, found anywhere), or None when it is not a result of this
    model's classes (damaged, wrong types)."""

    def named(label, name) -> bool:
        return (
            not isinstance(label, bool)
            and isinstance(label, int)
            and 0 <= label < len(class_names)
            and class_names[label] == name
        )

    try:
        result = FileResult(**{**stored, "path": str(path), "converted": notes})
        valid = (
            named(result.label, result.prediction)
            and all(named(entry["label"], entry["name"]) and 0 <= entry["probability"] <= 1 for entry in result.top)
            and not isinstance(result.nfe, bool)
            and isinstance(result.nfe, int)
            and result.nfe >= 0
            and "unfamiliar" in stored  # every record this version writes says it, even as null
            and (result.unfamiliar is None or (is_number(result.unfamiliar) and result.unfamiliar > 1))
        )
    except (TypeError, KeyError):
        return None
    return result if valid and result.top else None


def classify_files(
    classifier,
    files: Sequence[Path],
    strategy=None,
    top_k: int = 3,
    store: RecordStore | None = None,
    show_progress: bool = True,
    stretch: bool = False,
) -> tuple[list[FileResult], list[str]]:
    """Classify image files of any size and mode: (results in file order, one-line problems). A file that cannot
    be read is a problem, not a failure of the others; with a `store`, images already recorded (by content) are
    not redone. Images that are not square are padded with their border colour, or with `stretch` stretched."""
    info = classifier.info
    conversion = dict(background=dataset_background(info.dataset), stretch=stretch)
    spec = classifier.strategy(strategy)
    done = store.done() if store else {}
    results: dict[int, FileResult] = {}
    problems: list[str] = []
    step = classifier.images_per_pass()
    with progress_bar(show_progress) as bar:
        task = bar.add_task("classify", total=len(files), status="")
        for start in range(0, len(files), step):
            loaded = []
            for k in range(start, min(start + step, len(files))):
                try:
                    item = load_image(files[k], info.image_size, info.channels, **conversion)
                except DiffclassError as exc:
                    problems.append(str(exc))
                    logger.error(str(exc))
                    continue
                candidates = reversed(done.get(item.image_id, []))  # the newest valid one, as evaluate takes
                found = (_file_result(r, files[k], item.notes, classifier.class_names) for r in candidates)
                stored = next((r for r in found if r is not None), None)
                if stored is not None:
                    results[k] = stored
                else:
                    loaded.append((k, item))
            if loaded:
                tensors = torch.stack([item.tensor for _, item in loaded])
                decisions = classifier.classify(tensors, spec, [item.image_id for _, item in loaded])
                new = []
                for (k, item), d in zip(loaded, decisions):
                    names = classifier.class_names
                    top = [dict(label=c, name=names[c], probability=round(p, 4)) for c, p in d.top(top_k)]
                    results[k] = FileResult(
                        str(files[k]), d.class_name, d.label, top, d.nfe, item.notes, item.image_id, d.unfamiliar
                    )
                    new.append(results[k])
                if store:
                    store.append(new)
            bar.update(task, completed=min(start + step, len(files)))
    return [results[k] for k in sorted(results)], problems
