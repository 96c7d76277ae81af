"""The difference rules: formulas, steps, and how one value of the user's function is read.

Shared by :mod:`gradprobe.numdiff.derivative` (derivatives of a scalar function) and
:mod:`gradprobe.numdiff.perturbation` (differences of a loss along coordinates of θ). Every
step is taken as the difference of the two arguments actually evaluated, so the
rounding of ``θ + ε`` does not bias a quotient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from gradprobe._validate import check_choice, check_eps, unless_interrupt
from gradprobe._validate import loss_value as as_scalar
from gradprobe.errors import LossEvaluationError

__all__ = [
    "METHODS",
    "as_scalar",
    "check_eps",
    "check_method",
    "complex_step",
    "default_step",
    "one_difference",
    "richardson",
]

Method = Literal["forward", "backward", "central", "complex", "richardson"]
METHODS: tuple[str, ...] = ("forward", "backward", "central", "complex", "richardson")

# Richardson extrapolation: central differences at h / 2**k, k = 0..3.
_RICHARDSON_LEVELS = 4


def default_step(method: str, x: float | NDArray[np.floating[Any]], dtype: Any = np.float64) -> Any:
    """Return the step a method uses when ``eps`` is not given.

    Parameters
    ----------
    method : {"forward", "backward", "central", "complex", "richardson"}
        The difference formula.
    x : float or ndarray
        The point(s) of differentiation; the step grows with ``max(1, |x|)``.
    dtype : dtype, default=float64
        The precision the function is computed in.

    Returns
    -------
    float or ndarray
        ``√u·max(1, |x|)`` for one-sided, ``∛u·max(1, |x|)`` for central,
        ``u^(1/9)·max(1, |x|)`` for Richardson (its error is O(ε⁸)) and
        ``1e-20·max(1, |x|)`` for the complex step, with ``u`` the machine epsilon.

    Examples
    --------
    >>> float(default_step("central", 1.0))  # ∛(2.2e-16)
    6.05545445239334e-06
    """
    check_method(method)
    unit = float(np.finfo(dtype).eps)
    exponent = {"forward": 1 / 2, "backward": 1 / 2, "central": 1 / 3, "richardson": 1 / 9}
    base = 1e-20 if method == "complex" else unit ** exponent[method]
    return base * np.maximum(1.0, np.abs(x))


def check_method(method: object) -> None:
    """Raise unless ``method`` is one of :data:`METHODS`."""
    check_choice(method, "method", METHODS)


def richardson(f: Callable[[float], float], x: float, h: float) -> tuple[float, float, int]:
    """Extrapolate central differences at h, h/2, h/4, h/8; return value, error, evaluations.

    The error estimate is the larger of the last extrapolation's change (truncation)
    and the rounding of the finest difference, amplified by the extrapolation weights.
    """
    table = []
    magnitude = 0.0
    for k in range(_RICHARDSON_LEVELS):
        upper, lower = x + h / 2**k, x - h / 2**k
        above, below = f(upper), f(lower)
        magnitude = max(magnitude, abs(above), abs(below))
        table.append((above - below) / (upper - lower))
    previous = table[-1]
    for order in range(1, _RICHARDSON_LEVELS):
        factor = 4.0**order
        previous = table[-1]
        pairs = zip(table[:-1], table[1:], strict=True)
        table = [(factor * fine - coarse) / (factor - 1) for coarse, fine in pairs]
    finest = h / 2 ** (_RICHARDSON_LEVELS - 1)
    rounding = 4 * np.finfo(np.float64).eps * magnitude / finest
    return table[0], max(abs(table[0] - previous), rounding), 2 * _RICHARDSON_LEVELS


def one_difference(f: Callable[[float], float], x: float, h: float, method: str) -> float:
    """Return the forward, backward or central difference quotient of ``f`` at ``x``."""
    if method == "forward":
        upper = x + h
        return (f(upper) - f(x)) / (upper - x)
    if method == "backward":
        lower = x - h
        return (f(x) - f(lower)) / (x - lower)
    upper, lower = x + h, x - h
    return (f(upper) - f(lower)) / (upper - lower)


def complex_step(function: Callable[[Any], Any], x: float, h: float) -> float:
    """Return ``Im f(x + ih) / h``, or explain why ``f`` cannot take the complex step."""
    try:
        value = function(complex(x, h))
    except BaseException as error:  # noqa: BLE001 - any failure means complex input is unsupported
        raise LossEvaluationError(
            "method='complex' needs a function written with operations that accept complex "
            f"numbers (it raised {type(error).__name__}: {error}); use method='central' or "
            "'richardson' instead"
        ) from unless_interrupt(error)
    if np.ndim(value) != 0:
        raise LossEvaluationError(
            f"the function returned an array of shape {np.shape(value)}, expected a scalar"
        )
    if not np.iscomplexobj(value) or not np.isfinite(value):
        raise LossEvaluationError(
            "method='complex' needs a function that keeps the imaginary part (it returned "
            f"{value.item() if hasattr(value, 'item') else value}; abs, comparisons and "
            "float() drop it); use method='central' instead"
        )
    return float(np.imag(value)) / h
