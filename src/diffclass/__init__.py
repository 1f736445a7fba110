"""diffclass: classify images with diffusion models, and make it fast.

import diffclass
clf = diffclass.load("digits")          # or "glyphs", "didicm-glyphs", a folder, "sd:...", "dit:..."
decisions = clf.classify(["my_digit.png"])

Names are imported on first use, so `import diffclass` (and the CLI's help) stays instant.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load": "diffclass.loading",
    "zero_shot_options": "diffclass.loading",
    "Classifier": "diffclass.classifier",
    "DiDiCMClassifier": "diffclass.didicm.classifier",
    "Decision": "diffclass.decision",
    "DiffclassError": "diffclass.errors",
    "ErrorScorer": "diffclass.scoring",
    "TimestepGrid": "diffclass.timesteps",
    "Strategy": "diffclass.strategies",
    "STRATEGIES": "diffclass.strategies",
    "make_strategy": "diffclass.strategies",
    "EvalSummary": "diffclass.evaluation",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'diffclass' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = sorted(_EXPORTS)
