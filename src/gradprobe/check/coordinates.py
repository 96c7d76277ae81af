"""Check chosen coordinates of θ value by value, each against its own error bound.

The last step of every check, whichever way it chose the coordinates (all of θ, a
sample, or the values group testing pinned):

1. differentiate them numerically at ``eps``, or at the documented default step
   (:func:`~gradprobe.numdiff.rules.default_step`);
2. bound each first value's rounding error from the measured noise
   (:func:`~gradprobe.check.bounds.first_bounds`) and judge it
   (:func:`~gradprobe.check.bounds.judge`): most entries are clear here;
3. re-check the entries that are not (:func:`~gradprobe.check.escalate.recheck`):
   second steps and Richardson for truncation, smaller steps past kinks, and for
   rounding the larger step that the measured noise and curvature predict to be
   sharpest (as Moré & Wild 2012 choose steps for noisy functions); the complex step
   when the loss takes it;
4. hand everything to :func:`~gradprobe.check.comparison.assemble_report`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from gradprobe.check.bounds import (
    FAR,
    INCONCLUSIVE,
    OK,
    TRUNCATION_SAFETY,
    UNCLEAR,
    first_bounds,
    judge,
)
from gradprobe.check.comparison import Judged, assemble_report
from gradprobe.check.entries import GroupTest
from gradprobe.check.escalate import NOISE_LIMITED, STEP_LIMITED, recheck
from gradprobe.check.report import GradCheckReport
from gradprobe.numdiff.noise import NoiseEstimate
from gradprobe.numdiff.perturbation import (
    Differences,
    LossOnTheta,
    coordinate_steps,
    evaluate_differences,
)
from gradprobe.numdiff.progress import Callback, Interrupted

__all__ = [
    "check_coordinates",
    "interrupted_note",
    "interrupted_report",
    "noise_notes",
    "precision_notes",
]


def check_coordinates(
    evaluate: LossOnTheta,
    theta: NDArray[np.float64],
    indices: NDArray[np.intp],
    analytic: NDArray[np.float64],
    *,
    center: float,
    eps: float | None,
    method: str,
    thresholds: tuple[float, float],
    notes: Sequence[str],
    started: float,
    noise: NoiseEstimate,
    mode: str | None = None,
    groups: Sequence[GroupTest] = (),
    closing_notes: Sequence[str] = (),
    progress: Callback | None = None,
) -> GradCheckReport:
    """Differentiate the coordinates ``indices`` of θ, judge each entry and build the report.

    Parameters
    ----------
    evaluate : LossOnTheta
        The loss on θ.
    theta : ndarray of float64, shape (size,)
        The point of the check.
    indices : ndarray of int, shape (k,)
        The coordinates to differentiate, increasing.
    analytic : ndarray of float64, shape (k,)
        The analytic derivatives at those coordinates.
    center : float
        The loss at θ.
    eps, method, thresholds
        As for :func:`check_gradients` (``thresholds`` already validated).
    notes : sequence of str
        The caller's notes; read after the evaluations, which may add to them (a
        PyTorch loss that ``torch.vmap`` cannot batch says so).
    started : float
        ``time.perf_counter()`` when the check began.
    noise : NoiseEstimate
        The loss's noise measured at θ (:func:`~gradprobe.numdiff.noise.measure_noise`).
    mode, groups
        As for :func:`~gradprobe.check.comparison.assemble_report`.
    closing_notes : sequence of str, default=()
        Notes that follow ``notes`` and the low-precision warning, such as how the
        coordinates were chosen.
    progress : callable, optional
        ``progress(done, k)`` as coordinates are differentiated.

    Returns
    -------
    GradCheckReport
        After Ctrl-C, a partial one (:func:`interrupted_report`) when some coordinates
        were done.
    """
    dtype = evaluate.value_dtype
    unit = float(np.finfo(dtype).eps)
    steps = coordinate_steps(method, theta, indices, eps, dtype)
    try:
        differences = evaluate_differences(
            evaluate, evaluate.layout, theta, indices, None, method, steps, center=center,
            progress=progress,
        )  # fmt: skip
    except Interrupted as stop:
        if not stop.done:
            raise
        differences = stop.partial
        indices, analytic, steps = indices[: stop.done], analytic[: stop.done], steps[: stop.done]
        mode = "partial"
        closing_notes = [*closing_notes, interrupted_note(stop.done, stop.total)]
    numerical = differences.gradient.copy()
    bound, reach = first_bounds(differences, theta[indices], analytic, noise.sigma, unit, method)
    if method == "complex":
        bound = bound + _complex_truncation(evaluate, theta, indices, steps, differences.gradient)
        reach = bound
    codes, significance = judge(analytic, numerical, bound, thresholds)
    error = np.abs(analytic - numerical)
    scale = np.abs(analytic) + np.abs(numerical)
    # Beyond the rounding bound is not yet beyond truncation: only far beyond both is clear.
    far = (codes > OK) & (error > FAR * reach)
    # Within a bound wider than the first band, one draw of the noise could hide a bug the
    # size of the bound: such agreement is confirmed at a sharper step.
    loose = (codes == OK) & (error > thresholds[0] * scale) & (bound > thresholds[0] * scale)
    # An entry that agrees only because the loss did not move at all (the step is below
    # its rounding: a +1e12 offset) measured nothing; it is confirmed at a step where the
    # loss moves, unless its bound is already within the first band of the gradient.
    unmoved = (codes == OK) & _unmoved(differences) & (bound > thresholds[0] * _largest(scale))
    unsure = ((codes > OK) & ~far) | loose | unmoved
    codes = np.where(unsure, UNCLEAR, codes).astype(np.int8)
    # A far entry is not re-checked: its bound allows for truncation as large as the
    # one-sided slopes' disagreement (a diagnosis compares entries within their bounds).
    bound = np.where(far, reach, bound)
    estimate = numerical.copy()
    kink = np.zeros(len(indices), dtype=bool)
    excused = np.zeros(len(indices), dtype=bool)
    at_theta = np.zeros(len(indices), dtype=bool)
    advice: list[str] = []
    # After Ctrl-C the report comes at once: nothing is re-checked.
    rows = np.flatnonzero(codes == UNCLEAR) if mode != "partial" else np.empty(0, np.intp)
    rechecked = 0
    used_complex = False
    if len(rows):
        trusted = np.flatnonzero((codes == OK) & (error < thresholds[0] * scale) & (analytic != 0))
        found = recheck(
            evaluate,
            theta,
            differences,
            rows,
            analytic[rows],
            sigma=noise.sigma,
            unit=unit,
            thresholds=thresholds,
            central_steps=coordinate_steps("central", theta, indices[rows], None, dtype),
            method=method,
            trusted=trusted,
        )
        estimate[rows], bound[rows], codes[rows] = found.estimate, found.bound, found.codes
        significance[rows] = found.significance
        kink[rows], excused[rows], at_theta[rows] = found.kink, found.excused, found.at_theta
        # A first value that measured nothing (the loss did not move) gives way too.
        replaced = found.refined | (unmoved[rows] & np.isfinite(found.estimate))
        numerical[rows[replaced]] = found.estimate[replaced]
        rechecked, used_complex = len(rows), found.complex_step
        advice = _advice(found.reason[found.codes == INCONCLUSIVE], dtype, method)
    judged = Judged(
        indices=indices,
        analytic=analytic,
        numerical=numerical,
        estimate=estimate,
        bound=bound,
        significance=significance,
        codes=codes,
        kink=kink,
        excused=excused,
        at_theta=at_theta,
    )
    escalation = []
    if rechecked:
        escalation.append(
            f"{rechecked} of {len(indices)} entries were not clear at the first step and were "
            "re-checked at further steps (Richardson over two steps, smaller steps past kinks, "
            "larger ones past rounding" + (", the complex step" if used_complex else "") + ")"
        )
    report = assemble_report(
        evaluate.layout,
        judged,
        theta=theta,
        thresholds=thresholds,
        method=method,
        eps=eps,
        steps=steps,
        evaluations=evaluate.evaluations,
        seconds=time.perf_counter() - started,
        mode=mode,
        notes=[
            *precision_notes(evaluate, notes),
            *noise_notes(noise, center, unit),
            *escalation,
            *closing_notes,
        ],
        groups=groups,
        noise=noise.sigma,
        advice=advice,
    )
    return interrupted_report(report) if mode == "partial" else report


def _unmoved(differences: Differences) -> NDArray[np.bool_]:
    """Whether every loss value of each entry's differences equals the loss at θ exactly."""
    count = len(differences.indices)
    if differences.above is None or differences.below is None:
        return np.zeros(count, dtype=bool)  # the complex step has no raw values
    sides = np.concatenate([differences.above, differences.below], axis=1)
    same = (sides == differences.center) | np.isnan(sides)  # NaN: a side not evaluated
    still: NDArray[np.bool_] = np.all(same, axis=1)
    return still


