"""The exceptions gradprobe raises.

Every error gradprobe raises on purpose is a :class:`GradprobeError`. Where a
built-in category fits, the class also derives from it (``ValueError`` for a
bad value, ``TypeError`` for a bad type), so ``except ValueError`` keeps
working in code that does not know gradprobe. Messages name the argument, say
what was received and what was expected, and where possible what to try.
Only the command-line interface turns these errors into exit codes.
"""

from __future__ import annotations

__all__ = [
    "GradprobeError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "ShapeMismatchError",
    "NonFiniteError",
    "LossEvaluationError",
    "NondeterministicLossError",
    "NotFittedError",
]


class GradprobeError(Exception):
    """Base class of every error gradprobe raises on purpose."""


class InvalidArgumentError(GradprobeError, ValueError):
    """An argument has an acceptable type but a value outside what is allowed."""


class InvalidTypeError(GradprobeError, TypeError):
    """An argument has a type gradprobe cannot work with."""


class ShapeMismatchError(InvalidArgumentError):
    """Two arrays that must line up (a parameter and its gradient, say) do not."""


class NonFiniteError(InvalidArgumentError):
    """An array or a loss value holds NaN or infinity where finite numbers are needed."""


class LossEvaluationError(GradprobeError, RuntimeError):
    """The user's loss function raised, or returned something that is not a finite scalar."""


class NondeterministicLossError(GradprobeError, RuntimeError):
    """The loss returns different values for the same parameters (dropout, an unseeded sampler).

    A gradient check compares differences of the loss of order ε² against the
    gradient; any randomness in the loss swamps them, so the check refuses to run.
    """


class NotFittedError(GradprobeError, ValueError):
    """An estimator was used before ``fit`` was called."""
