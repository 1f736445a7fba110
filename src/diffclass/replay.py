"""Score every candidate on every slot once, then replay any number of strategies on the stored errors for free.

Choosing a strategy for a compute budget means trying hundreds of them, and they all ask for the same
(image, candidate, slot) errors under the same noise bank. One full table answers every request exactly, so a
replayed strategy ranks and counts NFEs as it would live, at no network cost.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from diffclass.backbones.node_embeddings import internal_nodes
from diffclass.classifier import Classifier
from diffclass.data.base import ImageDataset
from diffclass.errors import DiffclassError
from diffclass.progress import progress_bar
from diffclass.scoring import ImageErrors
from diffclass.strategies import Strategy
from diffclass.strategies.base import Outcome, drive

IMAGES_PER_PASS = 8  # each image brings (classes + nodes) x slots NFEs, so a few images fill many batches


class ErrorTable:
    """Errors [images, candidates, slots] of every class (and every internal node of the model's tree, for
    hierarchical strategies) on the first `slots` slots of one classifier's grid and noise bank."""

    def __init__(
        self, errors: torch.Tensor, candidates: Sequence[Hashable], labels: torch.Tensor, image_ids: Sequence[str]
    ):
        self.errors, self.labels, self.image_ids = errors, labels, list(image_ids)
        self.candidates = list(candidates)
        self.index = {c: i for i, c in enumerate(self.candidates)}
        self.row = {image_id: i for i, image_id in enumerate(self.image_ids)}
        self.values = errors.numpy()  # element reads from numpy are far cheaper than from a tensor

    @property
    def slots(self) -> int:
        return self.errors.shape[2]

    @classmethod
    def compute(
        cls, classifier: Classifier, dataset: ImageDataset, indices: Sequence[int], slots: int, progress: bool = True
    ) -> ErrorTable:
        candidates: list[Hashable] = list(range(len(classifier.class_names)))
        if classifier.tree is not None:
            candidates += internal_nodes(classifier.tree)
        rows = []
        with progress_bar(progress) as bar:
            task = bar.add_task("error table", total=len(indices), status=f"{len(candidates)} x {slots} NFEs/image")
            for start in range(0, len(indices), IMAGES_PER_PASS):
                chunk = list(indices[start : start + IMAGES_PER_PASS])
                memos = classifier.scorer.start(dataset.images[chunk], [dataset.ids[i] for i in chunk])
                classifier.scorer.compute([(memo, candidates, range(slots)) for memo in memos])
                rows += [memo.lookup(candidates, range(slots)).float() for memo in memos]
                bar.advance(task, len(chunk))
        labels = dataset.labels[list(indices)].clone()
        return cls(torch.stack(rows), candidates, labels, [dataset.ids[i] for i in indices])

    def save(self, path: str | Path) -> None:
        meta = {"candidates": json.dumps(self.candidates), "image_ids": json.dumps(self.image_ids)}
        save_file({"errors": self.errors.contiguous(), "labels": self.labels.contiguous()}, str(path), metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> ErrorTable:
        try:
            with safe_open(str(path), "pt") as handle:  # one read gives the tensors and their metadata
                meta, errors, labels = handle.metadata(), handle.get_tensor("errors"), handle.get_tensor("labels")
            candidates, image_ids = json.loads(meta["candidates"]), json.loads(meta["image_ids"])
            return cls(errors, candidates, labels, image_ids)
        except (OSError, KeyError, TypeError, ValueError, SafetensorError) as exc:
            raise DiffclassError(f"{path} is not an error table ({exc}); delete it to recompute") from None

    def replay(self, strategy: Strategy) -> tuple[list[Outcome], list[int]]:
        """The strategy's outcome and NFEs on every image, as a live run on the same classifier would give them."""
        scorer = _TableScorer(self)
        memos = [ImageErrors(scorer, None, image_id) for image_id in self.image_ids]  # type: ignore[arg-type]
        classes = [c for c in self.candidates if isinstance(c, int)]
        outcomes = drive(memos, strategy, classes)
        return outcomes, [memo.nfe for memo in memos]

    def top1(self, strategy: Strategy) -> tuple[float, float]:
        """(top-1, mean NFEs per image) of a replayed strategy."""
        outcomes, nfes = self.replay(strategy)
        correct = sum(int(o.ranking[0] == int(y)) for o, y in zip(outcomes, self.labels))
        return correct / len(outcomes), sum(nfes) / len(nfes)


class _TableScorer:
    """Stands in for an ErrorScorer: fills memos from the table and counts every newly filled pair as one NFE."""

    def __init__(self, table: ErrorTable):
        self.table = table

    def compute(self, requests) -> None:
        table = self.table
        for memo, candidates, slots in requests:
            for c, s in memo.missing(candidates, slots):
                if c not in table.index:
                    raise DiffclassError(f"the error table has no candidate {c!r} (computed for another tree?)")
                if s >= table.slots:
                    raise DiffclassError(f"the error table holds {table.slots} slots; the strategy asks for slot {s}")
                memo.memo[(c, s)] = float(table.values[table.row[memo.image_id], table.index[c], s])
                memo.nfe += 1
