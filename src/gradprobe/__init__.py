"""gradprobe: make deep networks trainable and correct.

Gradient checking that says *which* gradient is wrong, numerical derivatives
with their errors, signal propagation through depth, initialization and input
normalization, for hand-written NumPy backprop and for PyTorch code.

This module is the public API: every name in ``__all__`` is re-exported from the
package that implements it (``numdiff``, ``check``, ``signals``, ``nn``); the
framework adapters are the subpackages ``gradprobe.torch`` and ``gradprobe.jax``.
"""

from typing import TYPE_CHECKING


def _interrupt_quietly_in_the_command_line() -> None:
    """Make a Ctrl-C while ``gradprobe ...`` loads its libraries one line and exit 130.

    Commands already answer Ctrl-C so; this covers the first second, before any
    command runs, in ``gradprobe ...`` and ``python -m gradprobe`` only: an ``import
    gradprobe`` in a program keeps Python's own behaviour.
    """
    import os
    import sys

    command = os.path.basename(sys.argv[0]) if sys.argv else ""
    flags = list(getattr(sys, "orig_argv", []))
    as_module = "-m" in flags and flags[flags.index("-m") + 1 :][:1] == ["gradprobe"]
    if command not in ("gradprobe", "gradprobe.exe") and not as_module:
        return
    previous = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, trace: object) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.stdout.flush()
            sys.stderr.write("gradprobe: interrupted\n")
            sys.stderr.flush()
            os._exit(130)
        previous(kind, error, trace)  # type: ignore[arg-type]

    sys.excepthook = hook


_interrupt_quietly_in_the_command_line()

from gradprobe._lazy import lazy_exports
from gradprobe._version import __version__
from gradprobe.errors import (
    GradprobeError,
    InvalidArgumentError,
    InvalidTypeError,
    LossEvaluationError,
    NondeterministicLossError,
    NonFiniteError,
    NotFittedError,
    ShapeMismatchError,
)

if TYPE_CHECKING:
    from gradprobe.check.checker import GradientCheckError, assert_gradients, check_gradients
    from gradprobe.check.entries import Entry, GroupTest, ParameterResult
    from gradprobe.check.report import GradCheckReport
    from gradprobe.nn import datasets
    from gradprobe.nn import initializers as init
    from gradprobe.nn.check import check_model
    from gradprobe.nn.mlp import MLP
    from gradprobe.nn.normalization import InputNormalizer, Normalizer
    from gradprobe.nn.probe import propagation
    from gradprobe.nn.scale import ScaleRecommendation, recommend_scale
    from gradprobe.nn.sweep import depth_sweep
    from gradprobe.nn.train import History
    from gradprobe.numdiff.derivative import Derivative, derivative, numerical_gradient
    from gradprobe.signals.deep_linear import DeepLinearResult, deep_linear
    from gradprobe.signals.propagation import LayerStatistics, PropagationReport
    from gradprobe.signals.sweep import DepthSweep

__all__ = [
    "MLP",
    "DeepLinearResult",
    "DepthSweep",
    "Derivative",
    "Entry",
    "GradCheckReport",
    "GradientCheckError",
    "GradprobeError",
    "GroupTest",
    "History",
    "InputNormalizer",
    "InvalidArgumentError",
    "InvalidTypeError",
    "LayerStatistics",
    "LossEvaluationError",
    "NonFiniteError",
    "NondeterministicLossError",
    "Normalizer",
    "NotFittedError",
    "ParameterResult",
    "PropagationReport",
    "ScaleRecommendation",
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

# Every name is imported when first read (PEP 562), so that `import gradprobe` and
# `gradprobe --help` do not pay for NumPy, SciPy, scikit-learn or the engine up front.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "assert_gradients": "gradprobe.check.checker",
        "check_gradients": "gradprobe.check.checker",
        "check_model": "gradprobe.nn.check",
        "datasets": "gradprobe.nn.datasets:",
        "deep_linear": "gradprobe.signals.deep_linear",
        "DeepLinearResult": "gradprobe.signals.deep_linear",
        "depth_sweep": "gradprobe.nn.sweep",
        "DepthSweep": "gradprobe.signals.sweep",
        "Derivative": "gradprobe.numdiff.derivative",
        "derivative": "gradprobe.numdiff.derivative",
        "Entry": "gradprobe.check.entries",
        "GradCheckReport": "gradprobe.check.report",
        "GradientCheckError": "gradprobe.check.checker",
        "GroupTest": "gradprobe.check.entries",
        "History": "gradprobe.nn.train",
        "init": "gradprobe.nn.initializers:",
        "InputNormalizer": "gradprobe.nn.normalization",
        "LayerStatistics": "gradprobe.signals.propagation",
        "MLP": "gradprobe.nn.mlp",
        "Normalizer": "gradprobe.nn.normalization",
        "numerical_gradient": "gradprobe.numdiff.derivative",
        "ParameterResult": "gradprobe.check.entries",
        "propagation": "gradprobe.nn.probe",
        "PropagationReport": "gradprobe.signals.propagation",
        "recommend_scale": "gradprobe.nn.scale",
        "ScaleRecommendation": "gradprobe.nn.scale",
    },
)
