"""Compare analytic with numerical derivatives: relative differences, rows, verdicts.

The course notes' measure is the relative difference

    ‖dθ_approx − dθ‖₂ / (‖dθ_approx‖₂ + ‖dθ‖₂)

banded by :func:`verdict_for`: ≈1e-7 is great, ≈1e-5 suspicious, ≈1e-3 wrong. It stays
the headline number of every report, per parameter and overall. The verdicts,
though, follow from the entries, each judged against its own error bound
(:mod:`gradprobe.check.bounds`): a parameter's row takes the worst verdict of its
entries, and the report the worst of its rows, so a check never reads "ok" over a
failing row. :func:`assemble_report` builds the
:class:`~gradprobe.check.report.GradCheckReport`, whichever way the numerical values
were obtained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
from numpy.typing import NDArray

from gradprobe._params import ParameterLayout
from gradprobe.check.bounds import INCONCLUSIVE, VERDICTS
from gradprobe.check.entries import EntryTable, GroupTest, ParameterResult
from gradprobe.check.patterns import diagnose
from gradprobe.check.report import GradCheckReport

__all__ = [
    "DEFAULT_THRESHOLDS",
    "VERDICTS",
    "Judged",
    "assemble_report",
    "relative_difference",
    "verdict_for",
]

DEFAULT_THRESHOLDS = (1e-6, 1e-4)
"""``(ok_below, suspicious_below)``: geometric midpoints of the notes' 1e-7, 1e-5, 1e-3."""


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


@dataclass(frozen=True)
class Judged:
    """Every checked entry of θ with its numerical values, bound and verdict.

    Attributes
    ----------
    indices : ndarray of int, shape (k,)
        The checked coordinates of θ, increasing.
    analytic : ndarray of float64, shape (k,)
        The analytic derivatives.
    numerical : ndarray of float64, shape (k,)
        The notes' ``dθ_approx`` at the check's step (refined where a kink or a jump of
        the noise within the step was resolved).
    estimate, bound, significance : ndarray of float64, shape (k,)
        The value each verdict rests on, a bound of its error, and error over bound.
    codes : ndarray of int8, shape (k,)
        Verdicts as positions in :data:`VERDICTS`.
    kink, excused : ndarray of bool, shape (k,)
        Entries at a kink, and those whose analytic value is a valid one-sided slope.
    at_theta : ndarray of bool, shape (k,)
        Entries at a kink at θ itself, judged against the one-sided slopes.
    """

    indices: NDArray[np.intp]
    analytic: NDArray[np.float64]
    numerical: NDArray[np.float64]
    estimate: NDArray[np.float64]
    bound: NDArray[np.float64]
    significance: NDArray[np.float64]
    codes: NDArray[np.int8]
    kink: NDArray[np.bool_]
    excused: NDArray[np.bool_]
    at_theta: NDArray[np.bool_]


