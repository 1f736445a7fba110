"""Score every candidate on every slot once, then replay any number of strategies on the stored errors for free.

Choosing a strategy for a compute budget means trying hundreds of them, and they all ask for the same
(image, candidate, slot) errors under the same noise bank. One full table answers every request exactly, so a
replayed strategy ranks and counts NFEs as it would live, at no network cost.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from diffclass.classifier import Classifier
from diffclass.data.base import ImageDataset
from diffclass.errors import DiffclassError
from diffclass.progress import progress_bar
from diffclass.records import json_digest
from diffclass.scoring import ImageErrors
from diffclass.strategies import Strategy
from diffclass.strategies.base import Outcome, drive
from diffclass.timesteps import TimestepGrid

IMAGES_PER_PASS = 8  # each image brings (classes + nodes) x slots NFEs, so a few images fill many batches


class ErrorTable:
    """Errors [images, candidates, slots] of every class (and every internal node of the model's tree, for
    hierarchical strategies) on the first `slots` slots of one classifier's grid and noise bank. For an
    all-class model one NFE fills every class of a slot, and replay counts it so."""

    def __init__(
        self,
        errors: torch.Tensor,
        candidates: Sequence[Hashable],
        labels: torch.Tensor,
        image_ids: Sequence[str],
        all_classes: bool = False,
    ):
        self.errors, self.labels, self.image_ids = errors, labels, list(image_ids)
        self.all_classes = all_classes
        self.candidates = list(candidates)
        self.index = {c: i for i, c in enumerate(self.candidates)}
        self.row = {image_id: i for i, image_id in enumerate(self.image_ids)}
        self.values = errors.numpy()  # element reads from numpy are far cheaper than from a tensor

    @property
    def slots(self) -> int:
        return self.errors.shape[2]

    @classmethod
    def compute(
        cls,
        classifier: Classifier,
        dataset: ImageDataset,
        indices: Sequence[int] | None = None,
        slots: int | None = None,
        *,
        grid: TimestepGrid | None = None,
        nodes: bool = True,
        progress: bool = True,
        candidates: Sequence[Hashable] | None = None,
    ) -> ErrorTable:
        """Errors of every class (and, with `nodes`, every internal node of the classifier's tree), or of the
        given `candidates` only, on the first `slots` slots (default: all) of the classifier's grid, or of `grid`
        with the same noise bank."""
        scorer = classifier.scorer if grid is None else classifier.scorer.with_grid(grid)
        indices = list(range(len(dataset))) if indices is None else list(indices)
        slots = scorer.grid.size if slots is None else slots
        if candidates is None:
            candidates = list(range(len(classifier.class_names)))
            if nodes and classifier.tree is not None:
                candidates += classifier.tree.internal_nodes()
        candidates = list(candidates)
        rows = []
        with progress_bar(progress) as bar:
            task = bar.add_task("error table", total=len(indices), status=f"{len(candidates)} x {slots} NFEs/image")
            for start in range(0, len(indices), IMAGES_PER_PASS):
                chunk = indices[start : start + IMAGES_PER_PASS]
                memos = scorer.start(dataset.images[chunk], [dataset.ids[i] for i in chunk])
                scorer.compute([(memo, candidates, range(slots)) for memo in memos])
                rows += [memo.lookup(candidates, range(slots)).float() for memo in memos]
                bar.advance(task, len(chunk))
        labels = dataset.labels[indices].clone()
        all_classes = classifier.backbone.scores_all_classes
        return cls(torch.stack(rows), candidates, labels, [dataset.ids[i] for i in indices], all_classes)

    @classmethod
    def cached(
        cls,
        folder: str | Path,
        classifier: Classifier,
        dataset: ImageDataset,
        indices: Sequence[int] | None = None,
        slots: int | None = None,
        progress: bool = True,
        nodes: bool = True,
    ) -> ErrorTable:
        """`compute`, stored under `folder` and read back on the next call with the same model weights (by digest:
        a model retrained into the same folder is recomputed), noise seed, grid, loss, weighting, tree, images and
        slots."""
        indices = list(range(len(dataset))) if indices is None else list(indices)
        key = dict(
            weights=classifier.weights,
            seed=classifier.scorer.seed,
            loss=classifier.scorer.loss,
            grid=repr(classifier.scorer.grid),
            slots=slots,
            weighting=classifier.scorer.weighting.to_dict(),
            tree=nodes and classifier.tree and classifier.tree.to_dict(),
            images=json_digest([dataset.ids[i] for i in indices], length=None),
        )
        digest = json_digest(key)
        path = Path(folder) / f"errors-{digest}.safetensors"
        if path.is_file():
            return cls.load(path)
        table = cls.compute(classifier, dataset, indices, slots, nodes=nodes, progress=progress)
        path.parent.mkdir(parents=True, exist_ok=True)
        table.save(path)
        return table

    @classmethod
    def concat(cls, tables: Sequence[ErrorTable]) -> ErrorTable:
        """One table from tables of the same candidates and slots on different images: a table computed in parts
        (by several processes, or across interrupted runs) and joined."""
        first = tables[0]
        for table in tables[1:]:
            if (table.candidates, table.slots, table.all_classes) != (first.candidates, first.slots, first.all_classes):
                raise DiffclassError("these error tables hold different candidates or slots; they cannot be joined")
        ids = [image_id for table in tables for image_id in table.image_ids]
        if len(set(ids)) < len(ids):
            raise DiffclassError("these error tables share images; join tables of different images")
        errors = torch.cat([table.errors for table in tables])
        return cls(errors, first.candidates, torch.cat([table.labels for table in tables]), ids, first.all_classes)

    def mean_errors(self, candidates: Sequence[Hashable], slots: int | None = None) -> torch.Tensor:
        """[images, len(candidates)] errors averaged over the first `slots` slots (default: all)."""
        columns = [self.index[c] for c in candidates]
        return self.errors[:, columns, : slots or self.slots].double().mean(dim=2)

    def save(self, path: str | Path) -> None:
        meta = {
            "candidates": json.dumps(self.candidates),
            "image_ids": json.dumps(self.image_ids),
            "all_classes": json.dumps(self.all_classes),
        }
        save_file({"errors": self.errors.contiguous(), "labels": self.labels.contiguous()}, str(path), metadata=meta)

    @classmethod
    def load(cls, path: str | Path) -> ErrorTable:
        try:
            with safe_open(str(path), "pt") as handle:  # one read gives the tensors and their metadata
                meta, errors, labels = handle.metadata(), handle.get_tensor("errors"), handle.get_tensor("labels")
            candidates, image_ids = json.loads(meta["candidates"]), json.loads(meta["image_ids"])
            return cls(errors, candidates, labels, image_ids, json.loads(meta.get("all_classes", "false")) is True)
        except (OSError, KeyError, TypeError, ValueError, SafetensorError) as exc:
            raise DiffclassError(f"{path} is not an error table ({exc}); delete it to recompute") from None

    def replay(
        self, strategy: Strategy, per_image: Sequence[Sequence[Hashable]] | None = None
    ) -> tuple[list[Outcome], list[int]]:
        """The strategy's outcome and NFEs on every image, as a live run on the same classifier would give them;
        with `per_image`, each image ranks its own candidates (a prefilter's top k)."""
        if strategy.placement is not None:
            raise DiffclassError(f"{strategy.name} scores moved copies an error table does not hold; run it live")
        scorer = _TableScorer(self)
        memos = [ImageErrors(scorer, None, image_id) for image_id in self.image_ids]  # type: ignore[arg-type]
        classes = [c for c in self.candidates if isinstance(c, int)]
        outcomes = drive(memos, strategy, classes, per_image)
        return outcomes, [memo.nfe for memo in memos]

    def correct(self, strategy: Strategy, per_image: Sequence[Sequence[Hashable]] | None = None) -> Replayed:
        """Per image, whether the replayed strategy ranks the true class first and its top five, with its mean NFEs
        per image."""
        outcomes, nfes = self.replay(strategy, per_image)
        return Replayed([o.ranking[:5] for o in outcomes], self.labels.tolist(), sum(nfes) / len(nfes))

    def top1(self, strategy: Strategy, per_image: Sequence[Sequence[Hashable]] | None = None) -> tuple[float, float]:
        """(top-1, mean NFEs per image) of a replayed strategy."""
        run = self.correct(strategy, per_image)
        return run.top1, run.nfe_per_image


@dataclass
class Replayed:
    """A strategy replayed on a table: per image, the first five of its ranking and the true class (which images it
    got right: what a paired comparison with another strategy on the same images needs), and what it cost."""

    top: list[list[int]]
    labels: list[int]
    nfe_per_image: float
    gmacs_per_image: float = 0.0

    @property
    def hits(self) -> list[bool]:
        return [top[0] == y for top, y in zip(self.top, self.labels)]

    @property
    def top1(self) -> float:
        return sum(self.hits) / len(self.hits)

    @property
    def top5(self) -> float:
        return sum(y in top for top, y in zip(self.top, self.labels)) / len(self.labels)

    @property
    def predictions(self) -> list[int]:
        return [top[0] for top in self.top]

    def against(self, reference: Replayed) -> dict:
        """The images this run gets right that `reference` gets wrong (`gained`) and the reverse (`lost`): all a
        paired comparison of the two on the same images and slots rests on."""
        pairs = list(zip(self.hits, reference.hits))
        gained = sum(a and not b for a, b in pairs)
        lost = sum(b and not a for a, b in pairs)
        return dict(gained=gained, lost=lost)


class _TableScorer:
    """Stands in for an ErrorScorer: fills memos from the table and counts every newly filled pair as one NFE
    (for an all-class model, every newly filled slot, which brings every class)."""

    def __init__(self, table: ErrorTable):
        self.table = table

    def compute(self, requests) -> None:
        table, index, held = self.table, self.table.index, self.table.slots
        for memo, candidates, slots in requests:
            values = table.values[table.row[memo.image_id]]  # [candidates, slots] of this image
            unknown = [c for c in candidates if c not in index]
            if unknown:
                raise DiffclassError(f"the error table has no candidate {unknown[0]!r} (computed for another tree?)")
            beyond = [s for s in slots if s >= held]
            if beyond:
                raise DiffclassError(f"the error table holds {held} slots; the strategy asks for slot {beyond[0]}")
            missing = memo.missing(candidates, slots)
            if not table.all_classes:  # one NFE per pair: fill them all in one read
                rows, columns = [index[c] for c, _ in missing], [s for _, s in missing]
                memo.memo.update(zip(missing, values[rows, columns].tolist()))
                memo.nfe += len(missing)
                continue
            for s in dict.fromkeys(s for _, s in missing):  # one NFE fills every class of a slot
                memo.memo.update(zip(((key, s) for key in table.candidates), values[:, s].tolist()))
                memo.nfe += 1


@dataclass
class LevelCheck:
    """One level of a tree: how often the true class's node at this level ranks first among the level's nodes,
    and how often each pruning rule keeps it (a descent that drops it cannot be right)."""

    level: int
    nodes: int
    ranks_first: float
    survives: dict[str, float]  # rule spec -> fraction of images whose true node it keeps


def level_keys(tree) -> dict[int, list[Hashable]]:
    """The candidates (internal node ids, class indices for leaves) of each level of `tree` below the root and
    above the leaves that has two or more nodes: what `score_levels` scores, and all an error table for it needs."""
    levels = {}
    for level in range(1, tree.max_depth):
        frontier = tree.frontier(level)
        if len(frontier) >= 2:
            levels[level] = [tree.nodes[n].class_index if tree.nodes[n].is_leaf else n for n in frontier]
    return levels


def score_levels(
    table: ErrorTable, tree, slots: int | None = None, rules: Sequence[str] = ("top-fraction", "within-std")
) -> list[LevelCheck]:
    """Per level of `tree` (below the root, above the leaves), from a table holding that level's candidates
    (`level_keys`): is each level scoreable on the first `slots` slots, the ones a hierarchical stage would use?"""
    from diffclass.strategies import RULES

    built = {spec: RULES.create(spec) for spec in rules}
    checks = []
    for level, keys in level_keys(tree).items():
        frontier = tree.frontier(level)
        owner = {c: i for i, node in enumerate(frontier) for c in tree.leaves_under(node)}
        means = table.mean_errors(keys, slots)
        truth = [owner[int(y)] for y in table.labels]
        first = sum(int(row.argmin()) == t for row, t in zip(means, truth))
        survives = {
            spec: sum(t in rule.keep(row) for row, t in zip(means, truth)) / len(truth) for spec, rule in built.items()
        }
        checks.append(LevelCheck(level, len(frontier), first / len(truth), survives))
    return checks


def check_tree(
    classifier, dataset: ImageDataset, indices: Sequence[int] | None = None, slots: int = 8, progress: bool = True
) -> list[LevelCheck]:
    """`score_levels` for the classifier's own tree, scoring only the candidates its levels need (the classes only
    where a level holds leaves), on the first `slots` slots of its grid."""
    keys = list(dict.fromkeys(key for level in level_keys(classifier.tree).values() for key in level))
    table = ErrorTable.compute(classifier, dataset, indices, slots, candidates=keys, progress=progress)
    return score_levels(table, classifier.tree, slots)
