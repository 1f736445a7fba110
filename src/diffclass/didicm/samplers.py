"""DiDiCM samplers: reverse the label diffusion from (almost) pure noise at t = 1 to t_min, reading the image's
class posterior off the network's concrete scores.

Both use the exact reverse step of the uniform process: from the network's estimate of q_t (its scores at one
anchor label normalised), the implied clean posterior p0 = (q_t - (1 - alpha_t)/K) / alpha_t gives q_t' in closed
form. Probabilities are clamped at 0 only; the last estimate is read off the network at t_min, never clamped to
[0, 1] at a tiny time (that flattens an accurate posterior, the public code's bug).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from diffclass.registry import Option, Registry, integer

if TYPE_CHECKING:  # the registry below is listed by `diffclass strategies`, which must not pay for torch
    import torch

# score_fn(c_t [B], sigma_bar [B]) -> log q_t(i)/q_t(c_t) [B, K]; one call = one NFE per image in the batch
ScoreFn = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]

# name -> build(options): the "strategies" of DiDiCM models (and `plain` for their baseline twins)
SAMPLERS = Registry("DiDiCM sampler")


@dataclass(frozen=True)
class SamplerSpec:
    sampler: str
    steps: int = 8
    chains: int = 16

    @property
    def kind(self) -> str:
        return "plain" if self.sampler == "plain" else f"didicm-{self.sampler}"

    @property
    def name(self) -> str:
        if self.sampler == "cp":
            return f"cp(steps={self.steps})"
        if self.sampler == "cl":
            return f"cl(N={self.chains};steps={self.steps})"
        return "plain"


SAMPLERS.register(
    "cp",
    Option("steps", 8, integer(1, 1000), "reverse steps (one network call each)"),
    help="DiDiCM class-probability sampler",
)(lambda o: SamplerSpec("cp", steps=o["steps"]))
SAMPLERS.register(
    "cl",
    Option("N", 16, integer(1, 1024), "label chains per image"),
    Option("steps", 2, integer(1, 1000), "reverse steps per chain"),
    help="DiDiCM label-chain sampler",
)(lambda o: SamplerSpec("cl", o["steps"], o["N"]))
SAMPLERS.register("plain", help="a plain baseline network: one call, softmax")(lambda o: SamplerSpec("plain"))


@dataclass
class Posterior:
    probabilities: torch.Tensor  # [B, K]
    nfe: int  # network calls per image
    path: list[torch.Tensor] = field(default_factory=list)  # [B, K] label distribution after each step (explain)
    times: list[float] = field(default_factory=list)  # the label process's time t at each step, 1 -> 0


def _times(steps: int) -> torch.Tensor:
    import torch

    from diffclass.didicm.process import T_MIN

    return torch.linspace(1.0, T_MIN, steps)


def _clean_estimate(log_scores: torch.Tensor, t: float) -> torch.Tensor:
    """p0 implied by the network's q_t (clamped at 0, renormalised)."""
    import torch

    from diffclass.didicm.process import alpha

    num_classes = log_scores.shape[-1]
    q_t = torch.softmax(log_scores, dim=-1)
    a = alpha(torch.tensor(t)).item()
    p0 = ((q_t - (1 - a) / num_classes) / a).clamp_min(0)
    return p0 / p0.sum(dim=-1, keepdim=True).clamp_min(1e-30)


def sample_cp(score_fn: ScoreFn, batch: int, num_classes: int, steps: int = 8) -> Posterior:
    """DiDiCM-CP: evolve the class-probability vector; each step queries the network at the least likely class."""
    import torch

    from diffclass.didicm.process import alpha, sigma_bar

    q = torch.full((batch, num_classes), 1.0 / num_classes)
    p0, path, times = q, [], _times(steps).tolist()
    for t in times:
        anchor = q.argmin(dim=-1)
        log_scores = score_fn(anchor, sigma_bar(torch.full((batch,), t)))
        p0 = _clean_estimate(log_scores, t)
        path.append(p0)
        q = alpha(torch.tensor(t)) * p0 + (1 - alpha(torch.tensor(t))) / num_classes  # q_t as the network sees it
    return Posterior(p0, steps, path, times)


def sample_cl(
    score_fn: ScoreFn,
    batch: int,
    num_classes: int,
    chains: int = 16,
    steps: int = 2,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
) -> Posterior:
    """DiDiCM-CL: N label chains per image, ancestral steps of the uniform process; the histogram of the final
    labels is the posterior estimate. With one generator per image, each image's chains draw from its own, so an
    image gets the same answer whatever batch it is in."""
    import torch

    from diffclass.didicm.process import alpha, sigma_bar

    def draw(probabilities: torch.Tensor) -> torch.Tensor:  # one label per chain, [batch * chains]
        if isinstance(generator, (list, tuple)):
            rows = probabilities.view(batch, chains, -1)
            return torch.cat([torch.multinomial(r, 1, generator=g) for r, g in zip(rows, generator)]).squeeze(1)
        return torch.multinomial(probabilities, 1, generator=generator).squeeze(1)

    if isinstance(generator, (list, tuple)):  # uniform starting labels
        labels = torch.cat([torch.randint(num_classes, (chains,), generator=g) for g in generator])
    else:
        labels = torch.randint(num_classes, (batch * chains,), generator=generator)
    times = _times(steps).tolist() + [0.0]
    path = []
    for t, t_next in zip(times, times[1:]):
        p0 = _clean_estimate(score_fn(labels, sigma_bar(torch.full((len(labels),), t))), t)
        path.append(p0.view(batch, chains, num_classes).mean(dim=1))  # what the chains see, averaged
        if t_next == 0.0:
            labels = draw(p0)
            break
        a_t, a_next = alpha(torch.tensor(t)).item(), alpha(torch.tensor(t_next)).item()
        q_next = a_next * p0 + (1 - a_next) / num_classes  # q_t'(i)
        keep = a_t / a_next  # q_{t | t'}(c | i) = keep * [i == c] + (1 - keep) / K
        likelihood = torch.full_like(q_next, (1 - keep) / num_classes)
        likelihood.scatter_add_(1, labels.view(-1, 1), torch.full((len(labels), 1), keep))
        posterior = q_next * likelihood
        labels = draw(posterior / posterior.sum(dim=-1, keepdim=True))
    counts = torch.zeros(batch, num_classes)
    counts.scatter_add_(1, labels.view(batch, chains), torch.ones(batch, chains))
    return Posterior(counts / chains, steps * chains, [*path, counts / chains], times)
