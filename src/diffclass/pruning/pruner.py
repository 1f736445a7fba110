"""Structural pruning of a backbone's noise-prediction network with torch-pruning (Diff-Pruning and baselines).

Diff-Pruning (Fang et al. 2023) scores channel groups by first-order Taylor importance, but accumulates the
gradients only over the informative timesteps: walking t from the clean end, it stops at the first step whose
loss falls below `threshold` times the largest loss seen, because the noisy end adds converged, uninformative
gradients. `random`, `magnitude` and `taylor` (all timesteps, plain multivariable Taylor) are its baselines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from diffclass.backbones.base import _OneCall, q_sample
from diffclass.cost import network_size
from diffclass.errors import DiffclassError
from diffclass.registry import Registry

logger = logging.getLogger(__name__)

# name -> torch-pruning importance; extra `gradients`: scored on the diffusion loss's gradients (Taylor methods),
# `informative`: gradients only over the timesteps before the loss threshold (Diff-Pruning)
IMPORTANCES = Registry("pruning method")


@IMPORTANCES.register("random", help="random channel groups (a baseline)")
def _random():
    import torch_pruning as tp

    return tp.importance.RandomImportance()


@IMPORTANCES.register("magnitude", help="L2 norm of the weights (a baseline)")
def _magnitude():
    import torch_pruning as tp

    return tp.importance.MagnitudeImportance(p=2)


@IMPORTANCES.register("taylor", help="multivariable Taylor on every timestep's gradients (a baseline)", gradients=True)
def _taylor():
    import torch_pruning as tp

    return tp.importance.TaylorImportance(multivariable=True)


@IMPORTANCES.register(
    "diff-pruning", help="Taylor on the informative timesteps only (Fang et al. 2023)", gradients=True, informative=True
)
def _diff_pruning():
    import torch_pruning as tp

    return tp.importance.TaylorImportance()


@dataclass
class PruneReport:
    """What pruning did: realised sizes per network call (one image), and which timesteps fed the importance."""

    method: str
    ratio: float
    threshold: float | None
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int
    timesteps_used: list[int] = field(default_factory=list)
    cutoff_timestep: int | None = None  # first timestep left out by the threshold (None: none was)

    @property
    def macs_ratio(self) -> float:
        return self.macs_before / self.macs_after

    @property
    def params_ratio(self) -> float:
        return self.params_before / self.params_after

    def to_dict(self) -> dict:
        return dict(asdict(self), macs_ratio=round(self.macs_ratio, 4), params_ratio=round(self.params_ratio, 4))

    def summary(self) -> str:
        return (
            f"params {_human(self.params_before)} -> {_human(self.params_after)} ({self.params_ratio:.2f}x), "
            f"MACs/call {_human(self.macs_before)} -> {_human(self.macs_after)} ({self.macs_ratio:.2f}x)"
        )


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def accumulate_informative_gradients(
    loss_at: Callable[[int], torch.Tensor], timesteps: Sequence[int], threshold: float
) -> tuple[list[int], int | None]:
    """Back-propagate the loss of each timestep, walking from the clean end, until a loss falls below
    `threshold` x the largest seen so far; that step and all later ones contribute nothing.
    Returns the timesteps used and the cut-off (None when every step was informative)."""
    used, peak = [], 0.0
    for t in timesteps:
        loss = loss_at(int(t))
        value = float(loss.detach())
        if not torch.isfinite(loss.detach()):
            raise DiffclassError(f"the diffusion loss at timestep {t} is {value}; cannot score the network")
        peak = max(peak, value)
        if value < threshold * peak:
            return used, int(t)
        loss.backward()
        used.append(int(t))
    return used, None


def _attention_heads(network: torch.nn.Module) -> dict:
    """Every attention projection with its head count, so heads stay whole and equal-sized after pruning."""
    from diffusers.models.attention_processor import Attention

    heads = {}
    for module in network.modules():
        if isinstance(module, Attention):
            for proj in (module.to_q, module.to_k, module.to_v):
                heads[proj] = module.heads
    return heads


def _fix_resamplers(network: torch.nn.Module) -> None:
    """torch-pruning resizes the convolutions of Downsample2D/Upsample2D but not their `channels` attribute,
    which their forward asserts on."""
    from diffusers.models.downsampling import Downsample2D
    from diffusers.models.upsampling import Upsample2D

    for module in network.modules():
        if isinstance(module, (Downsample2D, Upsample2D)) and getattr(module, "conv", None) is not None:
            module.channels = module.conv.in_channels
            module.out_channels = module.conv.out_channels


def prune_backbone(
    backbone,
    method: str,
    ratio: float,
    images: torch.Tensor,
    labels: torch.Tensor,
    threshold: float = 0.05,
    calibration_steps: int = 100,
    protect_class_embedding: bool = True,
    seed: int = 0,
) -> PruneReport:
    """Prune the backbone's denoiser in place: remove `ratio` of every prunable channel group (realised sizes are
    quantised by GroupNorm groups and attention heads, so they are measured and reported). Gradient-based methods
    score on `images` (real training images, in [-1, 1]) with their `labels` and one fixed noise tensor."""
    import torch_pruning as tp

    entry = IMPORTANCES.get(method)
    if not 0 < ratio < 1:
        raise DiffclassError(f"--ratio must lie strictly between 0 and 1, got {ratio}")
    if not 0 <= threshold < 1:
        raise DiffclassError(f"--threshold must lie in [0, 1), got {threshold}")
    network = backbone.denoiser
    if not hasattr(network, "conv_out"):
        raise DiffclassError("structural pruning supports diffusers UNets (the network has no conv_out)")
    x0 = backbone.encode(images)
    cond = backbone.condition(labels.tolist())
    example = (x0[:1], torch.zeros(1, dtype=torch.long, device=x0.device), cond[:1])
    macs_before, params_before = network_size(_OneCall(backbone), example)

    ignored = [network.conv_out]
    if protect_class_embedding and getattr(network, "class_embedding", None) is not None:
        ignored.append(network.class_embedding)
    pruner = tp.pruner.BasePruner(
        network,
        example,
        importance=entry.build(),
        pruning_ratio=ratio,
        ignored_layers=ignored,
        num_heads=_attention_heads(network),
    )

    used, cutoff = [], None
    if entry.extra.get("gradients"):
        gen = torch.Generator().manual_seed(seed)
        noise = torch.randn(x0.shape, generator=gen).to(x0.device)
        alphas = backbone.alphas_cumprod.to(torch.float32)
        num_train = len(alphas)
        walk = sorted({round(float(t)) for t in torch.linspace(0, num_train - 1, calibration_steps)})

        def loss_at(t: int) -> torch.Tensor:
            x_t = q_sample(x0, noise, alphas[t].expand(len(x0)))
            steps = torch.full((len(x0),), t, dtype=torch.long, device=x0.device)
            return F.mse_loss(backbone.predict_noise(x_t, steps, cond), noise)

        network.zero_grad(set_to_none=True)
        with torch.enable_grad():
            used, cutoff = accumulate_informative_gradients(
                loss_at, walk, threshold if entry.extra.get("informative") else 0.0
            )
        where = f"stopped at t={cutoff}" if cutoff is not None else "every step informative"
        logger.info(f"{method}: gradients from {len(used)} timesteps ({where})")

    with torch.random.fork_rng(devices=[]):  # `random` draws from torch's global generator: seed it, same cut
        torch.manual_seed(seed)
        pruner.step()
    network.zero_grad(set_to_none=True)
    _fix_resamplers(network)
    macs_after, params_after = network_size(_OneCall(backbone), example)
    return PruneReport(
        method=method,
        ratio=ratio,
        threshold=threshold if entry.extra.get("informative") else None,
        params_before=params_before,
        params_after=params_after,
        macs_before=macs_before,
        macs_after=macs_after,
        timesteps_used=used,
        cutoff_timestep=cutoff,
    )
