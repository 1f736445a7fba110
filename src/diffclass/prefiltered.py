"""`prefilter(by=…;k=…;then=…)` as what it is: a composition of two classifiers. A cheap sieve (the plain twin, a
DiDiCM model, CLIP) keeps each image's top k classes, and the diffusion classifier ranks only those with `then`.
Every decision's cost counts both networks' calls and MACs; the classes the sieve dropped rank last, in its order.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from diffclass.decision import Decision
from diffclass.errors import DiffclassError
from diffclass.evaluation import Evaluates


class Prefiltered(Evaluates):
    """The diffusion classifier `inner` behind `sieve`, for one prefilter strategy `spec` (by, k, then)."""

    def __init__(self, inner, sieve, spec):
        if sieve.class_names != inner.class_names:
            raise DiffclassError(f"the prefilter {spec.by} knows other classes than {inner.model_name}")
        self.inner, self.sieve, self.spec = inner, sieve, spec

    model_name = property(lambda self: self.inner.model_name)
    info = property(lambda self: self.inner.info)
    tree = property(lambda self: self.inner.tree)
    scorer = property(lambda self: self.inner.scorer)
    class_names = property(lambda self: self.inner.class_names)
    macs_per_call = property(lambda self: self.inner.macs_per_call)
    bench_specs = property(lambda self: (self.spec.name,))
    default_strategy = property(lambda self: self.spec.name)

    def strategy(self, spec=None):
        return self.spec if spec in (None, self.spec, self.spec.name) else self.inner.strategy(spec)

    def images_per_pass(self) -> int:
        return self.inner.images_per_pass()

    def identity(self) -> dict:
        return dict(self.inner.identity(), prefilter=self.sieve.identity())

    def classify(self, images: torch.Tensor, strategy=None, image_ids: Sequence[str] | None = None) -> list[Decision]:
        """The sieve's top k per image, ranked by `then`; ids key both models' randomness."""
        k = self.spec.k
        kept = self.sieve.classify(images, None, image_ids)
        decisions = self.inner.classify(images, self.spec.then, image_ids, [d.ranking[:k] for d in kept])
        for decision, sieved in zip(decisions, kept):
            decision.macs = decision.nfe * self.inner.macs_per_call + sieved.nfe * self.sieve.macs_per_call
            decision.ranking += sieved.ranking[k:]
            decision.nfe += sieved.nfe
        return decisions

    def replay(self, table, filters: dict | None = None):
        """The composition replayed on an error table (a `diffclass.replay.Replayed`), the sieve's part from
        `filters[by]`: the rankings, calls and MACs of a sieve run on the table's images
        (`diffclass.tuning.FilterRun`)."""
        sieve = (filters or {}).get(self.spec.by)
        if sieve is None:
            raise DiffclassError(f"no rankings of prefilter {self.spec.by} for this table")
        run = table.correct(self.spec.then, [r[: self.spec.k] for r in sieve.rankings])
        inner_macs = run.nfe_per_image * self.inner.macs_per_call
        run.gmacs_per_image = (inner_macs + sieve.nfe_per_image * sieve.macs_per_call) / 1e9
        run.nfe_per_image += sieve.nfe_per_image
        return run
