"""Check chosen coordinates of θ value by value, telling kinks from wrong gradients.

The last step of every check, whichever way it chose the coordinates (all of θ, a
sample, or the values group testing pinned): differentiate them numerically,
refine the entries whose one-sided slopes disagree (:func:`refine_kinks`) and hand
everything to :func:`~gradprobe.check.comparison.assemble_report`. A loss computed in low
precision has a higher noise floor (:func:`value_noise`), and the report says so
(:func:`precision_notes`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from gradprobe.check.comparison import assemble_report, rounding_noise
from gradprobe.check.entries import GroupTest
from gradprobe.check.report import GradCheckReport
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
    "precision_notes",
    "refine_kinks",
    "value_noise",
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
    mode: str | None = None,
    groups: Sequence[GroupTest] = (),
    closing_notes: Sequence[str] = (),
    progress: Callback | None = None,
) -> GradCheckReport:
    """Differentiate the coordinates ``indices`` of θ, tell kinks apart and build the report.

    The last step of every check, whichever way it chose the coordinates: every
    value or a sample (:func:`run_check`), or the values group testing pinned
    (:func:`gradprobe.check.localize.localize_check`).

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
    steps = coordinate_steps(method, theta, indices, eps, evaluate.value_dtype)
    try:
        differences = evaluate_differences(
            evaluate, evaluate.layout, theta, indices, None, method, steps, progress=progress
        )
    except Interrupted as stop:
        if not stop.done:
            raise
        differences = stop.partial
        indices, analytic, steps = indices[: stop.done], analytic[: stop.done], steps[: stop.done]
        mode = "partial"
        closing_notes = [*closing_notes, interrupted_note(stop.done, stop.total)]
    noise = value_noise(evaluate, center, steps, method)
    tolerance = thresholds[0] * (np.abs(analytic) + np.abs(differences.gradient)) + noise
    if mode == "partial":  # Ctrl-C: report at once, without refining kinks
        numerical, kink, excused = differences.gradient, None, None
    else:
        numerical, kink, excused = refine_kinks(evaluate, theta, differences, analytic, tolerance)
    report = assemble_report(
        evaluate.layout,
        indices,
        analytic,
        numerical,
        theta=theta,
        noise=noise,
        thresholds=thresholds,
        kink=kink,
        excused=excused,
        method=method,
        eps=eps,
        steps=steps,
        evaluations=evaluate.evaluations,
        seconds=time.perf_counter() - started,
        mode=mode,
        notes=[*precision_notes(evaluate, notes), *closing_notes],
        groups=groups,
    )
    return interrupted_report(report) if mode == "partial" else report


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


def refine_kinks(
    evaluate: LossOnTheta,
    theta: NDArray[np.float64],
    differences: Differences,
    analytic: NDArray[np.float64],
    tolerance: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_]]:
    """Tell kinks from wrong gradients where the one-sided slopes disagree.

    For a smooth loss the one-sided slopes differ by ``ε·f''``; at a kink they differ
    by the jump in slope, whatever ε. So entries whose analytic value fails and
    whose one-sided slopes disagree by more than that failure are differentiated
    again with ε/4: if the disagreement stays, the loss has a kink at θ itself and
    the analytic value is accepted when it lies between the one-sided slopes (a
    valid subgradient; each slope taken both at ε/4 and extrapolated to ε → 0, so
    their O(ε) truncation error does not reject a correct one-sided value); if it
    vanishes, the kink was crossed inside ±ε and the ε/4 central difference replaces
    the numerical value.

    Returns
    -------
    numerical : ndarray of float64, shape (k,)
        The numerical values, refined where a crossed kink was found.
    kink : ndarray of bool, shape (k,)
        Entries at or near a kink.
    excused : ndarray of bool, shape (k,)
        Kink entries whose analytic value is a valid one-sided choice.
    """
    numerical = differences.gradient.copy()
    kink = np.zeros(len(numerical), dtype=bool)
    excused = np.zeros(len(numerical), dtype=bool)
    if differences.forward is None or differences.backward is None:
        return numerical, kink, excused
    forward, backward = differences.forward, differences.backward
    error = np.abs(analytic - numerical)
    spread = np.abs(forward - backward)
    candidates = np.flatnonzero((error > tolerance) & (spread > error))
    center = differences.center
    for j in candidates.tolist():
        index = int(differences.indices[j])
        original = float(theta[index])
        h = float(differences.steps[j]) / 4
        upper, lower = original + h, original - h
        above, below = evaluate.at(theta, index, upper), evaluate.at(theta, index, lower)
        fine_forward = (above - center) / (upper - original)
        fine_backward = (center - below) / (original - lower)
        fine_spread = abs(fine_forward - fine_backward)
        if fine_spread > 0.6 * spread[j]:
            kink[j] = True
            # Each one-sided slope still carries an O(ε) truncation error; extrapolating
            # the two steps removes it, and the hull of both estimates bounds what is left.
            slopes = (
                fine_forward,
                fine_backward,
                (4 * fine_forward - forward[j]) / 3,
                (4 * fine_backward - backward[j]) / 3,
            )
            excused[j] = min(slopes) - tolerance[j] <= analytic[j] <= max(slopes) + tolerance[j]
        elif fine_spread < 0.1 * spread[j]:
            kink[j] = True
            numerical[j] = (above - below) / (upper - lower)
    return numerical, kink, excused


def value_noise(
    evaluate: LossOnTheta, center: float, steps: NDArray[np.float64], method: str
) -> NDArray[np.float64]:
    """Return :func:`rounding_noise`, scaled up when the loss computes in low precision."""
    noise = rounding_noise(center, steps, method)
    if evaluate.value_dtype != np.float64:
        noise = noise * float(np.finfo(evaluate.value_dtype).eps / np.finfo(np.float64).eps)
    return noise


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
