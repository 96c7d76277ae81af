"""Read the pattern of a gradient error and say in plain words what is likely wrong.

The course notes' advice when a check fails is to "look at components to try identify
bug". For one parameter, with analytic values ``a`` and numerical values ``n`` (each
with an error bound ``b``) over the same entries, the usual backprop mistakes leave
recognisable traces. The rules, from the most specific to the most general:

========================  ==========================================
pattern                   likely bug
========================  ==========================================
``a == 0`` everywhere     parameter unused or detached in backprop
``n ≈ 0``, ``a ≠ 0``      gradient for something the loss never uses
``a ≈ nᵀ``                gradient transposed
``a ≈ −n``                sign flipped
``a ≈ c·n``               a constant factor (1/m, 2, λ) wrong
``n − a ≈ c·θ``           the L2 term's gradient missing or mis-scaled
one or a few entries      an indexing or in-place bug at those entries
========================  ==========================================

A pattern is claimed only when *every* checked entry agrees with it within that
entry's own bound (:data:`~gradprobe.check.bounds.CLEAR` bounds, or the first
threshold's 1e-6 relative). One checked entry shows no pattern: it gets its values and
ratio; two show at most a one-number pattern (a factor, a multiple of θ), and the
diagnosis says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe.check.bounds import CLEAR, SUSPICIOUS

__all__ = ["diagnose"]

Array = NDArray[np.float64]
# Agreement to this relative difference counts whatever the bound (the default first band).
_RELATIVE = 1e-6
_FEW = 5


def _agree(analytic: Array, predicted: Array, bound: Array) -> bool:
    """Every entry of ``analytic`` matches ``predicted`` within its bound."""
    gap = np.abs(analytic - predicted)
    slack = CLEAR * bound + _RELATIVE * (np.abs(analytic) + np.abs(predicted))
    return bool(np.all(gap <= slack))


def _fit(target: Array, basis: Array, slack: Array) -> float | None:
    """Weighted least-squares ``c`` in ``target ≈ c·basis``, or None when ``basis`` is 0.

    Each entry weighs by the inverse square of its ``slack`` (what agreement allows it),
    so a few large entries with loose numerical values cannot pull the fit off the
    small, sharp ones.
    """
    weight = 1.0 / np.maximum(slack, np.finfo(float).tiny) ** 2
    scale = float(np.sum(weight * basis * basis))
    if not scale > 0 or not np.isfinite(scale):
        scale = float(basis @ basis)
        if scale == 0:
            return None
        return float(target @ basis) / scale
    return float(np.sum(weight * target * basis)) / scale


def _factor(c: float) -> str:
    """``c`` with the digits that show how far it is from 1: ``2.000``, ``1.0001``."""
    if abs(c - 1) >= 0.01:
        return f"{c:.3f}"
    digits = max(3, int(np.ceil(-np.log10(abs(c - 1)))) + 1) if c != 1 else 3
    return f"{c:.{digits}f}"


def _ratio(a: float, n: float) -> str:
    return _factor(a / n) if n != 0 else "∞"


def _single(name: str, analytic: Array, numerical: Array, bound: Array) -> str:
    """One checked entry: say what it shows, claim no pattern."""
    a, n = float(analytic[0]), float(numerical[0])
    if _agree(analytic, -numerical, bound):
        return (
            f"sign flipped in the only checked entry of {name} (analytic {a:.6g}, "
            f"numerical {n:.6g}); one value shows no more than that, though for a "
            "scalar a flipped sign (y − ŷ where ŷ − y was meant) is the usual cause"
        )
    return (
        f"the only checked entry of {name} is off: analytic {a:.6g} = {_ratio(a, n)} × "
        f"numerical {n:.6g}; one value shows no pattern: a wrong constant factor "
        "(1/m, 2, λ) or a wrong term of that value"
    )


def _wrong_entries(
    name: str,
    analytic: Array,
    numerical: Array,
    bad: NDArray[np.bool_],
    coordinate: Callable[[int], str],
) -> str:
    """Name the few entries shown wrong, the others matching."""
    where = ", ".join(
        f"{coordinate(j)} (analytic {analytic[j]:.6g}, numerical {numerical[j]:.6g})"
        for j in np.flatnonzero(bad).tolist()
    )
    count = int(np.count_nonzero(bad))
    lead = "a single wrong entry" if count == 1 else f"{count} wrong entries"
    return (
        f"{lead} in {name}, every other entry matches: {where}; look for an indexing or "
        "in-place bug there"
    )


def _one_shown(
    name: str,
    analytic: Array,
    numerical: Array,
    bound: Array,
    bad: NDArray[np.bool_],
    coordinate: Callable[[int], str],
    regularization: float | None,
) -> str:
    """Explain one entry shown wrong while the others match.

    A single wrong entry, unless the others cannot show what the wrong one shows: a
    factor that would be within their bounds, or a multiple ``regularization`` of θ that
    fits every entry; then say that these cannot be told apart.
    """
    j = int(np.flatnonzero(bad)[0])
    a, n = float(analytic[j]), float(numerical[j])
    factor = a / n if n != 0 else None
    others = ~bad
    scaled = factor is not None and _agree(
        analytic[others], factor * numerical[others], abs(factor) * bound[others]
    )
    if not scaled and regularization is None:
        return _wrong_entries(name, analytic, numerical, bad, coordinate)
    if scaled and factor is not None and _agree(analytic[bad], -numerical[bad], bound[bad]):
        return (
            f"only {coordinate(j)} of {name} is large enough to show the error, a sign "
            f"flipped there (analytic {a:.6g}, numerical {n:.6g}); the other entries are too "
            f"small to tell whether the sign of all of {name} is flipped (y − ŷ where ŷ − y "
            "was meant) or of that entry alone"
        )
    alternatives = []
    if scaled and factor is not None:
        alternatives.append(
            f"a constant factor ({_factor(factor)}: 1/m, 2, λ) wrong in all of {name}"
        )
    if regularization is not None:
        alternatives.append(
            f"a missing regularization term (λ/m)·{name} (numerical − analytic ≈ "
            f"{regularization:.3g} × {name})"
        )
    return (
        f"only {coordinate(j)} of {name} is large enough to show the error (analytic "
        f"{a:.6g}, numerical {n:.6g}); the other entries cannot tell a single wrong entry "
        f"from {' or '.join(alternatives)}"
    )


def diagnose(
    name: str,
    analytic: Array,
    numerical: Array,
    values: Array,
    codes: NDArray[np.int8],
    coordinate: Callable[[int], str],
    bound: Array,
    square_shape: tuple[int, int] | None = None,
    kink: NDArray[np.bool_] | None = None,
) -> str:
    """Explain in words how a parameter's analytic gradient differs from the numerical one.

    Parameters
    ----------
    name : str
        The parameter's name, such as ``"W2"``.
    analytic, numerical : ndarray of float64, shape (k,)
        The checked entries' analytic derivatives and numerical estimates.
    values : ndarray of float64, shape (k,)
        The parameter's values at those entries (to recognise a missing L2 term).
    codes : ndarray of int8, shape (k,)
        The entries' verdict codes (see :mod:`gradprobe.check.bounds`).
    coordinate : callable
        ``coordinate(j)`` names checked entry ``j``, such as ``"W2[1, 3]"``.
    bound : ndarray of float64, shape (k,)
        A bound of each numerical estimate's error.
    square_shape : tuple of int, optional
        The parameter's shape when it is a square matrix checked in full, so a
        transposed gradient can be recognised.
    kink : ndarray of bool, shape (k,), optional
        Entries at a kink of the loss at θ itself.

    Returns
    -------
    str
        One or two sentences; never empty.

    Examples
    --------
    >>> import numpy as np
    >>> n = np.array([1.0, -2.0, 0.5])
    >>> bad = np.full(3, 3, dtype=np.int8)
    >>> diagnose("W", 2 * n, n, n, bad, str, np.full(3, 1e-9))[:30]
    'analytic ≈ 2.000 × numerical i'
    """
    bound = np.where(np.isfinite(bound), bound, np.abs(numerical) + np.abs(analytic))
    count = len(analytic)
    # Two entries can show a one-number pattern (a factor, a scale of θ), no more.
    only = "; two values show no more than that" if count == 2 else ""
    slack = CLEAR * bound + _RELATIVE * (np.abs(analytic) + np.abs(numerical))
    scale = _fit(numerical - analytic, values, slack)
    regularization = (
        count >= 2
        and scale is not None
        and scale != 0
        and _agree(analytic, numerical - scale * values, bound)
    )
    if not np.any(analytic):
        if regularization:
            return (
                f"the analytic gradient of {name} is all zero and the numerical one is "
                f"{scale:.3g} × {name} itself: the regularization term's gradient (λ/m)·{name} "
                "is missing, and the rest of its gradient is zero (a dead layer?)" + only
            )
        return (
            f"the analytic gradient of {name} is all zero but the loss does depend on it: "
            "the parameter is unused or detached in backprop (a gradient never written)"
        )
    if np.all(np.abs(numerical) <= CLEAR * bound):
        return (
            f"the loss does not depend on {name}, yet its analytic gradient is nonzero: "
            "a gradient computed for a parameter the loss never uses, or stored under the "
            "wrong name"
        )
    if count == 1:
        return _single(name, analytic, numerical, bound)
    bad = codes >= SUSPICIOUS
    wrong = int(np.count_nonzero(bad))
    others_match = _agree(analytic[~bad], numerical[~bad], bound[~bad])
    if kink is not None and wrong and np.all(kink[bad]) and others_match:
        return (
            _wrong_entries(name, analytic, numerical, bad, coordinate)
            + "; each sits at a kink at θ with its analytic value outside both one-sided "
            "slopes (the numerical value shown is the nearer one): a bug, unless two or more "
            "units sit at exactly 0 there, where relu'(0) = 0 can give such a value"
        )
    if wrong == 1 and count > 1 and others_match:
        fitted = scale if regularization else None
        return _one_shown(name, analytic, numerical, bound, bad, coordinate, fitted)
    if square_shape is not None and count > 2:
        transposed = numerical.reshape(square_shape).T.ravel()
        if _agree(analytic, transposed, bound.reshape(square_shape).T.ravel()):
            return (
                f"the analytic gradient of {name} is the transpose of the numerical one: "
                "the product was formed in the wrong order (dZ.T @ A vs A.T @ dZ)"
            )
    if _agree(analytic, -numerical, bound):
        return (
            f"sign flipped: analytic ≈ −1 × numerical in every entry of {name} "
            "(for example y − ŷ where ŷ − y was meant)" + only
        )
    factor = _fit(analytic, numerical, slack)
    if factor is not None and _agree(analytic, factor * numerical, abs(factor) * bound):
        return (
            f"analytic ≈ {_factor(factor)} × numerical in every entry of {name}: a constant "
            "factor is wrong (a missing or extra 1/m, 2 or λ)" + only
        )
    if regularization:
        return (
            f"numerical − analytic ≈ {scale:.3g} × {name} itself: the regularization term's "
            f"gradient (λ/m)·{name} is missing or has the wrong scale" + only
        )
    if 0 < wrong <= _FEW and wrong < count and others_match:
        return _wrong_entries(name, analytic, numerical, bad, coordinate)
    if count == 2:
        return (
            f"the two checked entries of {name} disagree differently (analytic "
            f"{analytic[0]:.6g} and {analytic[1]:.6g}, numerical {numerical[0]:.6g} and "
            f"{numerical[1]:.6g}); derive each again"
        )
    correlation = _correlation(analytic, numerical)
    return (
        f"{wrong} of {count} checked entries of {name} disagree with no simple pattern "
        f"(correlation {correlation:.2f} between analytic and numerical); a term of its "
        "gradient is likely missing or wrong: derive it again term by term"
    )


def _correlation(a: NDArray[Any], b: NDArray[Any]) -> float:
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])
