"""The small NumPy deep-learning kit the course notes describe.

Activations, losses, initializers, input normalization, a hand-written MLP, its
training loop and its gradient check, one module each.
"""

from gradprobe.nn import initializers
from gradprobe.nn.activations import ACTIVATIONS, Activation, get_activation
from gradprobe.nn.initializers import auto_initializer
from gradprobe.nn.losses import OUTPUTS, OutputLoss, get_output
from gradprobe.nn.mlp import MLP, Cache
from gradprobe.nn.normalization import Normalizer
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
    "Normalizer",
    "Optimizer",
    "OutputLoss",
    "auto_initializer",
    "fit",
    "get_activation",
    "get_output",
    "initializers",
]
