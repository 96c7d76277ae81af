"""The small NumPy deep-learning kit the course notes describe.

Activations, losses, initializers, input normalization, a hand-written MLP, its
training loop and its gradient check, one module each.
"""

from typing import TYPE_CHECKING

from gradprobe._lazy import lazy_exports

if TYPE_CHECKING:
    from gradprobe.nn import initializers
    from gradprobe.nn.activations import ACTIVATIONS, Activation, get_activation
    from gradprobe.nn.initializers import auto_initializer
    from gradprobe.nn.losses import OUTPUTS, OutputLoss, get_output
    from gradprobe.nn.mlp import MLP, Cache
    from gradprobe.nn.normalization import InputNormalizer, Normalizer
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

# Each name is imported when first read (PEP 562; see gradprobe._lazy).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Activation": "gradprobe.nn.activations",
        "ACTIVATIONS": "gradprobe.nn.activations",
        "Adam": "gradprobe.nn.train",
        "auto_initializer": "gradprobe.nn.initializers",
        "Cache": "gradprobe.nn.mlp",
        "fit": "gradprobe.nn.train",
        "get_activation": "gradprobe.nn.activations",
        "get_output": "gradprobe.nn.losses",
        "GradientDescent": "gradprobe.nn.train",
        "History": "gradprobe.nn.train",
        "initializers": "gradprobe.nn.initializers:",
        "InputNormalizer": "gradprobe.nn.normalization",
        "MLP": "gradprobe.nn.mlp",
        "Momentum": "gradprobe.nn.train",
        "Normalizer": "gradprobe.nn.normalization",
        "Optimizer": "gradprobe.nn.train",
        "OutputLoss": "gradprobe.nn.losses",
        "OUTPUTS": "gradprobe.nn.losses",
    },
)
