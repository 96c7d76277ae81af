"""Re-check the entries a first step leaves unclear: more steps, Richardson, kinks, complex step.

An entry whose error is neither within its bound nor clearly beyond it is differentiated
again, at steps ``h·2^k`` on a ladder, all such entries of a round in one request to the
evaluator (so a batched loss, an executor or the MLP's layer-aware evaluator serve the
re-checks as they serve the first step). Each pair of neighbouring steps ``h_b = 2h_s``
is read three ways, every test against the measured noise:

* **smooth**: the one-sided slopes differ by ``ε·f''``, so ``Q = F − B`` halves with the
  step; then Richardson's ``(4D_s − D_b)/3`` is the estimate, bounded by twice the
  error of ``D_s`` that the two steps measure (``|D_b − D_s|/3``) plus its rounding;
* **a kink at θ**: ``Q`` stays put as the step halves (the jump of the slope); the
  analytic value is right when it lies between the one-sided slopes (each taken at
  ``h_s`` and extrapolated to 0), a subgradient;
* **neither**: a kink inside the larger step but not at θ, or a rare jump of the noise;
  the ladder goes down until the step no longer reaches it, whatever its distance.

An entry whose bound is rounding goes *up* the ladder instead (to about the default
step, at most 16 times it), where the rounding is smaller. Entries still unclear may
take the complex step, when the loss accepts complex input and it agrees with the
clearly-correct entries; the rest are inconclusive, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gradprobe.check.bounds import (
    DEVIATIONS,
    INCONCLUSIVE,
    OK,
    TRUNCATION_SAFETY,
    UNCLEAR,
    complex_bound,
    judge,
    value_noise,
)
from gradprobe.errors import LossEvaluationError
from gradprobe.numdiff.perturbation import Differences, LossOnTheta

__all__ = ["NOISE_LIMITED", "STEP_LIMITED", "Recheck", "recheck"]

# The ladder's steps are h·2^k for LOWEST <= k; at most ROUNDS requests to the evaluator.
LOWEST = -12
ROUNDS = 12
# A smooth pair's Q may differ from 2·Q_s by this fraction (higher-order terms) plus noise;
# a kink's Q may change by this fraction between the steps.
SMOOTH_SLACK = 0.1
KINK_SLACK = 0.25
# Going up stops at this many default steps.
UP_LIMIT = 16.0
NOISE_LIMITED, STEP_LIMITED = 1, 2
"""Why an entry stayed inconclusive: rounding at every usable step, or a kink or
curvature at every step the rounding allows."""


@dataclass
class Recheck:
    """What the ladder found for the re-checked entries (arrays of shape (k,)).

    Attributes
    ----------
    estimate, bound : ndarray of float64
        The best numerical value and a bound of its error.
    codes : ndarray of int8
        Verdict codes (see :mod:`gradprobe.check.bounds`); never ``UNCLEAR``.
    significance : ndarray of float64
        Error over bound.
    kink : ndarray of bool
        A kink was established: at θ (slopes unchanged at two steps) or crossed (the
        slopes disagreed beyond smoothness at two steps).
    excused : ndarray of bool
        At a kink at θ, with the analytic value between the one-sided slopes.
    refined : ndarray of bool
        The first step was disturbed (a kink or a jump of the noise within it): the
        estimate should replace the first numerical value.
    reason : ndarray of int8
        For inconclusive entries, :data:`NOISE_LIMITED` or :data:`STEP_LIMITED`.
    complex_step : bool
        The complex step was used.
    """

    estimate: NDArray[np.float64]
    bound: NDArray[np.float64]
    codes: NDArray[np.int8]
    significance: NDArray[np.float64]
    kink: NDArray[np.bool_]
    excused: NDArray[np.bool_]
    refined: NDArray[np.bool_]
    reason: NDArray[np.int8]
    complex_step: bool


class _Ladder:
    """Loss values at ``x ± h·2^k`` for the re-checked coordinates."""

    def __init__(
        self,
        evaluate: LossOnTheta,
        theta: NDArray[np.float64],
        indices: NDArray[np.intp],
        steps: NDArray[np.float64],
        center: float,
        highest: int,
    ) -> None:
        self.evaluate, self.theta, self.indices = evaluate, theta, indices
        self.x, self.steps, self.center = theta[indices], steps, center
        self.levels = np.arange(LOWEST, highest + 1)
        shape = (len(indices), len(self.levels))
        self.above, self.below = np.full(shape, np.nan), np.full(shape, np.nan)
        scale = steps[:, np.newaxis] * 2.0 ** self.levels.astype(np.float64)
        self.upper, self.lower = self.x[:, np.newaxis] + scale, self.x[:, np.newaxis] - scale

    def column(self, level: int) -> int:
        return int(level - LOWEST)

    def measure(self, rows: NDArray[np.intp], levels: NDArray[np.intp]) -> None:
        """Evaluate both sides of (row, level) pairs not measured yet, in one request."""
        columns = levels - LOWEST
        need_up = np.isnan(self.above[rows, columns])
        need_down = np.isnan(self.below[rows, columns])
        up_rows, up_cols = rows[need_up], columns[need_up]
        down_rows, down_cols = rows[need_down], columns[need_down]
        if len(up_rows) + len(down_rows) == 0:
            return
        values = self.evaluate.coordinates(
            self.theta,
            np.concatenate([self.indices[up_rows], self.indices[down_rows]]),
            np.concatenate([self.upper[up_rows, up_cols], self.lower[down_rows, down_cols]]),
        )
        self.above[up_rows, up_cols] = values[: len(up_rows)]
        self.below[down_rows, down_cols] = values[len(up_rows) :]

    def quotients(
        self, rows: NDArray[np.intp], level: NDArray[np.intp], sigma: float, unit: float
    ) -> dict[str, NDArray[np.float64]]:
        """D, F, B, Q = F − B and their rounding deviations at one level per row."""
        c = level - LOWEST
        above, below = self.above[rows, c], self.below[rows, c]
        rise, fall = self.upper[rows, c] - self.x[rows], self.x[rows] - self.lower[rows, c]
        noise = value_noise(sigma, unit, self.center, above, below)
        forward = (above - self.center) / rise
        backward = (self.center - below) / fall
        return {
            "D": (above - below) / (rise + fall),
            "F": forward,
            "B": backward,
            "Q": forward - backward,
            "sdD": noise * np.sqrt(2) / (rise + fall),
            "sdF": noise * np.sqrt(2) / np.minimum(rise, fall),
            "sdQ": noise * np.sqrt(6) / np.minimum(rise, fall),
            "width": rise + fall,
        }


@dataclass
class _Reading:
    """One pair of neighbouring steps read for some rows (arrays of shape (rows,))."""

    smooth: NDArray[np.bool_]
    kinked: NDArray[np.bool_]
    estimate: NDArray[np.float64]
    bound: NDArray[np.float64]
    rounding: NDArray[np.bool_]  # the bound is mostly rounding: a larger step helps
    slopes: NDArray[np.float64]  # |Q| at the larger step
    curvature: NDArray[np.float64]  # c in "the central error at step h is about c·h²"
    valid: NDArray[np.bool_]  # both steps were measured for the row


def _read(
    big: dict[str, NDArray[np.float64]],
    small: dict[str, NDArray[np.float64]],
    analytic: NDArray[np.float64],
) -> _Reading:
    """Read a pair of steps ``h_b ≈ 2h_s`` as smooth, as a kink at θ, or as neither."""
    ratio = big["width"] / small["width"]  # 2 up to the rounding of x ± h
    square = ratio**2
    noise_q = DEVIATIONS * np.hypot(big["sdQ"], ratio * small["sdQ"])
    smooth = np.abs(big["Q"] - ratio * small["Q"]) <= noise_q + SMOOTH_SLACK * np.abs(big["Q"])
    # Smooth: D(h) = f' + c·h² + …, so D_s carries |D_b − D_s|/(ρ² − 1) and D_b ρ² times that.
    change = np.abs(big["D"] - small["D"]) / (square - 1)
    rich = (square * small["D"] - big["D"]) / (square - 1)
    rich_rounding = DEVIATIONS * np.hypot(square * small["sdD"], big["sdD"]) / (square - 1)
    rich_bound = TRUNCATION_SAFETY * change + rich_rounding
    big_bound = TRUNCATION_SAFETY * square * change + DEVIATIONS * big["sdD"]
    use_big = big_bound < rich_bound  # rounding dominates: the larger step alone is sharper
    smooth_estimate = np.where(use_big, big["D"], rich)
    smooth_bound = np.minimum(big_bound, rich_bound)
    rounding = np.where(use_big, DEVIATIONS * big["sdD"], rich_rounding) >= smooth_bound / 2
    # A kink at θ: Q is the jump of the slope, the same at both steps.
    held = np.abs(big["Q"] - small["Q"]) <= KINK_SLACK * np.abs(small["Q"]) + DEVIATIONS * np.hypot(
        big["sdQ"], small["sdQ"]
    )
    kinked = ~smooth & held & (np.abs(small["Q"]) > 2 * DEVIATIONS * small["sdQ"])
    # The one-sided slopes at h_s and extrapolated to 0 span the valid subgradients.
    forward = (ratio * small["F"] - big["F"]) / (ratio - 1)
    backward = (ratio * small["B"] - big["B"]) / (ratio - 1)
    hull = np.stack([small["F"], small["B"], forward, backward])
    low, high = np.min(hull, axis=0), np.max(hull, axis=0)
    spread = np.maximum(np.abs(small["F"] - big["F"]), np.abs(small["B"] - big["B"]))
    hull_bound = DEVIATIONS * np.hypot(ratio * small["sdF"], big["sdF"]) / (ratio - 1) + spread / 2
    return _Reading(
        smooth=smooth,
        kinked=kinked,
        estimate=np.where(kinked, np.clip(analytic, low, high), np.where(smooth, smooth_estimate, np.nan)),
        bound=np.where(kinked, hull_bound, np.where(smooth, smooth_bound, np.inf)),
        rounding=smooth & rounding,
        slopes=np.abs(big["Q"]),
        curvature=change / (small["width"] / 2) ** 2,
        valid=np.ones(len(analytic), dtype=bool),
    )


@dataclass
class _State:
    """Per re-checked row: the ladder's reach and what has been concluded."""

    count: int

    def __post_init__(self) -> None:
        n = self.count
        self.low = np.zeros(n, dtype=np.intp)
        self.high = np.zeros(n, dtype=np.intp)
        self.direction = np.zeros(n, dtype=np.int8)  # +1 up, −1 down
        self.codes = np.full(n, UNCLEAR, dtype=np.int8)
        self.estimate = np.full(n, np.nan)
        self.bound = np.full(n, np.inf)
        self.curvature = np.zeros(n)
        self.kink = np.zeros(n, dtype=bool)
        self.excused = np.zeros(n, dtype=bool)
        self.refined = np.zeros(n, dtype=bool)
        self.anomalies = np.zeros(n, dtype=np.intp)
        self.votes = np.zeros(n, dtype=np.intp)  # smooth readings that found the entry wrong
        self.reason = np.zeros(n, dtype=np.int8)


