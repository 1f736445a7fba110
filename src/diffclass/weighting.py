"""Timestep weighting: which timesteps a class's mean error listens to most.

The classifiers rank classes by their mean error over the slots they have seen. A weighting multiplies each
slot's error by w(t) before the mean, normalised so that w averages 1 over the grid's timesteps (errors keep their
scale, so the fitted temperature still reads them). Every strategy, the paired t-test, replay and tuning then
work unchanged on weighted errors. Three kinds:

- `uniform`: w = 1 (the original method);
- `clark`: w = exp(-7 t / T), Clark & Jaini's (2023) zero-shot weighting, which favours the clean end;
- `learned`: one weight per bin of the grid's range, fitted on labelled training images by logistic regression
  on per-bin error differences between the true class and every other one (Clark & Jaini learn their weights
  where labels exist); stored with the model by `diffclass calibrate --weights`.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from diffclass.errors import DiffclassError

WEIGHTINGS = ("uniform", "clark", "learned")
CLARK_RATE = 7.0


@dataclass
class TimestepWeighting:
    kind: str = "uniform"
    edges: list[int] = field(default_factory=list)  # learned: bin edges over timesteps, increasing (len = bins + 1)
    weights: list[float] = field(default_factory=list)  # learned: one non-negative weight per bin
    images: int = 0  # learned: how many training images the fit saw

    def __post_init__(self):
        problem = self.problem()
        if problem:
            raise DiffclassError(f"timestep weighting: {problem}")

    def problem(self) -> str | None:
        if self.kind not in WEIGHTINGS:
            return f"kind must be one of {', '.join(WEIGHTINGS)}, got {self.kind!r}"
        if self.kind != "learned":
            return None
        edges, weights = self.edges, self.weights
        if not isinstance(edges, list) or not isinstance(weights, list) or len(edges) != len(weights) + 1:
            return "learned weights need edges (bins + 1 timesteps) and one weight per bin"
        if not all(isinstance(e, int) and not isinstance(e, bool) for e in edges) or edges != sorted(set(edges)):
            return "edges must be increasing integer timesteps"
        if not all(isinstance(w, (int, float)) and math.isfinite(w) and w >= 0 for w in weights) or not any(weights):
            return "weights must be finite, non-negative and not all zero"
        return None

    def raw(self, t: int, num_timesteps: int) -> float:
        if self.kind == "uniform":
            return 1.0
        if self.kind == "clark":
            return math.exp(-CLARK_RATE * t / num_timesteps)
        i = bisect.bisect_right(self.edges, t) - 1  # below the first edge or past the last: the nearest bin
        return float(self.weights[min(max(i, 0), len(self.weights) - 1)])

    def per_timestep(self, timesteps: Sequence[int], num_timesteps: int) -> dict[int, float]:
        """{timestep: w} over a grid's distinct timesteps, averaging 1 there."""
        distinct = sorted(set(timesteps))
        raw = [self.raw(t, num_timesteps) for t in distinct]
        mean = sum(raw) / len(raw)
        if mean <= 0:
            raise DiffclassError(f"the {self.kind} weighting gives every timestep of the grid weight 0")
        return {t: w / mean for t, w in zip(distinct, raw)}

    def to_dict(self) -> dict:
        if self.kind != "learned":
            return {"kind": self.kind}
        return dict(kind=self.kind, edges=self.edges, weights=[round(w, 6) for w in self.weights], images=self.images)

    @classmethod
    def from_dict(cls, data: dict | None) -> TimestepWeighting:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise DiffclassError(f"timestep weighting must be an object, got {data!r}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise DiffclassError(f"timestep weighting: {exc}") from None


def resolve(choice: str | dict | TimestepWeighting | None, stored: dict | None) -> TimestepWeighting:
    """The weighting a run uses: the one asked for by kind (`learned` reads the model's stored fit), else the
    model's stored one, else uniform."""
    if isinstance(choice, TimestepWeighting):
        return choice
    if isinstance(choice, dict):
        return TimestepWeighting.from_dict(choice)
    if choice is None:
        return TimestepWeighting.from_dict(stored)
    if choice not in WEIGHTINGS:
        raise DiffclassError(f"unknown timestep weighting {choice!r}; choose one of {', '.join(WEIGHTINGS)}")
    if choice == "learned":
        if not stored or stored.get("kind") != "learned":
            raise DiffclassError("this model has no learned timestep weights: run diffclass calibrate --weights")
        return TimestepWeighting.from_dict(stored)
    return TimestepWeighting(choice)


def fit_weights(
    errors, labels, timesteps: Sequence[int], bins: int = 8, span: tuple[int, int] | None = None
) -> TimestepWeighting:
    """Learned weights from an error table [images, classes, slots] of labelled images whose slot j was scored at
    `timesteps[j]`: per image and wrong class, the per-bin mean error minus the true class's is a feature vector;
    a logistic regression without intercept learns how much each bin tells the true class apart. The bins split
    `span` (default: the timesteps' own range) evenly."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    errors = np.asarray(errors, dtype=np.float64)
    low, high = span or (min(timesteps), max(timesteps))
    bins = max(1, min(bins, len(set(timesteps))))
    edges = sorted({round(low + (high + 1 - low) * i / bins) for i in range(bins + 1)})
    slots_of = [[j for j, t in enumerate(timesteps) if edges[b] <= t < edges[b + 1]] for b in range(len(edges) - 1)]
    kept = [b for b, slots in enumerate(slots_of) if slots]
    per_bin = np.stack([errors[:, :, slots_of[b]].mean(axis=2) for b in kept], axis=2)  # [images, classes, bins]
    labels = np.asarray(labels)
    rows = []
    for i, y in enumerate(labels):
        rows.append(np.delete(per_bin[i], y, axis=0) - per_bin[i, y])  # > 0 where the true class is better
    features = np.concatenate(rows)
    scale = features.std(axis=0) + 1e-12  # bins on the noisy end have far smaller errors: fit on a common scale
    x = np.concatenate([features / scale, -features / scale])
    y = np.concatenate([np.ones(len(features)), np.zeros(len(features))])
    model = LogisticRegression(fit_intercept=False, C=1.0, max_iter=1000).fit(x, y)
    weights = np.clip(model.coef_[0] / scale, 0, None)
    if not weights.any():
        raise DiffclassError("no timestep bin separates the classes on these images; keep the uniform weighting")
    full = [0.0] * (len(edges) - 1)
    for b, w in zip(kept, weights):
        full[b] = float(w)
    mean = sum(full) / len(full)
    return TimestepWeighting("learned", [int(e) for e in edges], [w / mean for w in full], int(len(labels)))
