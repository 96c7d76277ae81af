"""Compare analytic with numerical derivatives: relative differences, noise, verdicts.

The course notes' measure is the relative difference

    ‖dθ_approx − dθ‖₂ / (‖dθ_approx‖₂ + ‖dθ‖₂)

banded by :func:`verdict_for`: ≈1e-7 is great, ≈1e-5 suspicious, ≈1e-3 wrong. A
numerical derivative also carries rounding noise (:func:`rounding_noise`), and an
error within a few times that noise is not held against a gradient.
:func:`assemble_report` applies both to the checked values of θ and builds the
:class:`~gradprobe.check.report.GradCheckReport`, whichever way the numerical values
were obtained.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
from numpy.typing import NDArray

from gradprobe._params import ParameterLayout
from gradprobe.check.entries import EntryTable, GroupTest, ParameterResult
from gradprobe.check.patterns import diagnose
from gradprobe.check.report import GradCheckReport

__all__ = [
    "DEFAULT_THRESHOLDS",
    "VERDICTS",
    "assemble_report",
    "relative_difference",
    "rounding_noise",
    "verdict_for",
]

VERDICTS = ("ok", "suspicious", "wrong")
DEFAULT_THRESHOLDS = (1e-6, 1e-4)
"""``(ok_below, suspicious_below)``: geometric midpoints of the notes' 1e-7, 1e-5, 1e-3."""
# An error within this many times the rounding noise of the difference quotient is noise.
# The noise estimate is itself a bound (4u·|J|, several times the typical rounding), so a
# small margin suffices; a larger one would excuse real errors in gradients that are
# small next to the loss value.
_NOISE_MARGIN = 2.0


def verdict_for(difference: float, thresholds: tuple[float, float] = DEFAULT_THRESHOLDS) -> str:
    """Band a relative difference as the course notes do.

    Parameters
    ----------
    difference : float
        The course notes' relative difference.
    thresholds : tuple of float, default=(1e-6, 1e-4)
        Below the first is "ok" (the course notes' ≈1e-7, great), below the second
        "suspicious" (≈1e-5), otherwise "wrong" (≈1e-3). The defaults sit at the
        geometric midpoints of the course notes' figures.

    Returns
    -------
    {"ok", "suspicious", "wrong"}

    Examples
    --------
    >>> verdict_for(1e-7), verdict_for(1e-5), verdict_for(1e-3)
    ('ok', 'suspicious', 'wrong')
    """
    if not difference < thresholds[1]:  # NaN counts as wrong
        return "wrong"
    return "ok" if difference < thresholds[0] else "suspicious"


def relative_difference(numerical: NDArray[np.float64], analytic: NDArray[np.float64]) -> float:
    """Return the notes' ``‖numerical − analytic‖₂ / (‖numerical‖₂ + ‖analytic‖₂)``, 0 for 0/0.

    Examples
    --------
    >>> import numpy as np
    >>> relative_difference(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    0.0
    """
    denominator = float(np.linalg.norm(numerical) + np.linalg.norm(analytic))
    if denominator == 0.0:
        return 0.0
    return float(np.linalg.norm(numerical - analytic)) / denominator


def rounding_noise(center: float, steps: NDArray[np.float64], method: str) -> NDArray[np.float64]:
    """Return the rounding noise of difference quotients with the given steps.

    Each loss value carries a relative rounding error of a few machine epsilons,
    so a quotient ``(f₊ − f₋) / (x₊ − x₋)`` carries about ``4u·|f| / (x₊ − x₋)``.
    The complex step subtracts nothing and has none to speak of.
    """
    unit = np.finfo(np.float64).eps
    if method == "complex":
        return np.zeros_like(steps)
    width = steps if method in ("forward", "backward") else 2 * steps
    noise: NDArray[np.float64] = 4 * unit * max(abs(center), np.finfo(float).tiny) / width
    return noise


