"""The ladder of steps ``h·2^k`` and how a pair of neighbouring steps is read.

:class:`Ladder` keeps the loss values at ``x ± h·2^k`` of the re-checked coordinates and
asks the evaluator for missing ones, many at once. :func:`read` looks at two
neighbouring steps ``h_b = 2h_s`` of each row, every test against the measured noise:

* **smooth**: the one-sided slopes differ by ``ε·f''``, so ``Q = F − B`` halves with the
  step. The central differences then carry ``c·h²``: the pair measures it, and the
  estimate is Richardson's ``(4D_s − D_b)/3`` or ``D_b`` itself, whichever has the
  smaller bound (twice the measured truncation plus the rounding);
* **a kink at θ**: ``Q`` stays put as the step halves (the jump of the slope); valid
  analytic values lie between the one-sided slopes (each at ``h_s`` and extrapolated
  to 0), the subgradients;
* **neither**: a kink inside the larger step but not at θ, or a rare jump of the noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gradprobe.check.bounds import DEVIATIONS, TRUNCATION_SAFETY, value_noise
from gradprobe.numdiff.perturbation import LossOnTheta

__all__ = ["KINK_SLACK", "LOWEST", "Ladder", "Reading", "SMOOTH_SLACK", "masked", "read"]

LOWEST = -12
"""The smallest step of the ladder is ``h·2^LOWEST``."""
SMOOTH_SLACK = 0.1
"""A smooth pair's ``Q_b`` may differ from ``2·Q_s`` by this fraction (higher-order terms)."""
KINK_SLACK = 0.25
"""A kink's ``Q`` may change by this fraction between the two steps."""


class Ladder:
    """Loss values at ``x ± h·2^k`` for the re-checked coordinates, measured on demand.

    Parameters
    ----------
    evaluate : LossOnTheta
        The loss on θ; every :meth:`measure` is one ``evaluate.coordinates`` request.
    theta : ndarray of float64, shape (size,)
        The point.
    indices : ndarray of int, shape (k,)
        The coordinates (one row each).
    steps : ndarray of float64, shape (k,)
        Each row's step ``h`` at level 0.
    center : float
        The loss at θ.
    highest : int
        The highest level that may be asked for.
    """

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
        """Return the column of ``level`` in :attr:`above` and :attr:`below`."""
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
class Reading:
    """One pair of neighbouring steps read for some rows (arrays of shape (rows,))."""

    smooth: NDArray[np.bool_]
    kinked: NDArray[np.bool_]
    estimate: NDArray[np.float64]
    bound: NDArray[np.float64]
    rounding: NDArray[np.bool_]  # the bound is mostly rounding: a larger step helps
    curvature: NDArray[np.float64]  # c in "the central error at h is c·h²", beyond the noise
    valid: NDArray[np.bool_]  # both steps were measured for the row


def read(
    big: dict[str, NDArray[np.float64]],
    small: dict[str, NDArray[np.float64]],
    analytic: NDArray[np.float64],
) -> Reading:
    """Read a pair of steps ``h_b ≈ 2h_s`` as smooth, as a kink at θ, or as neither."""
    ratio = big["width"] / small["width"]  # 2 up to the rounding of x ± h
    square = ratio**2
    noise_q = DEVIATIONS * np.hypot(big["sdQ"], ratio * small["sdQ"])
    smooth = np.abs(big["Q"] - ratio * small["Q"]) <= noise_q + SMOOTH_SLACK * np.abs(big["Q"])
    # Smooth: D(h) = f' + c·h² + …, so D_s carries |D_b − D_s|/(ρ² − 1) and D_b ρ² times that.
    change = np.abs(big["D"] - small["D"]) / (square - 1)
    rich = (square * small["D"] - big["D"]) / (square - 1)
    rich_rounding = DEVIATIONS * np.hypot(square * small["sdD"], big["sdD"]) / (square - 1)
    rich_noise = DEVIATIONS * np.hypot(small["sdD"], big["sdD"]) / (square - 1)
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
    return Reading(
        smooth=smooth,
        kinked=kinked,
        estimate=np.where(
            kinked, np.clip(analytic, low, high), np.where(smooth, smooth_estimate, np.nan)
        ),
        bound=np.where(kinked, hull_bound, np.where(smooth, smooth_bound, np.inf)),
        rounding=smooth & rounding,
        curvature=np.maximum(change - rich_noise, 0.0) / (small["width"] / 2) ** 2,
        valid=np.ones(len(analytic), dtype=bool),
    )


def masked(reading: Reading, valid: NDArray[np.bool_]) -> Reading:
    """Return the reading where ``valid``, nothing (neither smooth nor a kink) elsewhere."""
    return Reading(
        smooth=reading.smooth & valid,
        kinked=reading.kinked & valid,
        estimate=np.where(valid, reading.estimate, np.nan),
        bound=np.where(valid, reading.bound, np.inf),
        rounding=reading.rounding & valid,
        curvature=reading.curvature,
        valid=reading.valid & valid,
    )
