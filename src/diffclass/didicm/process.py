"""The uniform discrete diffusion over K classes, in closed form.

Forward rates sigma(t) * Q with Q = 11^T / K - I; the marginals are q_t = alpha(t) q_0 + (1 - alpha(t)) / K with
alpha = exp(-sigma_bar): no eigendecomposition. Two schedules: log-linear, sigma_bar(t) = -log(1 - (1 - eps) t),
so alpha = 1 - (1 - eps) t (ours and the paper's default), and the paper's geometric one, sigma_bar(t) =
sigma_min^(1 - t) sigma_max^t (which, with sigma_max = 1, leaves alpha(1) = 1/e: the label is never fully noised).
"""

from __future__ import annotations

import math

import torch

EPS = 1e-3
T_MIN = 1e-5
SCHEDULES = ("loglinear", "geometric")
SIGMA_MIN, SIGMA_MAX = 1e-3, 1.0  # the geometric schedule's ends, the paper's code's defaults


def sigma_bar(t: torch.Tensor, schedule: str = "loglinear") -> torch.Tensor:
    """The total noise up to time t (what the network is told)."""
    if schedule == "geometric":
        return SIGMA_MIN ** (1 - t) * SIGMA_MAX**t
    return -torch.log1p(-(1 - EPS) * t)


def sigma(t: torch.Tensor, schedule: str = "loglinear") -> torch.Tensor:
    """d sigma_bar / dt: the rate at time t (weights the score-entropy loss)."""
    if schedule == "geometric":
        return sigma_bar(t, schedule) * math.log(SIGMA_MAX / SIGMA_MIN)
    return (1 - EPS) / (1 - (1 - EPS) * t)


def alpha(t: torch.Tensor, schedule: str = "loglinear") -> torch.Tensor:
    """The weight the clean label keeps at time t."""
    if schedule == "geometric":
        return torch.exp(-sigma_bar(t, schedule))
    return 1 - (1 - EPS) * t


def rate_matrix(num_classes: int) -> torch.Tensor:
    return torch.full((num_classes, num_classes), 1.0 / num_classes) - torch.eye(num_classes)


def forward_probs(q0: torch.Tensor, t: torch.Tensor, schedule: str = "loglinear") -> torch.Tensor:
    """q_t for clean class-probability vectors q0 [B, K] at times t [B]."""
    a = alpha(t, schedule).view(-1, 1).to(q0.dtype)
    return a * q0 + (1 - a) / q0.shape[-1]


def sample_noisy_labels_balanced(
    c0: torch.Tensor, t: torch.Tensor, num_classes: int, generator=None, schedule: str = "loglinear"
) -> tuple[torch.Tensor, torch.Tensor]:
    """c_t drawn half the time equal to c0 and half the time another class, with importance weights that keep
    every expectation over q_t(. | c0) unbiased. Under q_t itself a changed label is rare at small t, yet its
    score-entropy term is about K/t: a few huge, noisy gradients would dominate training."""
    keep_prob = alpha(t, schedule) + (1 - alpha(t, schedule)) / num_classes  # q_t(c0 | c0)
    same = torch.rand(c0.shape, generator=generator) < 0.5
    other = (c0 + torch.randint(1, num_classes, c0.shape, generator=generator)) % num_classes
    weights = torch.where(same, keep_prob, 1 - keep_prob) / 0.5
    return torch.where(same, c0, other), weights


def sample_noisy_labels(
    c0: torch.Tensor, t: torch.Tensor, num_classes: int, generator=None, schedule: str = "loglinear"
) -> torch.Tensor:
    """c_t ~ q_t(. | c0): keep c0 with weight alpha, else a uniform class (which may be c0 again)."""
    keep = torch.rand(c0.shape, generator=generator) < alpha(t, schedule)
    uniform = torch.randint(num_classes, c0.shape, generator=generator)
    return torch.where(keep, c0, uniform)
