"""diffclass: classify images with diffusion models, and make it fast.

import diffclass
clf = diffclass.load("digits")
decisions = clf.classify(["my_digit.png"], strategy="adaptive")
"""

from diffclass.classifier import Classifier, Decision
from diffclass.errors import DiffclassError
from diffclass.scoring import ErrorScorer, TimestepGrid
from diffclass.strategies import Strategy, make_strategy

__version__ = "0.1.0"


def load(name_or_path: str = "digits", device: str = "cpu", **options) -> Classifier:
    """Load a diffusion classifier: an embedded model's name or a saved model folder."""
    return Classifier.load(name_or_path, device=device, **options)


__all__ = [
    "Classifier",
    "Decision",
    "DiffclassError",
    "ErrorScorer",
    "Strategy",
    "TimestepGrid",
    "load",
    "make_strategy",
]
