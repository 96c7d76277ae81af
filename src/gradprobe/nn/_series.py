"""Accurate small-argument series for the output losses of the structure-aware check.

A perturbed weight moves the logits by tiny amounts; the loss change is then best
computed from ``expm1``/``log1p`` around the cached logits, and, where the logits move
along one direction, as a short power series whose coefficients are tabulated once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "expm1_small",
    "horner",
    "log1p_small",
    "log_moment_degree",
    "log_moment_series",
    "logsumexp",
]

Array = NDArray[np.float64]


def logsumexp(z: Array) -> Array:
    top = z.max(axis=-1, keepdims=True)
    result: Array = top + np.log(np.exp(z - top).sum(axis=-1, keepdims=True))
    return result


def horner(x: Array, coefficients: Any) -> Array:
    """Return ``Σ_n c_n·xⁿ`` for ``n = 1..d``, with ``c_n = coefficients[n - 1]``.

    ``coefficients`` has ``d`` rows: scalars, or arrays that broadcast with ``x``.
    """
    out: Array = x * coefficients[-1]
    for n in range(len(coefficients) - 2, -1, -1):
        out += coefficients[n]
        out *= x
    return out


_EXPM1_TAYLOR = np.array([1.0 / math.factorial(n) for n in range(1, 6)])
_LOG1P_TAYLOR = np.array([(-1.0) ** (n + 1) / n for n in range(1, 7)])


def expm1_small(x: Array, peak: float) -> Array:
    """``exp(x) − 1`` to full precision, given ``peak ≥ max |x|``.

    Up to 1e-3 its degree-5 Taylor polynomial (the next term, ``x⁶/720``, is under
    2e-18 of ``x``) is about three times faster than ``np.expm1``.
    """
    if peak > 1e-3:
        exact: Array = np.expm1(x)
        return exact
    return horner(x, _EXPM1_TAYLOR)


def log1p_small(x: Array, peak: float) -> Array:
    """``log(1 + x)`` to full precision, given ``peak ≥ max |x|``.

    Up to 1.1e-3 its degree-6 Taylor polynomial (the next term, ``x⁷/7``, is under
    3e-19 of ``x``).
    """
    if peak > 1.1e-3:
        exact: Array = np.log1p(x)
        return exact
    return horner(x, _LOG1P_TAYLOR)


def log_moment_series(jacobian: Array, weights: Array, degree: int) -> list[Array]:
    """Taylor coefficients of ``a ↦ log Σ_c w_c·exp(a·j_c)`` for rows ``Σ_c w_c = 1``.

    Parameters
    ----------
    jacobian : ndarray of shape (m or 1, n, c)
        ``j`` for each example and unit.
    weights : ndarray of shape (m, c)
        ``w`` for each example (softmax probabilities).
    degree : int
        The highest power of ``a``.

    Returns
    -------
    list of ndarray of shape (m, n)
        The coefficients of ``a¹ … a^degree``: the cumulants of ``j`` under ``w`` over
        ``n!``, from the moments by composing the series of ``expm1`` and ``log1p``.
    """
    moments: list[Array] = []
    power = jacobian
    for n in range(1, degree + 1):
        moments.append((power @ weights[:, :, np.newaxis])[..., 0] / math.factorial(n))
        power = power * jacobian
    # s(a) = Σ_n moments[n-1]·aⁿ; log1p(s) = Σ_r (−1)^(r+1) s^r / r, truncated at a^degree.
    zero = np.zeros_like(moments[0])
    result = [zero.copy() for _ in range(degree)]
    term = list(moments)  # coefficients of s^r, from a¹ up
    for r in range(1, degree + 1):
        for n in range(degree):
            result[n] += (-1.0) ** (r + 1) / r * term[n]
        term = [sum((term[p] * moments[n - p - 1] for p in range(n)), zero) for n in range(degree)]
    return result


def log_moment_degree(r: float, tolerance: float, most: int) -> int:
    """Return the least degree ``d ≤ most`` at which the log-moment series is within ``tolerance``.

    For rows with ``Σ_c w_c = 1``, ``|log Σ_c w_c·exp(a·j_c)| ≤ 3.2`` while
    ``|a|·max|j| ≤ 1``, so (Cauchy's estimate) truncating the series after ``aᵈ`` is
    off by less than ``3.2·r^(d+1)/(1 − r)`` with ``r = |a|·max|j|``; ``most`` when no
    smaller degree is within ``tolerance`` (or ``r ≥ 1``).

    Examples
    --------
    >>> log_moment_degree(1e-3, 4e-21, 6), log_moment_degree(1e-6, 4e-21, 6)
    (6, 3)
    """
    for degree in range(1, most):
        if 3.2 * r ** (degree + 1) <= tolerance * (1 - r):
            return degree
    return most
