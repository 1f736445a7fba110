"""The engine every strategy shares: noise bank, nested timestep grid, memoised errors, batching, NFE count.

One rule makes results reproducible, batch-size invariant, shardable and resumable: the noise of an image
depends only on (seed, image id, slot), never on the batch, the order or the other images.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from diffclass.backbones.base import Backbone, q_sample
from diffclass.errors import DiffclassError
from diffclass.timesteps import TimestepGrid
from diffclass.weighting import TimestepWeighting

Loss = Literal["l1", "l2", "huber"]
LOSSES = ("l1", "l2", "huber")


class NonFiniteError(DiffclassError):
    """The network returned NaN or Inf: the run stops instead of ranking garbage."""


def noise_seed(seed: int, image_id: str, slot: int) -> int:
    digest = hashlib.sha256(f"{seed}\x00{image_id}\x00{slot}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def bank_noise(seed: int, image_id: str, slot: int, like: torch.Tensor) -> torch.Tensor:
    """The noise bank's epsilon of one image and slot, shaped, placed and typed like `like`."""
    gen = torch.Generator().manual_seed(noise_seed(seed, image_id, slot))
    return torch.randn(like.shape, generator=gen).to(like.device, like.dtype)


class ImageErrors:
    """The memo of one image: error of every (candidate, slot) pair computed so far, and the NFEs spent."""

    def __init__(self, scorer: ErrorScorer, x0: torch.Tensor, image_id: str):
        self.scorer = scorer
        self.x0 = x0
        self.image_id = image_id
        self.memo: dict[tuple[Hashable, int], float] = {}
        self.nfe = 0
        self._noise: dict[int, torch.Tensor] = {}

    def noise(self, slot: int) -> torch.Tensor:
        """The bank's epsilon for a slot; identical for every candidate of this image."""
        if slot not in self._noise:
            self._noise[slot] = bank_noise(self.scorer.seed, self.image_id, slot, self.x0)
        return self._noise[slot]

    def missing(self, candidates: Sequence[Hashable], slots: Sequence[int]) -> list[tuple[Hashable, int]]:
        return [(c, s) for c in candidates for s in slots if (c, s) not in self.memo]

    def errors(self, candidates: Sequence[Hashable], slots: int | Sequence[int]) -> torch.Tensor:
        """[len(candidates), len(slots)] errors; computes only the pairs not already in the memo."""
        slots = range(slots) if isinstance(slots, int) else slots
        self.scorer.compute([(self, candidates, slots)])
        return self.lookup(candidates, slots)

    def lookup(self, candidates: Sequence[Hashable], slots: Sequence[int]) -> torch.Tensor:
        return torch.tensor([[self.memo[(c, s)] for s in slots] for c in candidates], dtype=torch.float64)

    def requests(self, candidates: Sequence[Hashable]) -> list[tuple[ImageErrors, Sequence[Hashable]]]:
        """Which memo the network fills for which candidates (this one for all; a placed image's moved copies)."""
        return [(self, candidates)]


