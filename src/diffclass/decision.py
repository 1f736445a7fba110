"""What every classifier returns for one image, whatever model or strategy made it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Decision:
    """One image's verdict. `probabilities` is softmax(-score / temperature) over the classes that were scored
    (classes a strategy never scored get 0); `nfe` counts (condition, timestep) evaluations for this image."""

    label: int
    class_name: str
    ranking: list[int]
    scores: dict[int, float]
    probabilities: dict[int, float]
    nfe: int
    seconds: float
    trace: list[dict] = field(default_factory=list)
    macs: int | None = None  # multiply-accumulates spent, where calls of different networks were mixed (prefilter)
    unfamiliar: float | None = None  # the winner's error over its typical one, where over 1: unlike the training data

    def top(self, k: int = 5) -> list[tuple[int, float]]:
        return [(c, self.probabilities.get(c, 0.0)) for c in self.ranking[:k]]
