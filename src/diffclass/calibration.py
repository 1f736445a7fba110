"""Where the class information lies along the timesteps, measured on training images, so strategies can spend
their network calls there (single-timestep accuracy peaks well before the noisy end)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from diffclass.classifier import Classifier
from diffclass.data.base import ImageDataset
from diffclass.errors import DiffclassError
from diffclass.replay import ErrorTable
from diffclass.timesteps import TimestepGrid
from diffclass.weighting import TimestepWeighting, fit_weights


@dataclass
class Calibration:
    timesteps: list[int]  # sorted
    single_top1: list[float]  # accuracy of each timestep alone
    windows: list[tuple[int, int, float]]  # (first t, last t, accuracy of the window's mean error)
    best_window: tuple[int, int]
    full_range_top1: float  # every timestep of the grid together

    def to_json(self) -> dict:
        return dict(
            timesteps=self.timesteps,
            single_top1=[round(a, 4) for a in self.single_top1],
            windows=[[a, b, round(acc, 4)] for a, b, acc in self.windows],
            best_window=list(self.best_window),
            full_range_top1=round(self.full_range_top1, 4),
        )


def calibrate(
    classifier: Classifier, data: ImageDataset, grid_size: int = 32, window: int = 8, show_progress: bool = True
) -> Calibration:
    """Accuracy of every single timestep and of every window of `window` consecutive ones; the best window wins
    (ties go to the cleaner window)."""
    if window > grid_size:
        raise DiffclassError(f"--window {window} is wider than the --grid-size {grid_size} it slides over")
    grid = TimestepGrid(0, len(classifier.backbone.alphas_cumprod) - 1, grid_size)
    errors = ErrorTable.compute(classifier, data, grid=grid, nodes=False, progress=show_progress).errors.double()
    order = sorted(range(grid.size), key=lambda j: grid.timesteps[j])
    errors = errors[:, :, order]
    timesteps = [grid.timesteps[j] for j in order]
    labels = data.labels

    def top1(e: torch.Tensor) -> float:
        return (e.argmin(dim=1) == labels).float().mean().item()

    single = [top1(errors[:, :, j]) for j in range(grid.size)]
    windows = [
        (timesteps[a], timesteps[a + window - 1], top1(errors[:, :, a : a + window].mean(dim=2)))
        for a in range(grid.size - window + 1)
    ]
    best = max(windows, key=lambda w: (w[2], -w[0]))
    return Calibration(timesteps, single, windows, (best[0], best[1]), top1(errors.mean(dim=2)))


def learn_weights(
    classifier: Classifier,
    data: ImageDataset,
    grid: TimestepGrid | None = None,
    slots: int = 32,
    bins: int = 8,
    show_progress: bool = True,
) -> TimestepWeighting:
    """Learned timestep weights for `grid` (default: the classifier's) from the unweighted errors of every class on
    its first `slots` slots of labelled training images (see `diffclass.weighting`)."""
    grid = grid or classifier.scorer.grid
    slots = min(slots, grid.size)
    table = ErrorTable.compute(classifier, data, slots=slots, grid=grid, nodes=False, progress=show_progress)
    timesteps = [grid.timestep(s) for s in range(slots)]
    applied = classifier.scorer.with_grid(grid).weights  # the scorer's own weighting, undone: fit on raw errors
    raw = table.errors.double() / torch.tensor([applied[t] for t in timesteps], dtype=torch.float64)
    return fit_weights(raw.numpy(), data.labels.numpy(), timesteps, bins, span=(grid.t_min, grid.t_max))


def calibration_plot(calibration: Calibration, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(calibration.timesteps, [100 * a for a in calibration.single_top1], "o-", label="one timestep")
    centres = [(a + b) / 2 for a, b, _ in calibration.windows]
    ax.plot(centres, [100 * acc for _, _, acc in calibration.windows], "s-", label="window (centre)")
    lo, hi = calibration.best_window
    ax.axvspan(lo, hi, alpha=0.15, color="green", label=f"chosen window [{lo}, {hi}]")
    ax.set_xlabel("timestep t")
    ax.set_ylabel("top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