class PlacedErrors:
    """The memo of one image read at several whole-pixel placements, all on the image's own noise: the image as it
    is, moved by every offset up to `placement.shifts` in x and y, and moved so that its ink centre lands on each
    candidate's anchor (`placement.anchors`) and up to `placement.slack` pixels above and below. Each candidate is
    read at the placement where its mean error over the requested slots, times (1 + prior·k) for a move of k pixels
    in x plus y, is lowest: its error is that of the image moved to where the candidate expects it (a glyph off its
    baseline, a crop off-centre). Each moved copy costs its own calls; the uncovered border repeats the edge."""

    def __init__(self, scorer: ErrorScorer, x0: torch.Tensor, image_id: str, placement):
        from diffclass.placement import ink_centres

        self.scorer, self.x0, self.image_id, self.placement = scorer, x0, image_id, placement
        reach = range(-placement.shifts, placement.shifts + 1)
        self.shared = [(dy, dx) for dy in reach for dx in reach]
        self.centre = ink_centres(x0[None])[0] if placement.anchors else None
        self.copies: dict[tuple[int, int], ImageErrors] = {}
        self._offsets: dict[Hashable, list[tuple[int, int]]] = {}  # per candidate, asked every round: found once

    def offsets(self, candidate: Hashable) -> list[tuple[int, int]]:
        if candidate not in self._offsets:
            self._offsets[candidate] = self._find_offsets(candidate)
        return self._offsets[candidate]

    def _find_offsets(self, candidate: Hashable) -> list[tuple[int, int]]:
        from diffclass.data.corruptions import MAX_SHIFT
        from diffclass.placement import registration_offset

        anchor = self.placement.anchors.get(candidate) if self.centre is not None else None
        if anchor is None:
            return self.shared
        dy, dx = registration_offset(anchor, self.centre, MAX_SHIFT)
        slack = self.placement.slack
        moves = [(max(-MAX_SHIFT, min(MAX_SHIFT, dy + j)), dx) for j in range(-slack, slack + 1)]
        return list(dict.fromkeys([*self.shared, *moves]))

    def copy(self, offset: tuple[int, int]) -> ImageErrors:
        from diffclass.data.corruptions import translate

        if offset not in self.copies:
            self.copies[offset] = ImageErrors(self.scorer, translate(self.x0, *offset), self.image_id)
        return self.copies[offset]

    @property
    def nfe(self) -> int:
        return sum(copy.nfe for copy in self.copies.values())

    def noise(self, slot: int) -> torch.Tensor:
        """The bank's epsilon for a slot: every copy's, since all are scored under the image's id."""
        return self.copy((0, 0)).noise(slot)

    def requests(self, candidates: Sequence[Hashable]) -> list[tuple[ImageErrors, Sequence[Hashable]]]:
        groups: dict[tuple[int, int], list[Hashable]] = {}
        for candidate in candidates:
            for offset in self.offsets(candidate):
                groups.setdefault(offset, []).append(candidate)
        return [(self.copy(offset), group) for offset, group in groups.items()]

    errors = ImageErrors.errors  # compute the missing pairs (of every copy), then look them up

    def lookup(self, candidates: Sequence[Hashable], slots: Sequence[int]) -> torch.Tensor:
        rows = []
        prior = self.placement.prior
        for candidate in candidates:
            offsets = self.offsets(candidate)
            penalty = torch.tensor([1 + prior * (abs(dy) + abs(dx)) for dy, dx in offsets], dtype=torch.float64)
            read = torch.cat([self.copy(o).lookup([candidate], slots) for o in offsets]) * penalty[:, None]
            rows.append(read[read.mean(dim=1).argmin()])  # the placement it fits best
        return torch.stack(rows) if rows else torch.zeros(0, len(slots), dtype=torch.float64)


