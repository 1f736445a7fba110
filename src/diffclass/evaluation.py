"""Running a strategy over a labelled dataset: one record per image, and the summary computed from them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from diffclass.classifier import Classifier, Decision
from diffclass.data.base import ImageDataset
from diffclass.errors import DiffclassError
from diffclass.progress import progress_bar
from diffclass.records import RecordStore
from diffclass.strategies import Strategy


@dataclass
class EvalRecord:
    id: str
    label: int
    prediction: int
    top5: list[tuple[int, float]]  # (class, probability), best first
    nfe: int
    seconds: float


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
    records: list[EvalRecord] = field(default_factory=list, repr=False)

    def to_json(self, with_records: bool = False) -> dict:
        data = asdict(self)
        if not with_records:
            data.pop("records")
        return data


def record_of(image_id: str, label: int, decision: Decision) -> EvalRecord:
    """Probabilities are rounded so that records do not depend on float noise from the batch composition."""
    top5 = [(c, round(p, 4)) for c, p in decision.top(5)]
    return EvalRecord(image_id, label, decision.label, top5, decision.nfe, round(decision.seconds, 5))


def record_from_json(data: dict) -> EvalRecord:
    return EvalRecord(
        data["id"], data["label"], data["prediction"], [tuple(t) for t in data["top5"]], data["nfe"], data["seconds"]
    )


def summarise(records: list[EvalRecord], dataset: str, model: str, strategy: str) -> EvalSummary:
    n = len(records)
    if n == 0:
        raise DiffclassError("no images were evaluated")
    return EvalSummary(
        dataset=dataset,
        model=model,
        strategy=strategy,
        n_images=n,
        top1=sum(r.prediction == r.label for r in records) / n,
        top5=sum(r.label in [c for c, _ in r.top5] for r in records) / n,
        nfe_per_image=sum(r.nfe for r in records) / n,
        seconds_per_image=sum(r.seconds for r in records) / n,
        records=records,
    )


def evaluate(
    classifier: Classifier,
    dataset: ImageDataset,
    strategy: str | Strategy = "adaptive",
    limit: int | None = None,
    show_progress: bool = True,
    store: RecordStore | None = None,
    shard: tuple[int, int] = (0, 1),
) -> EvalSummary:
    """Classify every image of `dataset` (or the first `limit`) and summarise top-1, top-5, NFEs and time.

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
    done = {i: record_from_json(r) for i, r in (store.done() if store else {}).items()}
    todo = [i for i in mine if dataset.ids[i] not in done]
    records = [done[dataset.ids[i]] for i in mine if dataset.ids[i] in done]
    step = classifier.images_per_pass()
    with progress_bar(show_progress) as bar:
        task = bar.add_task(strategy.kind, total=len(mine), completed=len(records), status="")
        for start in range(0, len(todo), step):
            chunk = todo[start : start + step]
            decisions = classifier.classify(dataset.images[chunk], strategy, [dataset.ids[i] for i in chunk])
            new = [record_of(dataset.ids[i], int(dataset.labels[i]), d) for i, d in zip(chunk, decisions)]
            if store:
                store.append(new)
            records += new
            correct = sum(r.prediction == r.label for r in records)
            bar.update(task, completed=len(records), status=f"top-1 {correct / len(records):.1%}")
    order = {image_id: k for k, image_id in enumerate(dataset.ids)}
    records.sort(key=lambda r: order[r.id])
    return summarise(records, dataset.name, classifier.model_name, strategy.name)
