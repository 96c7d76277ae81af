"""gradprobe: make deep networks trainable and correct.

Gradient checking that says *which* gradient is wrong, numerical derivatives
with their errors, signal propagation through depth, initialization and input
normalization, for hand-written NumPy backprop and for PyTorch code.
"""

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
from gradprobe.numdiff import Derivative, derivative, numerical_gradient

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
    "NonFiniteError",
    "NondeterministicLossError",
    "NotFittedError",
    "ParameterResult",
    "ShapeMismatchError",
    "__version__",
    "assert_gradients",
    "check_gradients",
    "derivative",
    "numerical_gradient",
]
