"""DiDiCM samplers: reverse the label diffusion from (almost) pure noise at t = 1 to t_min, reading the image's
class posterior off the network's concrete scores.

Ours (`update=exact`, the default) take the exact reverse step of the uniform process: from the network's estimate
of q_t (its scores at one anchor label normalised), the implied clean posterior p0 = (q_t - (1 - alpha_t)/K) /
alpha_t gives q_t' in closed form; probabilities are clamped at 0 only, and the last estimate is read off the
network at t_min, never clamped to [0, 1] at a tiny time (that flattens an accurate posterior). The paper's own
updates sit beside them: CP's Euler step of the reverse rate matrix built from the score ratios at the anchor
(`update=euler`, probabilities clamped to [0, 1] and renormalised every step) and CL's Euler tau-leaping
(`update=tau`); CP's anchor is the least likely label (`mode=min`), the most likely or one drawn from the
current distribution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from diffclass.registry import Option, Registry, choice, integer

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
    mode: str = "min"  # CP's anchor label: the least likely (min), the most likely (max) or drawn (random)
    update: str = "exact"  # exact reverse step (ours); euler (CP) or tau (CL): the paper's

    @property
    def kind(self) -> str:
        return "plain" if self.sampler == "plain" else f"didicm-{self.sampler}"

    @property
    def name(self) -> str:
        """The spec spelled with what differs from the defaults, so the default names stay as they were."""
        update = "" if self.update == "exact" else f";update={self.update}"
        if self.sampler == "cp":
            return f"cp(steps={self.steps}" + ("" if self.mode == "min" else f";mode={self.mode}") + update + ")"
        if self.sampler == "cl":
            return f"cl(N={self.chains};steps={self.steps}{update})"
        return "plain"


SAMPLERS.register(
    "cp",
    Option("steps", 8, integer(1, 1000), "reverse steps (one network call each)"),
    Option("mode", "min", choice("min", "max", "random"), "anchor label the scores are read at"),
    Option("update", "exact", choice("exact", "euler"), "exact reverse step (ours) or the paper's Euler step"),
    help="DiDiCM class-probability sampler",
)(lambda o: SamplerSpec("cp", steps=o["steps"], mode=o["mode"], update=o["update"]))
SAMPLERS.register(
    "cl",
    Option("N", 16, integer(1, 1024), "label chains per image"),
    Option("steps", 2, integer(1, 1000), "reverse steps per chain"),
    Option("update", "exact", choice("exact", "tau"), "exact ancestral step (ours) or the paper's tau-leaping"),
    help="DiDiCM label-chain sampler",
)(lambda o: SamplerSpec("cl", o["steps"], o["N"], update=o["update"]))
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


def _clean_estimate(log_scores: torch.Tensor, t: float, schedule: str = "loglinear") -> torch.Tensor:
    """p0 implied by the network's q_t (clamped at 0, renormalised)."""
    import torch

    from diffclass.didicm.process import alpha

    num_classes = log_scores.shape[-1]
    q_t = torch.softmax(log_scores, dim=-1)
    a = alpha(torch.tensor(t), schedule).item()
    p0 = ((q_t - (1 - a) / num_classes) / a).clamp_min(0)
    return p0 / p0.sum(dim=-1, keepdim=True).clamp_min(1e-30)


def _per_image(generator, batch: int):
    """One generator per image (a list) or one for the batch, as a list of `batch` draws' sources."""
    return generator if isinstance(generator, (list, tuple)) else [generator] * batch


def _anchor(q: torch.Tensor, mode: str, generator) -> torch.Tensor:
    import torch

    if mode == "min":
        return q.argmin(dim=-1)
    if mode == "max":
        return q.argmax(dim=-1)
    return torch.cat([torch.multinomial(row, 1, generator=g) for row, g in zip(q, _per_image(generator, len(q)))])


def _euler_step(q: torch.Tensor, log_scores: torch.Tensor, t: float, dt: float, schedule: str) -> torch.Tensor:
    """The paper's CP step: reverse rates R[i, j] = (s_i / s_j) Q[i, j] from the scores s at the anchor (their
    ratios are the anchor's whole information), q <- (I + dt sigma(t) R) q, clamped to [0, 1] and renormalised."""
    import torch

    from diffclass.didicm.process import rate_matrix, sigma

    num_classes = q.shape[-1]
    s = torch.softmax(log_scores, dim=-1)
    rates = s.unsqueeze(2) / s.unsqueeze(1) * rate_matrix(num_classes).to(q).fill_diagonal_(0).unsqueeze(0)
    rates = rates - torch.diag_embed(rates.sum(dim=1))
    step = torch.eye(num_classes, dtype=q.dtype) + dt * sigma(torch.tensor(t), schedule).item() * rates
    q = torch.bmm(step, q.unsqueeze(2)).squeeze(2).clamp(0, 1)
    return q / q.sum(dim=-1, keepdim=True).clamp_min(1e-30)