def _conclude(
    state: _State,
    rows: NDArray[np.intp],
    readings: list[_Reading],
    analytic: NDArray[np.float64],
    thresholds: tuple[float, float],
) -> None:
    """Take the sharpest conclusive reading of each row; point the others up or down."""
    estimate = np.stack([r.estimate for r in readings])
    bound = np.stack([r.bound for r in readings])
    smooth = np.stack([r.smooth for r in readings])
    kinked = np.stack([r.kinked for r in readings])
    verdict = np.stack([judge(analytic, r.estimate, r.bound, thresholds)[0] for r in readings])
    error = np.abs(analytic - estimate)
    # A wrong verdict from a smooth reading whose slopes could hide a kink needs a second one.
    wrong = smooth & (verdict > OK)
    state.votes[rows] += np.count_nonzero(wrong, axis=0)
    slopes = np.stack([r.slopes for r in readings])
    doubtful = wrong & (slopes >= error / 2) & (state.votes[rows] < 2)
    valid = np.stack([r.valid for r in readings])
    state.anomalies[rows] += np.count_nonzero(valid & ~smooth & ~kinked, axis=0)
    usable = (smooth | kinked) & (verdict != UNCLEAR) & ~doubtful
    best = np.argmin(np.where(usable, np.nan_to_num(bound, posinf=1e308), np.inf), axis=0)
    picked = np.arange(len(rows))
    done = np.any(usable, axis=0)
    # Fallback for rows still open: their sharpest smooth reading.
    fallback = np.argmin(np.where(smooth, bound, np.inf), axis=0)
    have_smooth = np.any(smooth, axis=0)
    chosen = np.where(done, best, fallback)
    keep = done | have_smooth
    target = rows[keep]
    state.estimate[target] = estimate[chosen, picked][keep]
    state.bound[target] = bound[chosen, picked][keep]
    state.curvature[target] = np.stack([r.curvature for r in readings])[chosen, picked][keep]
    finished = rows[done]
    state.codes[finished] = verdict[best, picked][done]
    at_kink = done & kinked[best, picked]
    state.kink[rows[at_kink]] = True
    state.excused[rows[at_kink & (verdict[best, picked] == OK)]] = True
    upward = np.stack([r.rounding for r in readings])[fallback, picked]
    state.direction[rows] = np.where(have_smooth & upward, 1, -1)


