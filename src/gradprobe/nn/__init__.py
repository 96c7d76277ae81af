"""The small NumPy deep-learning kit the course notes describe.

Activations, losses, initializers, input normalization, a hand-written MLP, its
training loop and its gradient check, one module each.
"""

from typing import Any

from gradprobe.nn import initializers
from gradprobe.nn.activations import ACTIVATIONS, Activation, get_activation
from gradprobe.nn.initializers import auto_initializer
from gradprobe.nn.losses import OUTPUTS, OutputLoss, get_output
from gradprobe.nn.mlp import MLP, Cache
from gradprobe.nn.train import Adam, GradientDescent, History, Momentum, Optimizer, fit

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "OUTPUTS",
    "Activation",
    "Adam",
    "Cache",
    "GradientDescent",
    "History",
    "Momentum",
    "InputNormalizer",
    "Normalizer",
    "Optimizer",
    "OutputLoss",
    "auto_initializer",
    "fit",
    "get_activation",
    "get_output",
    "initializers",
]


def __getattr__(name: str) -> Any:
    # The scikit-learn estimator is built on first use: scikit-learn is slow to import.
    if name in ("InputNormalizer", "Normalizer"):
        from gradprobe.nn import normalization

        return getattr(normalization, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