def _largest(sizes: NDArray[np.float64]) -> float:
    """Return the gradient's scale: its largest finite ``|analytic| + |numerical|``, or 0."""
    finite = sizes[np.isfinite(sizes)]
    return float(np.max(finite, initial=0.0))


def interrupted_note(done: int, total: int) -> str:
    """Say that Ctrl-C stopped a check after ``done`` of ``total`` coordinates."""
    return (
        f"interrupted (Ctrl-C) after {done:,} of {total:,} values: the verdict and the "
        "difference cover those only; run the check again to finish it"
    )


def interrupted_report(report: GradCheckReport) -> GradCheckReport:
    """Return a partial report whose verdict is never "ok": the rest was not checked.

    What the checked values show stands ("wrong" stays wrong); a partial check that
    found nothing is "inconclusive", so ``report.passed`` is False either way.
    """
    if report.verdict != "ok":
        return report
    return replace(report, verdict="inconclusive")


def _complex_truncation(
    evaluate: LossOnTheta,
    theta: NDArray[np.float64],
    indices: NDArray[np.intp],
    steps: NDArray[np.float64],
    slopes: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Bound the complex step's own truncation, ``ε²·f‴/6``, where ε is not tiny.

    At the default ε = 1e-20 it vanishes; for a given ε above 1e-6 of the coordinate's
    scale a second complex step at ε/2 measures it (the error shrinks by 4).
    """
    large = np.flatnonzero(steps > 1e-6 * np.maximum(1.0, np.abs(theta[indices])))
    truncation = np.zeros(len(indices))
    if len(large):
        halved = evaluate_differences(
            evaluate, evaluate.layout, theta, indices[large], None, "complex", steps[large] / 2,
            center=0.0,
        )  # fmt: skip
        truncation[large] = TRUNCATION_SAFETY * np.abs(slopes[large] - halved.gradient) / 3
    return truncation


def _advice(reasons: NDArray[np.int8], dtype: np.dtype[np.floating], method: str) -> list[str]:
    """Say what to try when some entries stayed inconclusive, by why they did."""
    if len(reasons) == 0:
        return []
    lines = [
        f"{len(reasons)} entries could be told neither right nor wrong: their error is "
        "between 1 and 3 times its bound at every step tried"
    ]
    if np.any(reasons == NOISE_LIMITED):
        lines.append(
            "rounding noise limits them: try a larger eps, "
            + ("compute the loss in float64, " if dtype != np.float64 else "")
            + "subtract any large constant from the loss, or method='complex' if the loss "
            "accepts complex input"
        )
    if np.any(reasons == STEP_LIMITED):
        lines.append(
            "a kink or strong curvature limits them: try a smaller eps, a point away from "
            "ReLU crossings, or method='complex' if the loss accepts complex input"
            + ("" if method == "central" else ", or method='central'")
        )
    return lines


def noise_notes(noise: NoiseEstimate, center: float, unit: float) -> list[str]:
    """Say what the noise measurement found when it matters for reading the report."""
    if noise.status != "measured":
        return [
            "the loss's noise could not be measured at θ (ECnoise: "
            f"{noise.status}); bounds assume rounding of one unit in the last place"
        ]
    typical = unit * max(abs(center), np.finfo(float).tiny)
    if noise.sigma > 8 * typical:
        return [
            f"the loss's computational noise measured at θ is {noise.sigma:.1e} per value, "
            f"{noise.sigma / typical:.0f}× its rounding in {unit:.1e} precision (a value "
            "computed with cancellation, such as log(1 − a) with a near 1); steps and "
            "bounds were chosen for it"
        ]
    return []


def precision_notes(evaluate: LossOnTheta, notes: Sequence[str]) -> list[str]:
    """Return ``notes`` plus a warning when the loss computes in low precision."""
    all_notes = list(notes)
    if evaluate.value_dtype != np.float64:
        all_notes.append(
            f"the loss is computed in {evaluate.value_dtype}: its rounding noise is far above "
            "float64's, steps were chosen for it and differences near the thresholds may be "
            "rounding; compute the loss in float64 for a sharper check"
        )
    return all_notes