def _disturbed(
    ladder: _Ladder, state: _State, rows: NDArray[np.intp], sigma: float, unit: float
) -> NDArray[np.bool_]:
    """Rows whose first step and at least one other were disturbed beyond smoothness.

    A kink within ±h disturbs the central differences at h and at every larger step; a
    rare jump of the noise at one point disturbs only the steps that use that point.
    Disturbed: off the final estimate by more than the smooth error ``c·h²`` (twice),
    the rounding and the estimate's own bound.
    """
    result = np.zeros(len(rows), dtype=bool)
    for position, row in enumerate(rows.tolist()):
        measured = np.flatnonzero(~np.isnan(ladder.above[row]) & ~np.isnan(ladder.below[row]))
        levels = ladder.levels[measured]
        quotients = ladder.quotients(np.full(len(levels), row), levels, sigma, unit)
        allowed = (
            TRUNCATION_SAFETY * state.curvature[row] * (quotients["width"] / 2) ** 2
            + DEVIATIONS * quotients["sdD"]
            + state.bound[row]
        )
        off = np.abs(quotients["D"] - state.estimate[row]) > allowed
        result[position] = bool(np.any(off & (levels == 0))) and int(np.count_nonzero(off)) >= 2
    return result


def recheck(
    evaluate: LossOnTheta,
    theta: NDArray[np.float64],
    differences: Differences,
    rows: NDArray[np.intp],
    analytic: NDArray[np.float64],
    *,
    sigma: float,
    unit: float,
    thresholds: tuple[float, float],
    central_steps: NDArray[np.float64],
    method: str,
    trusted: NDArray[np.intp],
) -> Recheck:
    """Re-check entries ``rows`` of a first differentiation until each is clear or can't be.

    Parameters
    ----------
    evaluate : LossOnTheta
        The loss on θ (the same evaluator as the first step).
    theta : ndarray of float64, shape (size,)
        The point.
    differences : Differences
        The first step, over all checked entries.
    rows : ndarray of int, shape (k,)
        Positions in ``differences`` of the entries to re-check.
    analytic : ndarray of float64, shape (k,)
        Their analytic derivatives.
    sigma, unit : float
        The loss's measured noise and its machine epsilon.
    thresholds : tuple of float
        The verdict bands.
    central_steps : ndarray of float64, shape (k,)
        The default central step of each entry (the ladder climbs towards it).
    method : str
        The first step's method.
    trusted : ndarray of int
        Positions in ``differences`` of entries that clearly agree, to test the complex
        step on before it is believed.

    Returns
    -------
    Recheck
    """
    count = len(rows)
    indices = differences.indices[rows]
    first = differences.steps[rows] if method != "complex" else central_steps
    ceiling = np.minimum(
        UP_LIMIT * np.maximum(central_steps, first), 0.05 * np.maximum(1.0, np.abs(theta[indices]))
    )
    up_levels = np.floor(np.log2(np.maximum(ceiling / first, 1.0))).astype(np.intp)
    highest = max(int(up_levels.max(initial=0)), 1)
    ladder = _Ladder(evaluate, theta, indices, first, differences.center, highest)
    state = _State(count)
    if method != "complex":
        assert differences.above is not None and differences.below is not None
        depth = differences.above.shape[1]
        for level in range(depth):
            ladder.above[:, ladder.column(-level)] = differences.above[rows, level]
            ladder.below[:, ladder.column(-level)] = differences.below[rows, level]
        state.low[:] = -(depth - 1)
    everyone = np.arange(count)
    # First round: complete the first step, then one step below the lowest and one above.
    up = np.minimum(state.high + 1, up_levels)
    down = np.maximum(state.low - 1, LOWEST)
    ladder.measure(np.concatenate([everyone] * 3), np.concatenate([np.zeros(count, np.intp), up, down]))
    state.high, state.low = np.maximum(state.high, up), down
    readings = []
    for level in range(int(state.high.max()), int(state.low.min()), -1):
        big = np.full(count, level)
        valid = (big <= state.high) & (big - 1 >= state.low)
        readings.append((valid, ladder.quotients(everyone, big, sigma, unit), ladder.quotients(everyone, big - 1, sigma, unit)))
    usable_readings = [
        _mask(_read(b, s_, analytic), valid) for valid, b, s_ in readings
    ]
    _conclude(state, everyone, usable_readings, analytic, thresholds)
    jump = np.round(np.log2(np.maximum(central_steps / first, 1.0))).astype(np.intp)
    for _ in range(ROUNDS):
        open_rows = np.flatnonzero(state.codes == UNCLEAR)
        if len(open_rows) == 0:
            break
        going_up = state.direction[open_rows] > 0
        target = np.minimum(np.maximum(state.high[open_rows] + 2, jump[open_rows]), up_levels[open_rows])
        stuck = np.where(going_up, target <= state.high[open_rows], state.low[open_rows] - 1 < LOWEST)
        state.reason[open_rows[stuck]] = np.where(going_up[stuck], NOISE_LIMITED, STEP_LIMITED)
        state.codes[open_rows[stuck]] = INCONCLUSIVE
        moving, up = open_rows[~stuck], going_up[~stuck]
        if len(moving) == 0:
            break
        big_level = np.where(up, target[~stuck], state.low[moving])
        ladder.measure(np.concatenate([moving, moving]), np.concatenate([big_level, big_level - 1]))
        state.high[moving[up]] = big_level[up]
        state.low[moving[~up]] = big_level[~up] - 1
        big = ladder.quotients(moving, big_level, sigma, unit)
        small = ladder.quotients(moving, big_level - 1, sigma, unit)
        _conclude(state, moving, [_read(big, small, analytic[moving])], analytic[moving], thresholds)
    left = np.flatnonzero(state.codes == UNCLEAR)
    state.codes[left] = INCONCLUSIVE
    state.reason[left] = np.where(state.direction[left] > 0, NOISE_LIMITED, STEP_LIMITED)
    settled = np.flatnonzero((state.anomalies > 0) & ~state.kink & np.isfinite(state.bound))
    state.refined[settled] = True
    state.kink[settled] = _disturbed(ladder, state, settled, sigma, unit)
    used = False
    stuck_rows = np.flatnonzero(state.codes == INCONCLUSIVE)
    if len(stuck_rows) and not np.any(state.kink[stuck_rows]):
        slopes = _complex_slopes(evaluate, theta, differences, trusted, indices[stuck_rows], sigma, unit)
        if slopes is not None:
            used = True
            limit = complex_bound(slopes, analytic[stuck_rows], sigma, unit)
            verdict, _ = judge(analytic[stuck_rows], slopes, limit, thresholds)
            state.estimate[stuck_rows], state.bound[stuck_rows] = slopes, limit
            state.codes[stuck_rows] = np.where(verdict == UNCLEAR, INCONCLUSIVE, verdict)
    fallback = np.isnan(state.estimate)
    if method != "complex":
        state.estimate[fallback] = differences.gradient[rows][fallback]
    _, significance = judge(analytic, np.nan_to_num(state.estimate), state.bound, thresholds)
    significance = np.where(state.excused, 0.0, significance)
    return Recheck(
        state.estimate, state.bound, state.codes, significance, state.kink, state.excused,
        state.refined, state.reason, used,
    )  # fmt: skip


