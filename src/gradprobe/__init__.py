"""gradprobe: make deep networks trainable and correct.

Gradient checking that says *which* gradient is wrong, numerical derivatives
with their errors, signal propagation through depth, initialization and input
normalization, for hand-written NumPy backprop and for PyTorch code.
"""

from gradprobe import datasets
from gradprobe.depth import depth_sweep
from gradprobe.errors import (
    GradientCheckError,
    GradprobeError,
    InvalidArgumentError,
    InvalidTypeError,
    LossEvaluationError,
    NondeterministicLossError,
    NonFiniteError,
    NotFittedError,
    ShapeMismatchError,
)
from gradprobe.gradcheck import assert_gradients, check_gradients
from gradprobe.gradreport import Entry, GradCheckReport, ParameterResult
from gradprobe.linear_network import deep_linear
from gradprobe.nn import initializers as init
from gradprobe.nn.check import check_model
from gradprobe.nn.mlp import MLP
from gradprobe.nn.normalization import Normalizer
from gradprobe.numdiff import Derivative, derivative, numerical_gradient
from gradprobe.propagation import propagation
from gradprobe.scale import recommend_scale

__version__ = "0.1.0"

__all__ = [
    "Derivative",
    "Entry",
    "GradCheckReport",
    "GradientCheckError",
    "GradprobeError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "LossEvaluationError",
    "MLP",
    "NonFiniteError",
    "NondeterministicLossError",
    "Normalizer",
    "NotFittedError",
    "ParameterResult",
    "ShapeMismatchError",
    "__version__",
    "assert_gradients",
    "check_gradients",
    "check_model",
    "datasets",
    "deep_linear",
    "depth_sweep",
    "derivative",
    "init",
    "numerical_gradient",
    "propagation",
    "recommend_scale",
]
