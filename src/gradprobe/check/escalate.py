"""Re-check the entries a first step leaves unclear: more steps, Richardson, kinks, complex step.

An entry whose error is neither well within its bound nor clearly beyond it is
differentiated again at steps ``h·2^k`` on a :class:`~gradprobe.check.ladder.Ladder`,
all such entries of a round in one request to the evaluator (so a batched loss, an
executor or the MLP's layer-aware evaluator serve the re-checks as they serve the
first step). Each new pair of neighbouring steps is read
(:func:`~gradprobe.check.ladder.read`) and the sharpest conclusive reading decides.
An entry whose bound is mostly truncation, or whose steps straddle a kink, goes *down*
the ladder (a kink at any distance leaves the window at some step); one whose bound
is mostly rounding goes *up*, to the step that the measured curvature and noise
predict is sharpest (at most 64 default steps). Entries still unclear take the
complex step when the loss accepts complex input and it reproduces entries known to
be right; the rest are inconclusive, with the reason.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from gradprobe.check.bounds import (
    DEVIATIONS,
    FAR,
    INCONCLUSIVE,
    OK,
    TRUNCATION_SAFETY,
    UNCLEAR,
    complex_bound,
    judge,
)
from gradprobe.check.ladder import LOWEST, Ladder, Reading, masked, read
from gradprobe.errors import LossEvaluationError
from gradprobe.numdiff.perturbation import Differences, LossOnTheta

__all__ = ["NOISE_LIMITED", "STEP_LIMITED", "Recheck", "recheck"]

ROUNDS = 12
"""At most this many requests to the evaluator after the first step."""
UP_LIMIT = 64.0
"""Going up stops at this many default steps (or 5 % of the coordinate's scale)."""
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
        A kink was established: at θ (the slopes' jump unchanged at two steps), or
        within the first step (it and a larger one disturbed beyond smoothness).
    excused : ndarray of bool
        At a kink at θ, with the analytic value between the one-sided slopes.
    at_theta : ndarray of bool
        The kink is at θ itself (the verdict compared with the one-sided slopes).
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
    at_theta: NDArray[np.bool_]
    refined: NDArray[np.bool_]
    reason: NDArray[np.int8]
    complex_step: bool


@dataclass
class _State:
    """Per re-checked row: the ladder's reach and what has been concluded."""

    count: int
    low: NDArray[np.intp] = field(init=False)
    high: NDArray[np.intp] = field(init=False)

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
        self.anomalies = np.zeros(n, dtype=np.intp)
        self.votes = np.zeros(n, dtype=np.intp)  # smooth readings that found the entry wrong
        self.at_kink = np.zeros(n, dtype=bool)  # the sharpest reading is a kink at θ
        self.rounding = np.zeros(n, dtype=bool)  # ... and its bound is mostly rounding
        self.reason = np.zeros(n, dtype=np.int8)


def _conclude(
    state: _State,
    rows: NDArray[np.intp],
    readings: list[Reading],
    analytic: NDArray[np.float64],
    thresholds: tuple[float, float],
) -> None:
    """Keep each row's sharpest reading so far; decide the row when it is conclusive.

    A reading counts when it is smooth or a kink at θ; the one with the smallest bound
    decides (a coarser reading that agrees within its wider bound does not contradict
    a sharper one that disagrees). A smooth reading that finds the entry wrong must be
    seconded by another smooth reading, unless it is :data:`FAR` beyond its bound: a
    window that holds several kinks can pass for smooth at one pair of steps, not at two.
    Rows left open go up when the sharpest bound is mostly rounding, down otherwise.
    """
    for reading in readings:
        valid = reading.valid
        state.anomalies[rows] += valid & ~reading.smooth & ~reading.kinked
        found, _ = judge(analytic, reading.estimate, reading.bound, thresholds)
        state.votes[rows] += reading.smooth & (found > OK)
        sharper = (reading.smooth | reading.kinked) & (reading.bound < state.bound[rows])
        target = rows[sharper]
        state.estimate[target] = reading.estimate[sharper]
        state.bound[target] = reading.bound[sharper]
        state.curvature[target] = reading.curvature[sharper]
        state.at_kink[target] = reading.kinked[sharper]
        state.rounding[target] = reading.rounding[sharper]
    verdict, significance = judge(analytic, state.estimate[rows], state.bound[rows], thresholds)
    lone = (verdict > OK) & ~state.at_kink[rows] & (state.votes[rows] < 2) & (significance < FAR)
    done = np.isfinite(state.bound[rows]) & (verdict != UNCLEAR) & ~lone
    state.codes[rows[done]] = verdict[done]
    kinked = done & state.at_kink[rows]
    state.kink[rows[kinked]] = True
    state.excused[rows[kinked & (verdict == OK)]] = True
    state.direction[rows] = np.where(state.rounding[rows] & ~lone, 1, -1)


def _up_target(
    state: _State,
    rows: NDArray[np.intp],
    first_rounding: NDArray[np.float64],
    steps: NDArray[np.float64],
    up_levels: NDArray[np.intp],
) -> NDArray[np.intp]:
    """Return the level whose pair the measured curvature and noise predict sharpest.

    A pair ``(b, b − 1)`` bounds ``D_b`` by twice its truncation, ``4·c·h_{b−1}²`` with
    the noise of that estimate, plus its rounding; the rounding halves per level up.
    """
    candidates = np.arange(1, int(up_levels.max(initial=1)) + 1)
    level = candidates[np.newaxis, :]
    spread = first_rounding[rows, np.newaxis]
    below = (steps[rows, np.newaxis] * 2.0 ** (level - 1)) ** 2
    predicted = (
        TRUNCATION_SAFETY
        * 4
        * (state.curvature[rows, np.newaxis] * below + spread / 2.0 ** (level - 1) / 3)
        + spread / 2.0**level
    )
    allowed = (level > state.high[rows, np.newaxis]) & (level <= up_levels[rows, np.newaxis])
    best = candidates[np.argmin(np.where(allowed, predicted, np.inf), axis=1)]
    return np.where(np.any(allowed, axis=1), best, state.high[rows])


def _disturbed(
    ladder: Ladder, state: _State, rows: NDArray[np.intp], sigma: float, unit: float
) -> NDArray[np.bool_]:
    """Rows whose first step and at least one other were disturbed beyond smoothness.

    A kink within ±h disturbs the central differences at h and at every larger step; a
    rare jump of the noise at one point disturbs only the steps that use that point.
    Disturbed: off the final estimate by more than twice the smooth error ``c·h²``, the
    rounding and the estimate's own bound.
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
        The default central step of each entry (the ladder climbs relative to it).
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
    everyone = np.arange(count)
    indices = differences.indices[rows]
    first = differences.steps[rows] if method != "complex" else central_steps
    ceiling = np.minimum(
        UP_LIMIT * np.maximum(central_steps, first), 0.05 * np.maximum(1.0, np.abs(theta[indices]))
    )
    up_levels = np.floor(np.log2(np.maximum(ceiling / first, 1.0))).astype(np.intp)
    ladder = Ladder(
        evaluate, theta, indices, first, differences.center, max(int(up_levels.max(initial=0)), 1)
    )
    state = _State(count)
    if method != "complex":
        assert differences.above is not None and differences.below is not None
        depth = differences.above.shape[1]
        for level in range(depth):
            ladder.above[:, ladder.column(-level)] = differences.above[rows, level]
            ladder.below[:, ladder.column(-level)] = differences.below[rows, level]
        state.low[:] = -(depth - 1)
    ladder.measure(everyone, np.zeros(count, dtype=np.intp))  # complete the first step
    here = ladder.quotients(everyone, np.zeros(count, dtype=np.intp), sigma, unit)
    first_rounding = DEVIATIONS * here["sdD"]
    readings = []
    for level in range(0, int(state.low.min()), -1):
        valid = level - 1 >= state.low
        big = ladder.quotients(everyone, np.full(count, level), sigma, unit)
        small = ladder.quotients(everyone, np.full(count, level - 1), sigma, unit)
        readings.append(masked(read(big, small, analytic), valid))
    if readings:  # Richardson's four steps are read before any new one is asked for
        _conclude(state, everyone, readings, analytic, thresholds)
    else:  # slopes that disagree beyond the noise: curvature or a kink, so look closer
        state.direction[:] = np.where(np.abs(here["Q"]) <= DEVIATIONS * here["sdQ"], 1, -1)
    for _ in range(ROUNDS):
        open_rows = np.flatnonzero(state.codes == UNCLEAR)
        if len(open_rows) == 0:
            break
        going_up = state.direction[open_rows] > 0
        target = _up_target(state, open_rows, first_rounding, first, up_levels)
        stuck = np.where(
            going_up, target <= state.high[open_rows], state.low[open_rows] - 1 < LOWEST
        )
        state.reason[open_rows[stuck]] = np.where(going_up[stuck], NOISE_LIMITED, STEP_LIMITED)
        state.codes[open_rows[stuck]] = INCONCLUSIVE
        moving, up = open_rows[~stuck], going_up[~stuck]
        if len(moving) == 0:
            break
        # Up: three steps at once, two pairs that can second each other; down: one more.
        big_level = np.where(up, target[~stuck], state.low[moving])
        ladder.measure(
            np.concatenate([moving, moving, moving[up]]),
            np.concatenate([big_level, big_level - 1, big_level[up] - 2]),
        )
        state.high[moving[up]] = big_level[up]
        state.low[moving[~up]] = big_level[~up] - 1
        levels = [ladder.quotients(moving, big_level - k, sigma, unit) for k in range(3)]
        first_pair = read(levels[0], levels[1], analytic[moving])
        second_pair = masked(read(levels[1], levels[2], analytic[moving]), up)
        _conclude(state, moving, [first_pair, second_pair], analytic[moving], thresholds)
    left = np.flatnonzero(state.codes == UNCLEAR)
    state.codes[left] = INCONCLUSIVE
    state.reason[left] = np.where(state.direction[left] > 0, NOISE_LIMITED, STEP_LIMITED)
    refined = (state.anomalies > 0) & ~state.kink & np.isfinite(state.bound)
    settled = np.flatnonzero(refined)
    state.kink[settled] = _disturbed(ladder, state, settled, sigma, unit)
    used = _complex_fallback(
        evaluate, theta, differences, trusted, indices, analytic, state, sigma, unit, thresholds
    )
    if method != "complex":
        missing = np.isnan(state.estimate)
        state.estimate[missing] = differences.gradient[rows][missing]
    _, significance = judge(analytic, np.nan_to_num(state.estimate), state.bound, thresholds)
    return Recheck(
        estimate=state.estimate,
        bound=state.bound,
        codes=state.codes,
        significance=np.where(state.excused, 0.0, significance),
        kink=state.kink,
        excused=state.excused,
        at_theta=state.kink & state.at_kink,
        refined=refined,
        reason=state.reason,
        complex_step=used,
    )


def _complex_fallback(
    evaluate: LossOnTheta,
    theta: NDArray[np.float64],
    differences: Differences,
    trusted: NDArray[np.intp],
    indices: NDArray[np.intp],
    analytic: NDArray[np.float64],
    state: _State,
    sigma: float,
    unit: float,
    thresholds: tuple[float, float],
) -> bool:
    """Decide inconclusive smooth entries by the complex step, when the loss takes it.

    The step is believed only after it reproduces, on up to two entries that clearly
    agree, their numerical values to 1e-6: a loss that conjugates or takes ``abs``
    returns complex values that are not derivatives.
    """
    stuck = np.flatnonzero((state.codes == INCONCLUSIVE) & ~state.kink)
    if len(stuck) == 0 or len(trusted) == 0:
        return False
    witnesses = trusted[np.argsort(-np.abs(differences.gradient[trusted]), kind="stable")[:2]]
    scale = float(np.max(np.abs(differences.gradient[trusted])))
    expected = differences.gradient[witnesses]
    with warnings.catch_warnings():
        # A loss that casts complex input to real warns; the witnesses then disagree.
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        try:
            tests = np.array(
                [
                    evaluate.complex_slope(theta, int(differences.indices[w]), 1e-20)
                    for w in witnesses
                ]
            )
            tolerance = 1e-6 * np.abs(expected) + complex_bound(tests, expected, sigma, unit, scale)
            if np.any(np.abs(tests - expected) > tolerance):
                return False
            slopes = np.array(
                [evaluate.complex_slope(theta, int(i), 1e-20) for i in indices[stuck]]
            )
        except LossEvaluationError:
            return False
    limit = complex_bound(slopes, analytic[stuck], sigma, unit, scale)
    verdict, _ = judge(analytic[stuck], slopes, limit, thresholds)
    state.estimate[stuck], state.bound[stuck] = slopes, limit
    state.codes[stuck] = np.where(verdict == UNCLEAR, INCONCLUSIVE, verdict)
    return True