def sample_cp(
    score_fn: ScoreFn,
    batch: int,
    num_classes: int,
    steps: int = 8,
    mode: str = "min",
    update: str = "exact",
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    schedule: str = "loglinear",
) -> Posterior:
    """DiDiCM-CP: evolve the class-probability vector; each step queries the network at one anchor label (`mode`),
    then takes our exact reverse step or the paper's Euler step (`update`). A drawn anchor (`mode=random`) draws
    from its image's generator when there is one per image."""
    import torch

    from diffclass.didicm.process import T_MIN, alpha, sigma_bar

    q = torch.full((batch, num_classes), 1.0 / num_classes)
    p0, path, times = q, [], _times(steps).tolist()
    for t in times:
        log_scores = score_fn(_anchor(q, mode, generator), sigma_bar(torch.full((batch,), t), schedule))
        if update == "euler":
            q = _euler_step(q, log_scores, t, (1 - T_MIN) / steps, schedule)
            p0 = q
        else:
            p0 = _clean_estimate(log_scores, t, schedule)
            a = alpha(torch.tensor(t), schedule)
            q = a * p0 + (1 - a) / num_classes  # q_t as the network sees it
        path.append(p0)
    return Posterior(p0, steps, path, times)


def sample_cl(
    score_fn: ScoreFn,
    batch: int,
    num_classes: int,
    chains: int = 16,
    steps: int = 2,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    update: str = "exact",
    schedule: str = "loglinear",
) -> Posterior:
    """DiDiCM-CL: N label chains per image, ancestral steps of the uniform process (or the paper's tau-leaping,
    `update=tau`); the histogram of the final labels is the posterior estimate. With one generator per image, each
    image's chains draw from its own, so an image gets the same answer whatever batch it is in."""
    import torch

    from diffclass.didicm.process import T_MIN, alpha, sigma, sigma_bar

    def draw(probabilities: torch.Tensor) -> torch.Tensor:  # one label per chain, [batch * chains]
        if isinstance(generator, (list, tuple)):
            rows = probabilities.view(batch, chains, -1)
            return torch.cat([torch.multinomial(r, 1, generator=g) for r, g in zip(rows, generator)]).squeeze(1)
        return torch.multinomial(probabilities, 1, generator=generator).squeeze(1)

    if isinstance(generator, (list, tuple)):  # uniform starting labels
        labels = torch.cat([torch.randint(num_classes, (chains,), generator=g) for g in generator])
    else:
        labels = torch.randint(num_classes, (batch * chains,), generator=generator)
    if update == "tau":  # each chain jumps at the reverse rates its own label's scores give, for dt at a time
        path, times, dt = [], _times(steps).tolist(), (1 - T_MIN) / steps
        for t in times:
            s = score_fn(labels, sigma_bar(torch.full((len(labels),), t), schedule)).exp()
            step = (dt * sigma(torch.tensor(t), schedule).item() / num_classes * s).scatter(1, labels.view(-1, 1), 0.0)
            stay = (1 - step.sum(dim=1, keepdim=True)).clamp_min(0)
            labels = draw(step.scatter(1, labels.view(-1, 1), stay))
            path.append(torch.nn.functional.one_hot(labels, num_classes).float().view(batch, chains, -1).mean(1))
        return Posterior(path[-1], steps * chains, path, times)
    times = _times(steps).tolist() + [0.0]
    path = []
    for t, t_next in zip(times, times[1:]):
        p0 = _clean_estimate(score_fn(labels, sigma_bar(torch.full((len(labels),), t), schedule)), t, schedule)
        path.append(p0.view(batch, chains, num_classes).mean(dim=1))  # what the chains see, averaged
        if t_next == 0.0:
            labels = draw(p0)
            break
        a_t, a_next = alpha(torch.tensor(t), schedule).item(), alpha(torch.tensor(t_next), schedule).item()
        q_next = a_next * p0 + (1 - a_next) / num_classes  # q_t'(i)
        keep = a_t / a_next  # q_{t | t'}(c | i) = keep * [i == c] + (1 - keep) / K
        likelihood = torch.full_like(q_next, (1 - keep) / num_classes)
        likelihood.scatter_add_(1, labels.view(-1, 1), torch.full((len(labels), 1), keep))
        posterior = q_next * likelihood
        labels = draw(posterior / posterior.sum(dim=-1, keepdim=True))
    counts = torch.zeros(batch, num_classes)
    counts.scatter_add_(1, labels.view(batch, chains), torch.ones(batch, chains))
    return Posterior(counts / chains, steps * chains, [*path, counts / chains], times)
