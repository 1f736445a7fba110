"""Score entropy for the label diffusion: the network's log concrete scores log q_t(i)/q_t(c_t) are pulled
towards the ratios implied by the clean label, weighted by the rate sigma(t) (Lou et al.'s denoising score
entropy, uniform rates). Its minimiser, averaged over clean labels drawn from the image's posterior, is the
posterior's concrete score."""

from __future__ import annotations

import torch

from diffclass.didicm.process import alpha, sigma


def score_entropy(
    log_scores: torch.Tensor,
    c_t: torch.Tensor,
    q0: torch.Tensor,
    t: torch.Tensor,
    weights: torch.Tensor | None = None,
    schedule: str = "loglinear",
) -> torch.Tensor:
    """Mean loss over the batch (each sample times its importance weight, if given).

    log_scores: [B, K] network output (the entry at c_t is ignored); c_t: [B] noisy labels; q0: [B, K] the clean
    label as a probability vector: one-hot for hard labels; a soft target (mixup, smoothing) gives, up to a
    constant, the sampled-label loss averaged over the clean label given c_t (same gradient in expectation, none
    of the variance of a drawn label); t: [B] times.
    """
    num_classes = log_scores.shape[-1]
    a = alpha(t, schedule).view(-1, 1)
    q_t = a * q0 + (1 - a) / num_classes  # q_t(. | c0)
    ratio = q_t / q_t.gather(1, c_t.view(-1, 1))  # q_t(i | c0) / q_t(c_t | c0)
    others = torch.ones_like(log_scores, dtype=torch.bool).scatter(1, c_t.view(-1, 1), False)
    terms = log_scores.exp() - ratio * log_scores + ratio * (ratio.clamp_min(1e-30).log() - 1)
    per_sample = sigma(t, schedule) * (terms * others).sum(dim=1) / num_classes
    return (per_sample if weights is None else weights * per_sample).mean()
