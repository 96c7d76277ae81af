"""gradprobe: make deep networks trainable and correct.

Gradient checking that says *which* gradient is wrong, numerical derivatives
with their errors, signal propagation through depth, initialization and input
normalization, for hand-written NumPy backprop and for PyTorch code.
"""

from gradprobe import datasets
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
from gradprobe.gradcheck import (
    Entry,
    GradCheckReport,
    ParameterResult,
    assert_gradients,
    check_gradients,
)
from gradprobe.nn import initializers as init
from gradprobe.nn.check import check_model
from gradprobe.nn.mlp import MLP
from gradprobe.nn.normalization import Normalizer
from gradprobe.numdiff import Derivative, derivative, numerical_gradient
from gradprobe.propagation import deep_linear, depth_sweep, propagation
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
