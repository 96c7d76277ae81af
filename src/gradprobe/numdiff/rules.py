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
    "richardson_weights",
    "RICHARDSON_LEVELS",
]

Method = Literal["forward", "backward", "central", "complex", "richardson"]
METHODS: tuple[str, ...] = ("forward", "backward", "central", "complex", "richardson")

RICHARDSON_LEVELS = 4
"""Richardson extrapolation combines central differences at h / 2**k, k = 0..3."""


def default_step(method: str, x: float | NDArray[np.floating[Any]], dtype: Any = np.float64) -> Any:
    """Return the step a method uses when ``eps`` is not given.

    The step balances truncation against rounding for a function whose values carry
    a relative error ``u``, the machine epsilon of ``dtype`` (Gill, Murray, Saunders &
    Wright 1983); a gradient check re-checks, at steps chosen from the loss's measured
    noise, the entries this step leaves unclear.

    Parameters
    ----------
    method : {"forward", "backward", "central", "complex", "richardson"}
        The difference formula.
    x : float or ndarray
        The point(s) of differentiation.
    dtype : dtype, default=float64
        The precision the function is computed in.

    Returns
    -------
    float or ndarray
        ``√u·max(1, |x|)`` for one-sided, ``∛u·max(1, |x|)`` for central and
        ``1e-20·max(1, |x|)`` for the complex step; for Richardson (error O(ε⁸))
        ``u^(1/9)·max(|x|, u^(2/9))``, which scales with ``|x|`` below 1 too, so that
        ``x ± ε`` keeps the sign of ``x`` and stays in a domain such as ``x > 0``.

    Examples
    --------
    >>> float(default_step("central", 1.0))  # ∛(2.2e-16)
    6.05545445239334e-06
    >>> float(default_step("richardson", 1e-3)) < 1e-3
    True
    """
    check_method(method)
    unit = float(np.finfo(dtype).eps)
    if method == "complex":
        return 1e-20 * np.maximum(1.0, np.abs(x))
    if method == "richardson":
        return unit ** (1 / 9) * np.maximum(np.abs(x), unit ** (2 / 9))
    exponent = 1 / 3 if method == "central" else 1 / 2
    return unit**exponent * np.maximum(1.0, np.abs(x))


def check_method(method: object) -> None:
    """Raise unless ``method`` is one of :data:`METHODS`."""
    check_choice(method, "method", METHODS)


def richardson(
    differences: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Extrapolate central differences at h, h/2, h/4, h/8 so the ε², ε⁴, ε⁶ terms cancel.

    Parameters
    ----------
    differences : ndarray of float64, shape (k, RICHARDSON_LEVELS)
        Row ``r``: the central differences of coordinate ``r`` at the four steps.

    Returns
    -------
    value : ndarray of float64, shape (k,)
        The extrapolated derivatives.
    change : ndarray of float64, shape (k,)
        The larger of the last two extrapolations' changes along the finest steps,
        ``|R₃ − R₂|`` and ``|R₂ − R₁|``: estimates of the errors of the lower orders, so a
        bound of the truncation error left in ``value`` even where the steps are too
        large for the error terms to fall off as they should.
    """
    table = [differences[:, level] for level in range(RICHARDSON_LEVELS)]
    finest = [table[-1]]
    for order in range(1, RICHARDSON_LEVELS):
        factor = 4.0**order
        pairs = zip(table[:-1], table[1:], strict=True)
        table = [(factor * fine - coarse) / (factor - 1) for coarse, fine in pairs]
        finest.append(table[-1])
    change = np.maximum(np.abs(finest[-1] - finest[-2]), np.abs(finest[-2] - finest[-3]))
    return table[0], change


def richardson_weights() -> NDArray[np.float64]:
    """Return ``w`` with Richardson's value ``Σ_k w_k·D(h/2^k)``, shape ``(RICHARDSON_LEVELS,)``.

    Examples
    --------
    >>> round(float(richardson_weights().sum()), 12)  # the derivative of a line is kept
    1.0
    """
    return richardson(np.eye(RICHARDSON_LEVELS))[0]


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


def complex_step(function: Callable[[Any], Any], x: float, h: float) -> tuple[float, float]:
    """Return ``Im f(x + ih) / h`` and ``|Re f(x + ih)|``, or explain why ``f`` cannot take it.

    The real part is ``f(x)`` to rounding; it sets the scale of the rounding error.
    """
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
    return float(np.imag(value)) / h, abs(float(np.real(value)))