def assemble_report(
    layout: ParameterLayout,
    indices: NDArray[np.intp],
    analytic: NDArray[np.float64],
    numerical: NDArray[np.float64],
    *,
    theta: NDArray[np.float64],
    noise: NDArray[np.float64],
    thresholds: tuple[float, float] = DEFAULT_THRESHOLDS,
    kink: NDArray[np.bool_] | None = None,
    excused: NDArray[np.bool_] | None = None,
    method: str = "central",
    eps: float | None = None,
    steps: NDArray[np.float64] | None = None,
    evaluations: int = 0,
    seconds: float = 0.0,
    mode: str | None = None,
    notes: Sequence[str] = (),
    groups: Sequence[GroupTest] = (),
) -> GradCheckReport:
    """Compare analytic and numerical derivatives over checked coordinates and build the report.

    The one place where differences, verdicts, diagnoses and entries are computed;
    every way of obtaining numerical derivatives (one coordinate at a time, batched,
    structure-aware, PyTorch) ends here.

    Parameters
    ----------
    layout : ParameterLayout
        The layout of θ.
    indices : ndarray of int, shape (k,)
        The checked coordinates of θ, increasing.
    analytic, numerical : ndarray of float64, shape (k,)
        The two derivatives at those coordinates.
    theta : ndarray of float64, shape (size,)
        The point of the check.
    noise : ndarray of float64, shape (k,)
        The rounding noise of each numerical value; errors within a few times it
        are not counted against a parameter.
    thresholds : tuple of float, default=(1e-6, 1e-4)
        The verdict bands.
    kink, excused : ndarray of bool, shape (k,), optional
        Entries at a kink, and those whose analytic value is a valid one-sided slope
        (they count as matching).
    method, eps, steps, evaluations, seconds, mode, notes
        Recorded in the report as they are.
    groups : sequence of GroupTest, default=()
        Group tests of a localization. A parameter with no checked coordinate gets its
        row from its whole-parameter tests, and the report's difference and verdict
        are then the worst of its rows.

    Returns
    -------
    GradCheckReport
    """
    count = len(indices)
    kink = np.zeros(count, dtype=bool) if kink is None else kink
    excused = np.zeros(count, dtype=bool) if excused is None else excused
    compared = np.where(excused, analytic, numerical)
    error = np.abs(analytic - compared)
    relative = error / (np.abs(analytic) + np.abs(compared) + noise + np.finfo(float).tiny)
    bad = (relative > thresholds[1]) & (error > _NOISE_MARGIN * noise)
    owner = np.searchsorted(layout.offsets, indices, side="right") - 1
    rows = []
    at_noise_floor = []
    for k, name in enumerate(layout.names):
        mine = owner == k
        if not np.any(mine):
            continue
        a, n, noise_k = analytic[mine], compared[mine], noise[mine]
        difference = relative_difference(n, a)
        verdict = verdict_for(difference, thresholds)
        if verdict != "ok" and np.linalg.norm(a - n) <= _NOISE_MARGIN * np.linalg.norm(noise_k):
            verdict = "ok"
            at_noise_floor.append(name)
        worst = int(np.argmax(error[mine]))
        local = indices[mine] - layout.offsets[k]
        diagnosis = None
        if verdict != "ok":
            shape = layout.shapes[k]
            full_square = (
                len(shape) == 2 and shape[0] == shape[1] and len(local) == int(np.prod(shape))
            )
            diagnosis = diagnose(
                name,
                a,
                n,
                theta[indices[mine]],
                bad[mine],
                partial(_coordinate_name, layout, layout.offsets[k], local),
                _NOISE_MARGIN * noise_k,
                (shape[0], shape[1]) if full_square else None,
            )
        rows.append(
            ParameterResult(
                name=name,
                shape=layout.shapes[k],
                checked=int(np.count_nonzero(mine)),
                difference=difference,
                verdict=verdict,
                largest_error=float(error[mine][worst]),
                largest_error_at=layout.coordinate_name(int(indices[mine][worst])),
                kinks=int(np.count_nonzero(kink[mine])),
                diagnosis=diagnosis,
            )
        )
    difference = relative_difference(compared, analytic)
    verdict = verdict_for(difference, thresholds)
    if verdict != "ok" and all(row.verdict == "ok" for row in rows):
        verdict = "ok"  # every parameter's error is rounding noise
    if groups:
        rows = _group_rows(layout, rows, groups)
        difference = max(row.difference for row in rows)
        verdict = max((row.verdict for row in rows), key=VERDICTS.index)
    all_notes = list(notes)
    if at_noise_floor:
        all_notes.append(
            f"{', '.join(at_noise_floor)}: the differences there are within the rounding noise "
            f"of the loss (about {float(np.median(noise)):.1e} per value), so their ratio says "
            "nothing and they count as ok; subtract any large constant from the loss, or "
            "check further from a minimum, for a sharper test"
        )
    promoted = sorted({str(d) for d in layout.dtypes if d != np.float64})
    if promoted:
        all_notes.append(f"{', '.join(promoted)} parameters promoted to float64 for the check")
    if np.any(kink):
        all_notes.append(
            f"{int(np.count_nonzero(kink))} entries sit at a kink of the loss (a ReLU or max "
            f"crossing within ±ε); {int(np.count_nonzero(excused))} of them have an analytic "
            "value between the one-sided slopes and count as matching"
        )
    if steps is None or len(steps) == 0:
        steps = np.zeros(1)
    return GradCheckReport(
        difference=difference,
        verdict=verdict,
        thresholds=thresholds,
        parameters=tuple(rows),
        method=method,
        eps=eps,
        steps=(float(np.min(steps)), float(np.max(steps))),
        dtype=", ".join(sorted({str(d) for d in layout.dtypes})),
        evaluations=evaluations,
        seconds=seconds,
        checked=count,
        total=layout.size,
        mode=mode or ("full" if count == layout.size else "sampled"),
        notes=tuple(all_notes),
        table=EntryTable(
            layout=layout,
            indices=np.asarray(indices, dtype=np.intp),
            analytic=np.asarray(analytic, dtype=np.float64),
            numerical=np.asarray(numerical, dtype=np.float64),
            relative_error=np.where(excused, 0.0, relative),
            kink=np.asarray(kink, dtype=bool),
        ),
        groups=tuple(groups),
    )


def _group_rows(
    layout: ParameterLayout, rows: list[ParameterResult], groups: Sequence[GroupTest]
) -> list[ParameterResult]:
    """Rows in θ order, parameters without checked values rowed by their passed group tests."""
    have = {row.name: row for row in rows}
    ordered = []
    for k, name in enumerate(layout.names):
        if name in have:
            ordered.append(have[name])
            continue
        tests = [test for test in groups if test.parameter == name and test.depth == 0]
        if not tests:
            continue
        residuals = [
            abs(a - n) for test in tests for a, n in zip(test.analytic, test.numerical, strict=True)
        ]
        ordered.append(
            ParameterResult(
                name=name,
                shape=layout.shapes[k],
                checked=0,
                difference=max(test.difference for test in tests),
                verdict="ok",
                largest_error=max(residuals),
                largest_error_at="random-sign direction",
                kinks=0,
                diagnosis=None,
            )
        )
    return ordered


def _coordinate_name(
    layout: ParameterLayout, offset: int, local: NDArray[np.intp], position: int
) -> str:
    return layout.coordinate_name(offset + int(local[position]))
