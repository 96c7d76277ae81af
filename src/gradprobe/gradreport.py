"""The report of a gradient check: one row per parameter, one entry per checked value.

:class:`GradCheckReport` is what :func:`gradprobe.check_gradients` (and every other
check: structure-aware, localizing, PyTorch) returns; it is built in one place,
:func:`gradprobe.comparison.assemble_report`, and rendered by :mod:`gradprobe.report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._params import ParameterLayout, format_index
from gradprobe.errors import InvalidArgumentError

if TYPE_CHECKING:
    from gradprobe.localize import GroupTest

__all__ = ["Entry", "EntryTable", "GradCheckReport", "ParameterResult"]


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
        ``error / (|analytic| + |numerical|)``, with the rounding noise added below.
    kink : bool
        The one-sided slopes disagree: the loss has a kink within ±ε of θ here.
    """

    name: str
    parameter: str
    index: tuple[int, ...]
    analytic: float
    numerical: float
    error: float
    relative_error: float
    kink: bool

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
    """

    layout: ParameterLayout
    indices: NDArray[np.intp]
    analytic: NDArray[np.float64]
    numerical: NDArray[np.float64]
    relative_error: NDArray[np.float64]
    kink: NDArray[np.bool_]

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
        )

    def ranked(self, k: int) -> list[Entry]:
        """Return the ``k`` entries with the largest relative error, worst first (stable)."""
        order = np.argsort(-self.relative_error, kind="stable")[: max(0, int(k))]
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
    verdict : {"ok", "suspicious", "wrong"}
        The band of ``difference`` (or "ok" when the error is rounding noise).
    largest_error : float
        The largest ``|analytic − numerical|`` among its entries.
    largest_error_at : str
        The coordinate where it occurs.
    kinks : int
        Entries where the loss has a kink within ±ε.
    diagnosis : str or None
        For a parameter that is not ok, what the error pattern suggests.
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
        }


@dataclass(frozen=True)
class GradCheckReport:
    """Everything a gradient check found.

    Attributes
    ----------
    difference : float
        The seed's ``‖dθ_approx − dθ‖₂ / (‖dθ_approx‖₂ + ‖dθ‖₂)`` over all checked values
        (kinks where the analytic value lies between the one-sided slopes excluded).
    verdict : {"ok", "suspicious", "wrong"}
        ``difference`` banded by ``thresholds``; see :func:`~gradprobe.comparison.verdict_for`.
    thresholds : tuple of float
        ``(ok_below, suspicious_below)``.
    parameters : tuple of ParameterResult
        One row per named parameter, in θ order.
    method : str
        The difference formula.
    eps : float or None
        The step given, or None when chosen automatically.
    steps : tuple of float
        The smallest and largest step used.
    dtype : str
        The dtype(s) the parameters came in; the check itself runs in float64.
    evaluations : int
        Loss evaluations used.
    seconds : float
        Wall time of the check.
    checked : int
        Values of θ checked.
    total : int
        Values in θ.
    mode : str
        How the values were chosen: "full", "sampled", or "localize".
    notes : tuple of str
        What the check did that a reader should know (promotion, dropout off, …).
    table : EntryTable
        Every value checked one by one, as arrays; :attr:`entries` names them.
    groups : tuple of GroupTest
        With ``mode="localize"``, every random-sign group test, in the order made.
    """

    difference: float
    verdict: str
    thresholds: tuple[float, float]
    parameters: tuple[ParameterResult, ...]
    method: str
    eps: float | None
    steps: tuple[float, float]
    dtype: str
    evaluations: int
    seconds: float
    checked: int
    total: int
    mode: str
    notes: tuple[str, ...]
    table: EntryTable = field(repr=False)
    groups: tuple[GroupTest, ...] = field(default=(), repr=False)

    @cached_property
    def entries(self) -> tuple[Entry, ...]:
        """Every value checked one by one, in θ order."""
        return tuple(self.table.entry(position) for position in range(len(self.table)))

    @property
    def passed(self) -> bool:
        """True when the verdict is "ok"."""
        return self.verdict == "ok"

    @property
    def sampled(self) -> bool:
        """True when only some values of θ were checked."""
        return self.checked < self.total

    @property
    def kinks(self) -> int:
        """How many checked entries sit within ±ε of a kink of the loss."""
        return sum(row.kinks for row in self.parameters)

    @property
    def wrong_parameters(self) -> list[str]:
        """Names of the parameters whose verdict is not "ok"."""
        return [row.name for row in self.parameters if row.verdict != "ok"]

    def parameter(self, name: str) -> ParameterResult:
        """Return the row of parameter ``name``."""
        for row in self.parameters:
            if row.name == name:
                return row
        raise InvalidArgumentError(
            f"name: got {name!r}, expected one of {[row.name for row in self.parameters]}"
        )

    def worst(self, k: int = 5) -> list[Entry]:
        """Return the ``k`` checked entries with the largest relative error, worst first."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise InvalidArgumentError(f"k: got {k!r}, expected a non-negative int")
        return self.table.ranked(k)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-serializable data (the 10 worst entries included)."""
        return {
            "difference": self.difference,
            "verdict": self.verdict,
            "passed": self.passed,
            "thresholds": list(self.thresholds),
            "method": self.method,
            "eps": self.eps,
            "steps": list(self.steps),
            "dtype": self.dtype,
            "evaluations": self.evaluations,
            "seconds": self.seconds,
            "checked": self.checked,
            "total": self.total,
            "mode": self.mode,
            "sampled": self.sampled,
            "kinks": self.kinks,
            "notes": list(self.notes),
            "wrong_parameters": self.wrong_parameters,
            "parameters": [row.to_dict() for row in self.parameters],
            "worst": [entry.to_dict() for entry in self.worst(10)],
        }

    def __str__(self) -> str:
        from gradprobe.report.text import format_gradcheck

        return format_gradcheck(self)