def _mask(reading: _Reading, valid: NDArray[np.bool_]) -> _Reading:
    """The reading where ``valid``, nothing (neither smooth nor a kink) elsewhere."""
    return _Reading(
        smooth=reading.smooth & valid,
        kinked=reading.kinked & valid,
        estimate=np.where(valid, reading.estimate, np.nan),
        bound=np.where(valid, reading.bound, np.inf),
        rounding=reading.rounding & valid,
        slopes=reading.slopes,
        curvature=reading.curvature,
        valid=reading.valid & valid,
    )


def _complex_slopes(
    evaluate: LossOnTheta,
    theta: NDArray[np.float64],
    differences: Differences,
    trusted: NDArray[np.intp],
    indices: NDArray[np.intp],
    sigma: float,
    unit: float,
) -> NDArray[np.float64] | None:
    """Complex-step slopes at ``indices``, or None when the loss cannot take the complex step.

    The step is believed only after it reproduces, on up to two entries that clearly
    agree, their analytic values to 1e-6: a loss that conjugates or takes ``abs`` returns
    complex values that are not derivatives.
    """
    if len(trusted) == 0:
        return None
    witnesses = trusted[np.argsort(-np.abs(differences.gradient[trusted]), kind="stable")[:2]]
    try:
        tests = np.array([evaluate.complex_slope(theta, int(differences.indices[w]), 1e-20) for w in witnesses])
        expected = differences.gradient[witnesses]
        if np.any(np.abs(tests - expected) > 1e-6 * np.abs(expected) + complex_bound(tests, expected, sigma, unit)):
            return None
        return np.array([evaluate.complex_slope(theta, int(i), 1e-20) for i in indices.tolist()])
    except LossEvaluationError:
        return None
