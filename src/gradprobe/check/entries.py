"""The parts of a gradient check's report: checked entries, parameter rows, group tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._params import ParameterLayout, format_index
from gradprobe.check.bounds import VERDICTS

__all__ = ["Entry", "EntryTable", "GroupTest", "ParameterResult", "finite_or_none"]


def finite_or_none(value: float) -> float | None:
    """Return ``value``, or None when it is NaN or infinite (JSON has no such numbers)."""
    return float(value) if np.isfinite(value) else None


@dataclass(frozen=True)
class Entry:
    """One checked coordinate of θ.

    Attributes
    ----------
    name : str
        The coordinate's full name, such as ``"W2[1, 3]"``.
    parameter : str
        The parameter it belongs to, such as ``"W2"``.
    index : tuple of int
        Its multi-index within the parameter.
    analytic, numerical : float
        The two derivatives.
    error : float
        ``|analytic − numerical|``.
    relative_error : float
        ``error / (|analytic| + |numerical|)``.
    kink : bool
        The check established a kink of the loss here: at θ, or crossed within ±ε.
    estimate : float
        The numerical value the verdict rests on: ``numerical`` itself, or a sharper one
        from the re-checks (Richardson over two steps, a step past a kink, the complex
        step); NaN if none.
    bound : float
        A bound of ``|estimate − true derivative|``: rounding (from the loss's measured
        noise) plus truncation (measured from a second step where it matters).
    significance : float
        ``|analytic − estimate| / bound``, the error over its bound (0 for a kink whose
        analytic value is a valid one-sided slope); :meth:`GradCheckReport.worst` ranks by it.
    verdict : {"ok", "inconclusive", "suspicious", "wrong"}
        The entry's verdict: "ok" within its bound or the first threshold, "suspicious"
        or "wrong" (by the thresholds) only beyond 3 bounds, "inconclusive" in between
        after every re-check.
    """

    name: str
    parameter: str
    index: tuple[int, ...]
    analytic: float
    numerical: float
    error: float
    relative_error: float
    kink: bool
    estimate: float = float("nan")
    bound: float = float("inf")
    significance: float = 0.0
    verdict: str = "ok"

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as JSON-serializable data."""
        return {
            "name": self.name,
            "parameter": self.parameter,
            "index": list(self.index),
            "analytic": self.analytic,
            "numerical": self.numerical,
            "error": self.error,
            "relative_error": self.relative_error,
            "kink": self.kink,
            "estimate": finite_or_none(self.estimate),
            "bound": finite_or_none(self.bound),
            "significance": finite_or_none(self.significance),
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class EntryTable:
    """The checked values of θ as arrays; :class:`Entry` objects are made only on demand.

    A full check of a large model checks tens of thousands of values; naming each one
    (``"W2[3, 17]"``) costs more than the comparison itself, so names are formed only
    for the entries someone asks for.

    Attributes
    ----------
    layout : ParameterLayout
        The layout of θ, to name coordinates.
    indices : ndarray of int, shape (k,)
        The checked coordinates of θ.
    analytic, numerical : ndarray of float64, shape (k,)
        The two derivatives.
    relative_error : ndarray of float64, shape (k,)
        As in :class:`Entry` (0 for kinks whose analytic value is a valid one-sided slope).
    kink : ndarray of bool, shape (k,)
        Entries at a kink of the loss.
    estimate, bound, significance : ndarray of float64, shape (k,)
        As in :class:`Entry`.
    codes : ndarray of int8, shape (k,)
        Each entry's verdict as its position in
        :data:`~gradprobe.check.bounds.VERDICTS`.
    """

    layout: ParameterLayout
    indices: NDArray[np.intp]
    analytic: NDArray[np.float64]
    numerical: NDArray[np.float64]
    relative_error: NDArray[np.float64]
    kink: NDArray[np.bool_]
    estimate: NDArray[np.float64]
    bound: NDArray[np.float64]
    significance: NDArray[np.float64]
    codes: NDArray[np.int8]

    def __len__(self) -> int:
        return len(self.indices)

    def entry(self, position: int) -> Entry:
        """Return checked value number ``position`` as an :class:`Entry`."""
        k, multi = self.layout.locate(int(self.indices[position]))
        analytic, numerical = float(self.analytic[position]), float(self.numerical[position])
        return Entry(
            name=format_index(self.layout.names[k], multi),
            parameter=self.layout.names[k],
            index=multi,
            analytic=analytic,
            numerical=numerical,
            error=abs(analytic - numerical),
            relative_error=float(self.relative_error[position]),
            kink=bool(self.kink[position]),
            estimate=float(self.estimate[position]),
            bound=float(self.bound[position]),
            significance=float(self.significance[position]),
            verdict=VERDICTS[int(self.codes[position])],
        )

    def ranked(self, k: int) -> list[Entry]:
        """Return the ``k`` entries with the largest error over bound, worst first.

        Ties (entries that agree exactly have significance 0) are broken by the
        relative error, then by position.
        """
        order = np.lexsort((-self.relative_error, -self.significance))[: max(0, int(k))]
        return [self.entry(int(position)) for position in order]


@dataclass(frozen=True)
class ParameterResult:
    """The check of one named parameter.

    Attributes
    ----------
    name : str
        The parameter's name.
    shape : tuple of int
        Its shape.
    checked : int
        How many of its values were checked (all of them unless sampled).
    difference : float
        The seed's relative difference over its checked values.
    verdict : {"ok", "inconclusive", "suspicious", "wrong"}
        The worst verdict of its entries (or, for a parameter that passed a
        localization's group tests as a whole, "ok").
    largest_error : float
        The largest ``|analytic − numerical|`` among its entries.
    largest_error_at : str
        The coordinate where it occurs.
    kinks : int
        Entries where the loss has a kink within ±ε.
    diagnosis : str or None
        For a suspicious or wrong parameter, what the error pattern suggests.
    inconclusive : int, default=0
        Entries that stayed inconclusive after every re-check.
    significance : float, default=0.0
        The largest error over bound among its entries.
    """

    name: str
    shape: tuple[int, ...]
    checked: int
    difference: float
    verdict: str
    largest_error: float
    largest_error_at: str
    kinks: int
    diagnosis: str | None
    inconclusive: int = 0
    significance: float = 0.0

    @property
    def size(self) -> int:
        """Number of values in the parameter."""
        return int(np.prod(self.shape))

    def to_dict(self) -> dict[str, Any]:
        """Return the row as JSON-serializable data."""
        return {
            "name": self.name,
            "shape": list(self.shape),
            "checked": self.checked,
            "difference": self.difference,
            "verdict": self.verdict,
            "largest_error": self.largest_error,
            "largest_error_at": self.largest_error_at,
            "kinks": self.kinks,
            "diagnosis": self.diagnosis,
            "inconclusive": self.inconclusive,
            "significance": finite_or_none(self.significance),
        }


@dataclass(frozen=True)
class GroupTest:
    """One random-sign directional check on a contiguous range of θ.

    Attributes
    ----------
    parameter : str
        The parameter the range belongs to.
    start, stop : int
        The range of θ, ``theta[start:stop]``.
    depth : int
        0 for a whole parameter, ``d`` after ``d`` halvings.
    analytic, numerical : tuple of float
        ``Σ sᵢ aᵢ`` and the measured ``Σ sᵢ gᵢ``, one per sign draw.
    tolerance : float
        The largest residual ``|analytic − numerical|`` taken as noise.
    failed : bool
        Some draw's residual exceeds the tolerance.
    inferred : bool
        The residuals were computed from the parent's and the sibling's, not measured.
    """

    parameter: str
    start: int
    stop: int
    depth: int
    analytic: tuple[float, ...]
    numerical: tuple[float, ...]
    tolerance: float
    failed: bool
    inferred: bool

    @property
    def size(self) -> int:
        """Number of values in the group."""
        return self.stop - self.start

    @property
    def difference(self) -> float:
        """The largest relative residual over the draws, as the seed's difference."""
        return max(
            abs(a - n) / (abs(a) + abs(n)) if abs(a) + abs(n) > 0 else 0.0
            for a, n in zip(self.analytic, self.numerical, strict=True)
        )
