"""Read the pattern of a gradient error and say in plain words what is likely wrong.

The course notes' advice when a check fails is to "look at components to try identify
bug". For one parameter, with analytic values ``a`` and numerical values ``n``
over the same entries, the usual backprop mistakes leave recognisable traces:

========================  ==========================================
pattern                   likely bug
========================  ==========================================
``a == 0`` everywhere     parameter unused or detached in backprop
``n ≈ 0``, ``a ≠ 0``      gradient for something the loss never uses
``a ≈ −n``                sign flipped
``a ≈ c·n``               a constant factor (1/m, 2, λ) wrong
``n − a ≈ c·θ``           the L2 term's gradient missing or mis-scaled
``a ≈ nᵀ``                gradient transposed
one or a few entries      an indexing or in-place bug at those entries
========================  ==========================================

Each rule is tried in that order; the first that fits explains the error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["diagnose"]

# How closely a pattern must fit, relative to the size of what it explains.
_FIT = 1e-3
_FEW = 5


def _fits(
    residual: NDArray[np.float64], reference: NDArray[np.float64], allowance: float = 0.0
) -> bool:
    """Tell whether ``residual`` is small next to ``reference``, beyond what noise explains."""
    limit = _FIT * float(np.linalg.norm(reference)) + allowance
    return float(np.linalg.norm(residual)) <= limit


def _factor(a: NDArray[np.float64], n: NDArray[np.float64], noise: float) -> float | None:
    """Return c when ``a ≈ c·n`` to within 0.1 % (plus the noise in n), else None."""
    scale = float(n @ n)
    if scale == 0.0:
        return None
    c = float(a @ n) / scale
    return c if _fits(a - c * n, a, abs(c) * noise) else None


def diagnose(
    name: str,
    analytic: NDArray[np.float64],
    numerical: NDArray[np.float64],
    values: NDArray[np.float64],
    bad: NDArray[np.bool_],
    coordinate: Callable[[int], str],
    noise: NDArray[np.float64],
    square_shape: tuple[int, int] | None = None,
) -> str:
    """Explain in words how a parameter's analytic gradient differs from the numerical one.

    Parameters
    ----------
    name : str
        The parameter's name, such as ``"W2"``.
    analytic, numerical : ndarray of float64, shape (k,)
        The checked entries' analytic and numerical derivatives.
    values : ndarray of float64, shape (k,)
        The parameter's values at those entries (to recognise a missing L2 term).
    bad : ndarray of bool, shape (k,)
        Which entries disagree beyond the check's tolerance.
    coordinate : callable
        ``coordinate(j)`` names checked entry ``j``, such as ``"W2[1, 3]"``.
    noise : ndarray of float64, shape (k,)
        The rounding noise of each numerical entry.
    square_shape : tuple of int, optional
        The parameter's shape when it is a square matrix checked in full, so a
        transposed gradient can be recognised.

    Returns
    -------
    str
        One or two sentences; never empty.

    Examples
    --------
    >>> import numpy as np
    >>> n = np.array([1.0, -2.0, 0.5])
    >>> diagnose("W", 2 * n, n, n, np.ones(3, bool), str, np.zeros(3))[:30]
    'analytic ≈ 2.000 × numerical i'
    """
    if not np.any(analytic):
        return (
            f"the analytic gradient of {name} is all zero but the loss does depend on it: "
            "the parameter is unused or detached in backprop (a gradient never written)"
        )
    if np.all(np.abs(numerical) <= noise):
        return (
            f"the loss does not depend on {name}, yet its analytic gradient is nonzero: "
            "a gradient computed for a parameter the loss never uses, or stored under the "
            "wrong name"
        )
    # The rounding noise in the numerical values, as a norm: patterns must fit beyond it.
    spread = float(np.linalg.norm(noise))
    factor = _factor(analytic, numerical, spread)
    if factor is not None and abs(factor + 1) < 1e-2:
        return (
            f"sign flipped: analytic ≈ −1 × numerical in every entry of {name} "
            "(for example y − ŷ where ŷ − y was meant)"
        )
    if factor is not None:
        return (
            f"analytic ≈ {factor:.3f} × numerical in every entry of {name}: a constant "
            "factor is wrong (a missing or extra 1/m, 2 or λ)"
        )
    missing = numerical - analytic
    scale = float(values @ values)
    if scale > 0:
        c = float(missing @ values) / scale
        if abs(c) > 0 and _fits(missing - c * values, missing, spread):
            return (
                f"numerical − analytic ≈ {c:.3g} × {name} itself: the regularization term's "
                f"gradient (λ/m)·{name} is missing or has the wrong scale"
            )
    if square_shape is not None:
        transposed = numerical.reshape(square_shape).T.ravel()
        if _fits(analytic - transposed, analytic, spread):
            return (
                f"the analytic gradient of {name} is the transpose of the numerical one: "
                "the product was formed in the wrong order (dZ.T @ A vs A.T @ dZ)"
            )
    count = int(np.count_nonzero(bad))
    if 0 < count <= _FEW and count < len(bad):
        where = ", ".join(
            f"{coordinate(j)} (analytic {analytic[j]:.6g}, numerical {numerical[j]:.6g})"
            for j in np.flatnonzero(bad).tolist()
        )
        lead = "a single wrong entry" if count == 1 else f"{count} wrong entries"
        return (
            f"{lead} in {name}, every other entry matches: {where}; look for an "
            "indexing or in-place bug there"
        )
    correlation = _correlation(analytic, numerical)
    return (
        f"{count} of {len(bad)} checked entries of {name} disagree with no simple pattern "
        f"(correlation {correlation:.2f} between analytic and numerical); a term of its "
        "gradient is likely missing or wrong: derive it again term by term"
    )


def _correlation(a: NDArray[Any], b: NDArray[Any]) -> float:
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])