def assemble_report(
    layout: ParameterLayout,
    judged: Judged,
    *,
    theta: NDArray[np.float64],
    thresholds: tuple[float, float] = DEFAULT_THRESHOLDS,
    method: str = "central",
    eps: float | None = None,
    steps: NDArray[np.float64] | None = None,
    evaluations: int = 0,
    seconds: float = 0.0,
    mode: str | None = None,
    notes: Sequence[str] = (),
    groups: Sequence[GroupTest] = (),
    noise: float = 0.0,
    advice: Sequence[str] = (),
) -> GradCheckReport:
    """Build the report from judged entries: rows, the headline, diagnoses.

    The one place where differences, row verdicts, diagnoses and entries are put
    together; every way of obtaining numerical derivatives (one coordinate at a time,
    batched, structure-aware, PyTorch) ends here.

    Parameters
    ----------
    layout : ParameterLayout
        The layout of θ.
    judged : Judged
        The checked entries.
    theta : ndarray of float64, shape (size,)
        The point of the check.
    thresholds : tuple of float, default=(1e-6, 1e-4)
        The verdict bands.
    method, eps, steps, evaluations, seconds, mode, notes, noise, advice
        Recorded in the report as they are.
    groups : sequence of GroupTest, default=()
        Group tests of a localization. A parameter with no checked coordinate gets its
        row from its whole-parameter tests.

    Returns
    -------
    GradCheckReport
    """
    indices, analytic, kink, excused = judged.indices, judged.analytic, judged.kink, judged.excused
    count = len(indices)
    compared = np.where(excused, analytic, judged.numerical)
    error = np.abs(analytic - compared)
    relative = error / (np.abs(analytic) + np.abs(compared) + np.finfo(float).tiny)
    owner = np.searchsorted(layout.offsets, indices, side="right") - 1
    rows = []
    within_noise = []
    for k, name in enumerate(layout.names):
        mine = owner == k
        if not np.any(mine):
            continue
        a, n, codes = analytic[mine], compared[mine], judged.codes[mine]
        difference = relative_difference(n, a)
        verdict = VERDICTS[int(np.max(codes))]
        if verdict == "ok" and verdict_for(difference, thresholds) != "ok":
            within_noise.append(name)
        worst = int(np.argmax(error[mine]))
        local = indices[mine] - layout.offsets[k]
        diagnosis = None
        if verdict in ("suspicious", "wrong"):
            shape = layout.shapes[k]
            full_square = (
                len(shape) == 2 and shape[0] == shape[1] and len(local) == int(np.prod(shape))
            )
            diagnosis = diagnose(
                name,
                a,
                np.where(excused[mine], a, judged.estimate[mine]),
                theta[indices[mine]],
                codes,
                partial(_coordinate_name, layout, layout.offsets[k], local),
                judged.bound[mine],
                (shape[0], shape[1]) if full_square else None,
                judged.at_theta[mine],
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
                inconclusive=int(np.count_nonzero(codes == INCONCLUSIVE)),
                significance=float(np.max(judged.significance[mine])),
            )
        )
    difference = relative_difference(compared, analytic)
    if groups:
        rows = _group_rows(layout, rows, groups)
        difference = max(row.difference for row in rows)
    verdict = max((row.verdict for row in rows), key=VERDICTS.index)
    all_notes = list(notes)
    if within_noise:
        all_notes.append(
            f"{', '.join(within_noise)}: the relative difference there is large, but every "
            "entry is within the error bound of its numerical value (the loss's rounding "
            f"noise, measured at {noise:.1e} per value, over the step), so they count as "
            "ok; subtract any large constant from the loss, or check further from a "
            "minimum, for a sharper test"
        )
    promoted = sorted({str(d) for d in layout.dtypes if d != np.float64})
    if promoted:
        all_notes.append(f"{', '.join(promoted)} parameters promoted to float64 for the check")
    if np.any(kink):
        all_notes.append(
            f"{int(np.count_nonzero(kink))} entries sit at a kink of the loss (a ReLU or max "
            f"crossing at θ, or within ±ε and resolved by smaller steps); "
            f"{int(np.count_nonzero(excused))} of them are exactly at it, with an analytic "
            "value between the one-sided slopes, and count as matching"
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
            numerical=np.asarray(judged.numerical, dtype=np.float64),
            relative_error=np.where(excused, 0.0, relative),
            kink=np.asarray(kink, dtype=bool),
            estimate=np.asarray(judged.estimate, dtype=np.float64),
            bound=np.asarray(judged.bound, dtype=np.float64),
            significance=np.where(excused, 0.0, judged.significance),
            codes=np.asarray(judged.codes, dtype=np.int8),
        ),
        groups=tuple(groups),
        noise=float(noise),
        advice=tuple(advice),
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
                # Failed as a whole with no value checked: a search stopped by Ctrl-C.
                verdict="inconclusive" if any(test.failed for test in tests) else "ok",
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
