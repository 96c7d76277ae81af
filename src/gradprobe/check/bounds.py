"""Error bounds of numerical derivatives, and the verdict of one entry against its bound.

A numerical derivative differs from the true one by rounding (the loss's noise σ over
the step) and truncation (the step's own error). :func:`first_bounds` bounds the
rounding of the first differences from the measured noise (see
:mod:`gradprobe.numdiff.noise`); truncation is bounded later, from a second step, on
the entries that need it (:mod:`gradprobe.check.escalate`). :func:`judge` then
decides each entry:

* **ok** when it agrees with the numerical value to the user's first threshold (the
  notes' "great", 1e-6 by default) or to within its bound;
* **wrong** (or **suspicious**, by the notes' bands of its relative error) only when
  its error exceeds :data:`CLEAR` times its bound;
* otherwise not yet clear: it is re-checked, and **inconclusive** if it stays so.

Every bound here is :data:`DEVIATIONS` standard deviations of the measured noise plus
:data:`TRUNCATION_SAFETY` times the measured truncation estimate.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gradprobe.numdiff.noise import DEVIATIONS, TRUNCATION_SAFETY, complex_bound, value_noise
from gradprobe.numdiff.perturbation import Differences
from gradprobe.numdiff.rules import richardson_weights

__all__ = [
    "CLEAR",
    "DEVIATIONS",
    "FAR",
    "INCONCLUSIVE",
    "OK",
    "SUSPICIOUS",
    "TRUNCATION_SAFETY",
    "UNCLEAR",
    "VERDICTS",
    "WRONG",
    "complex_bound",
    "first_bounds",
    "judge",
    "value_noise",
]

VERDICTS = ("ok", "inconclusive", "suspicious", "wrong")
"""Verdicts from best to worst; a report's verdict is never better than its worst row's."""
OK, INCONCLUSIVE, SUSPICIOUS, WRONG = range(4)
UNCLEAR = -1
"""An entry not decided yet (re-checked, then inconclusive if it stays so)."""

CLEAR = 3.0
"""An entry is wrong only when its error exceeds its bound this many times."""
FAR = 100.0
"""An entry this many times beyond its first step's whole allowance is wrong at once."""


def first_bounds(
    differences: Differences,
    original: NDArray[np.float64],
    analytic: NDArray[np.float64],
    sigma: float,
    unit: float,
    method: str,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Bound the error of the first numerical values, and how far beyond it is far enough.

    Parameters
    ----------
    differences : Differences
        The first numerical derivatives, with their raw loss values.
    original : ndarray of float64, shape (k,)
        The differentiated coordinates' values at θ.
    analytic : ndarray of float64, shape (k,)
        The analytic derivatives (the complex step's bound scales with them).
    sigma, unit : float
        The measured noise of one loss value and the loss's machine epsilon.
    method : str
        The difference formula used.

    Returns
    -------
    bound : ndarray of float64, shape (k,)
        For central and one-sided differences, the rounding alone (their truncation is
        measured only where needed); for Richardson, rounding and the last
        extrapolation's change; for the complex step, :func:`complex_bound`.
    reach : ndarray of float64, shape (k,)
        An error beyond :data:`FAR` times this is wrong without a second look (``inf``
        where every unclear entry must be looked at again).
    """
    numerical = differences.gradient
    if method == "complex":
        scale = float(np.max(np.abs(analytic), initial=0.0))
        bound = complex_bound(numerical, analytic, sigma, unit, scale)
        return bound, bound
    assert differences.above is not None and differences.below is not None
    assert differences.upper is not None and differences.lower is not None
    center = differences.center
    noise = value_noise(sigma, unit, center, differences.above[:, 0], differences.below[:, 0])
    if method == "richardson":
        widths = differences.upper - differences.lower
        spread = np.sqrt(2 * np.sum((richardson_weights() / widths) ** 2, axis=1))
        assert differences.change is not None
        bound = TRUNCATION_SAFETY * differences.change + DEVIATIONS * noise * spread
        return bound, bound
    if method == "central":
        width = differences.upper[:, 0] - differences.lower[:, 0]
        bound = DEVIATIONS * noise * np.sqrt(2) / width
        assert differences.forward is not None and differences.backward is not None
        # A kink or a curvature shows in the one-sided slopes: far means beyond both.
        return bound, bound + np.abs(differences.forward - differences.backward)
    if method == "forward":
        width = differences.upper[:, 0] - original
    else:
        width = original - differences.lower[:, 0]
    return DEVIATIONS * noise * np.sqrt(2) / width, np.full(len(numerical), np.inf)


def judge(
    analytic: NDArray[np.float64],
    numerical: NDArray[np.float64],
    bound: NDArray[np.float64],
    thresholds: tuple[float, float],
) -> tuple[NDArray[np.int8], NDArray[np.float64]]:
    """Decide each entry against its bound.

    Parameters
    ----------
    analytic, numerical : ndarray of float64, shape (k,)
        The analytic derivatives and the numerical estimates.
    bound : ndarray of float64, shape (k,)
        A bound of each estimate's error.
    thresholds : tuple of float
        The notes' bands: below the first, an entry agrees whatever its bound; an
        entry beyond :data:`CLEAR` bounds is suspicious below the second, else wrong.

    Returns
    -------
    codes : ndarray of int8, shape (k,)
        :data:`OK`, :data:`SUSPICIOUS`, :data:`WRONG` or :data:`UNCLEAR`.
    significance : ndarray of float64, shape (k,)
        ``|analytic − numerical| / bound`` (0 where they agree exactly).

    Examples
    --------
    >>> import numpy as np
    >>> codes, _ = judge(np.array([1.0, 1.0, 1.0]), np.array([1.0, 1.1, 1.002]),
    ...                  np.array([1e-3, 1e-3, 1e-3]), (1e-6, 1e-4))
    >>> [int(c) for c in codes]  # ok, wrong (100 bounds away), not clear (2 bounds)
    [0, 3, -1]
    """
    error = np.abs(analytic - numerical)
    relative = error / (np.abs(analytic) + np.abs(numerical) + np.finfo(float).tiny)
    significance = np.divide(error, bound, out=np.where(error > 0, np.inf, 0.0), where=bound > 0)
    band = np.where(relative < thresholds[1], SUSPICIOUS, WRONG)
    codes = np.where(significance > CLEAR, band, UNCLEAR)
    codes = np.where((relative < thresholds[0]) | (significance <= 1.0), OK, codes)
    # NaN (a non-finite estimate) is never ok.
    codes = np.where(np.isnan(error), UNCLEAR, codes)
    return codes.astype(np.int8), significance