class ErrorScorer:
    """Turns (image, candidate, slot) triples into denoising errors, batching triples of several images."""

    def __init__(
        self,
        backbone: Backbone,
        grid: TimestepGrid | None = None,
        loss: Loss = "l2",
        batch_size: int = 256,
        seed: int = 0,
        weighting: TimestepWeighting | None = None,
    ):
        if loss not in LOSSES:
            raise DiffclassError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
        if batch_size < 1:
            raise DiffclassError(f"batch size must be positive, got {batch_size}")
        self.backbone = backbone
        self.grid = grid or TimestepGrid()
        if self.grid.t_max >= len(backbone.alphas_cumprod):
            last = len(backbone.alphas_cumprod) - 1
            raise DiffclassError(f"timestep {self.grid.t_max} is past the model's last timestep {last}")
        self.loss = loss
        self.batch_size = batch_size
        self.seed = seed
        self.network_calls = 0  # forward passes (each holds up to batch_size NFEs)
        self.weighting = weighting or TimestepWeighting()
        self.weights = self.weighting.per_timestep(self.grid.timesteps, len(backbone.alphas_cumprod))

    def with_grid(self, grid: TimestepGrid) -> ErrorScorer:
        """The same scorer on another timestep grid (for a strategy with a range of its own)."""
        return ErrorScorer(
            self.backbone, grid, loss=self.loss, batch_size=self.batch_size, seed=self.seed, weighting=self.weighting
        )

    @torch.no_grad()
    def start(self, images: torch.Tensor, image_ids: Sequence[str], placement=None) -> list[ImageErrors]:
        """Encode a batch of images once; the returned memos share this scorer (with a strategy's `placement`,
        each class is also read on moved copies of the image, `PlacedErrors`)."""
        if placement is not None and self.backbone.vae is not None:
            raise DiffclassError("whole-pixel moves need a pixel-space model; this one encodes with a VAE")
        x0 = self.backbone.encode(images)
        if placement is not None:
            return [PlacedErrors(self, x0[i], image_id, placement) for i, image_id in enumerate(image_ids)]
        return [ImageErrors(self, x0[i], image_id) for i, image_id in enumerate(image_ids)]

    def _error(self, eps_hat: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        fn = {"l1": F.l1_loss, "l2": F.mse_loss, "huber": F.huber_loss}[self.loss]
        return fn(eps_hat.float(), eps.float(), reduction="none").flatten(1).mean(1)

    def differentiable_errors(
        self,
        images: torch.Tensor,
        image_ids: Sequence[str],
        slots: int,
        generator: torch.Generator | None = None,
        candidates: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """[B, classes] mean weighted error of every class over the first `slots` slots, with gradients to the
        images: what an attack differentiates. Without `generator` the noise is the bank's, so the result is
        exactly what `exhaustive(n=slots)` ranks by; with one, every call draws fresh noise (expectation over
        transformation, for attacks on the classifier as a randomised function). `candidates` [B, k] scores only
        those classes of each image ([B, k] out), as a prefilter's stage does."""
        x0 = self.backbone.encode(images)
        classes = len(self.backbone.info.class_names)
        if candidates is None:
            candidates = torch.arange(classes).expand(len(x0), classes)
        rows, flat = torch.arange(len(x0)).repeat_interleave(candidates.shape[1]), candidates.flatten()
        total = 0
        for slot in range(slots):
            timestep = self.grid.timestep(slot)
            if generator is None:
                eps = torch.stack([bank_noise(self.seed, i, slot, x0[0]) for i in image_ids])
            else:
                eps = torch.randn(x0.shape, generator=generator).to(x0.device, x0.dtype)
            t = torch.full((len(x0),), timestep, device=x0.device)
            x_t = q_sample(x0, eps, self.backbone.alphas_cumprod[timestep].expand(len(x0))).to(x0.dtype)
            if self.backbone.scores_all_classes:
                eps_all = self.backbone.predict_all(x_t, t)  # [B, classes, C, H, W]
                err = self._error(eps_all.flatten(0, 1), eps.repeat_interleave(classes, 0)).view(len(x0), classes)
                err = err.gather(1, candidates.to(err.device))
            else:  # (image, class) pairs, batch_size to a forward pass
                parts = []
                for first in range(0, len(rows), self.batch_size):
                    row, chunk = rows[first : first + self.batch_size], flat[first : first + self.batch_size]
                    eps_hat = self.backbone.predict_noise(x_t[row], t[row], self.backbone.condition(chunk.tolist()))
                    parts.append(self._error(eps_hat, eps[row]))
                err = torch.cat(parts).view(len(x0), -1)
            total = total + err * self.weights[timestep]
        return total / slots

    @torch.no_grad()
    def compute(self, requests: Sequence[tuple[ImageErrors, Sequence[Hashable], Sequence[int]]]) -> None:
        """Fill the memos for every requested pair, in forward passes of at most `batch_size` triples (for an
        all-class backbone, of `batch_size` (image, slot) rows, each call filling every class)."""
        triples, seen = [], set()
        for errors, candidates, slots in ((part, cs, s) for memo, c, s in requests for part, cs in memo.requests(c)):
            for c, s in errors.missing(candidates, slots):
                if (id(errors), c, s) not in seen:
                    seen.add((id(errors), c, s))
                    triples.append((errors, c, s))
        if self.backbone.scores_all_classes:  # a key that is neither a head nor a tree node: one line
            nodes = set(self.backbone.node_keys())
            self.backbone.condition([c for c in {c: None for _, c, _ in triples} if c not in nodes])
            triples = list({(id(e), s): (e, None, s) for e, _, s in triples}.values())
        for start in range(0, len(triples), self.batch_size):
            chunk = triples[start : start + self.batch_size]
            t = torch.tensor([self.grid.timestep(s) for _, _, s in chunk])
            x0 = torch.stack([e.x0 for e, _, _ in chunk])
            eps = torch.stack([e.noise(s) for e, _, s in chunk])
            x_t = q_sample(x0, eps, self.backbone.alphas_cumprod[t]).to(x0.dtype)
            if self.backbone.scores_all_classes:
                eps_all = self.backbone.predict_all(x_t, t.to(x0.device))  # [B, classes, C, H, W]
                classes = eps_all.shape[1]
                err = self._error(eps_all.flatten(0, 1), eps.repeat_interleave(classes, 0)).view(len(chunk), -1)
                nodes, node_err = self.backbone.node_errors(err)  # tree nodes from their leaves, same call
                err = torch.cat([err, node_err], 1)
                filled = [[(c, s) for c in [*range(classes), *nodes]] for _, _, s in chunk]
            else:
                cond = self.backbone.condition([c for _, c, _ in chunk])
                err = self._error(self.backbone.predict_noise(x_t, t.to(x0.device), cond), eps)[:, None]
                filled = [[(c, s)] for _, c, s in chunk]
            err = err.cpu()
            self.network_calls += 1
            if not torch.isfinite(err).all():
                row, column = (int(i) for i in (~torch.isfinite(err)).nonzero()[0])
                raise NonFiniteError(
                    f"the network returned NaN/Inf for image {chunk[row][0].image_id!r}, candidate "
                    f"{filled[row][column][0]!r}, timestep {int(t[row])}"
                )
            for (errors, _, _), pairs, values, timestep in zip(chunk, filled, err.tolist(), t.tolist()):
                weight = self.weights[timestep]  # w(t) averages 1 over the grid
                for pair, value in zip(pairs, values):
                    errors.memo[pair] = value * weight
                errors.nfe += 1
