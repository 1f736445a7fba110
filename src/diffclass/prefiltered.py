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

    def logits_fn(self, strategy, image_ids: Sequence[str], eot: int = 0):
        """The composition's stand-in for attacks. Its value: the diffusion logits of the sieve's top k on the image
        under attack, and every dropped class below the lowest of them by as far as the sieve puts it under its
        k-th, so its argmax is `classify`'s decision. Its gradient reaches both networks: each kept class also
        carries, at zero value, its sieve margin over the best dropped class (a straight-through term), so an
        attack pushes the true class out of the sieve's top k as well as down the diffusion ranking."""
        if self.strategy(strategy) is not self.spec:
            return self.inner.logits_fn(strategy, image_ids, eot)
        if self.spec.then.kind != "exhaustive":
            stage = self.spec.then.name
            raise DiffclassError(f"attacks differentiate a prefilter's exhaustive(n=K) stage, not {stage}")
        try:
            sieve = self.sieve.logits_fn(None, image_ids)
        except DiffclassError as error:
            raise DiffclassError(f"the prefilter {self.spec.by} cannot be attacked: {error}") from None
        inner, k = self.inner.logits_fn(self.spec.then, image_ids, eot), self.spec.k

        def logits(images: torch.Tensor) -> torch.Tensor:
            sieved = sieve(images).double()
            order = sieved.argsort(dim=1, descending=True)
            kept = order[:, :k]  # the sieve's top k, best first
            ranked = inner(images, kept)
            if order.shape[1] > k:  # margin over the best dropped class: zero in value, its gradient kept
                margin = sieved.gather(1, kept) - sieved.gather(1, order[:, k : k + 1])
                ranked = ranked + margin - margin.detach()
            below = ranked.min(1, keepdim=True).values.detach() - 1 + sieved - sieved.gather(1, kept[:, -1:])
            return below.scatter(1, kept, ranked)

        logits.by_id = True  # the diffusion stage's noise is each image's own
        return logits

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
