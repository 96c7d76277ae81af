"""Reading pairs of steps: smooth, a kink at θ, or neither, each against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from gradprobe._params import ParameterLayout
from gradprobe.check.ladder import Ladder, read
from gradprobe.numdiff.perturbation import LossOnTheta

UNIT = float(np.finfo(np.float64).eps)
SIGMA = 1e-16


def separable(pieces: list, x: np.ndarray) -> tuple[Ladder, LossOnTheta]:
    """Σ f_i(θ_i): coordinate i of θ sees f_i alone."""

    def loss(p: dict) -> float:
        return float(sum(f(t) for f, t in zip(pieces, p["x"], strict=True)))

    layout = ParameterLayout.from_params({"x": x})
    evaluate = LossOnTheta(loss, layout)
    center = evaluate(x)
    steps = np.full(len(x), 1e-3)
    return Ladder(evaluate, x.copy(), np.arange(len(x)), steps, center, 4), evaluate


def reading(ladder: Ladder, analytic: np.ndarray, level: int) -> object:
    rows = np.arange(len(analytic))
    levels = np.full(len(rows), level)
    ladder.measure(np.concatenate([rows, rows]), np.concatenate([levels, levels - 1]))
    big = ladder.quotients(rows, levels, SIGMA, UNIT)
    small = ladder.quotients(rows, levels - 1, SIGMA, UNIT)
    return read(big, small, analytic)


def test_smooth_pieces_give_richardson_within_its_bound() -> None:
    x = np.array([0.3, -1.2, 2.0])
    pieces = [np.sin, np.exp, lambda t: t**4]
    exact = np.array([np.cos(0.3), np.exp(-1.2), 4 * 2.0**3])
    ladder, _ = separable(pieces, x)
    result = reading(ladder, exact, 0)
    assert np.all(result.smooth) and not np.any(result.kinked)
    assert np.all(np.abs(result.estimate - exact) <= result.bound)
    # The bound is twice the measured error of the smaller step's central difference.
    small = ladder.quotients(np.arange(3), np.full(3, -1), SIGMA, UNIT)["D"]
    assert np.all(result.bound <= 3 * np.abs(small - exact) + 1e-12)
    assert np.all(result.curvature > 0)


def test_a_kink_at_theta_gives_the_one_sided_slopes() -> None:
    # 2|t| + 0.5t at t = 0: slopes 2.5 going up, −1.5 going down; relu-like conventions
    # take either, or anything between.
    x = np.zeros(3)
    pieces = [lambda t: 2 * abs(t) + 0.5 * t + t**2] * 3
    analytic = np.array([2.5, -1.5, 0.7])
    ladder, _ = separable(pieces, x)
    result = reading(ladder, analytic, 0)
    assert np.all(result.kinked) and not np.any(result.smooth)
    np.testing.assert_allclose(result.estimate, analytic, atol=1e-9)
    # A value outside both slopes is not excused: its nearest slope is the estimate.
    outside = reading(ladder, np.array([3.0, -2.0, 10.0]), 0)
    np.testing.assert_allclose(outside.estimate, [2.5, -1.5, 2.5], atol=1e-3)
    assert np.all(np.abs(outside.estimate - [3.0, -2.0, 10.0]) > 3 * outside.bound)


@pytest.mark.parametrize("distance", [0.6, 0.8, 0.95])
def test_a_kink_inside_the_larger_step_only_is_neither(distance: float) -> None:
    # |t − d·h| with h = 1e-3: at level 0 the window ±h holds the kink, at level −1
    # (±h/2) it does not.
    d = distance * 1e-3
    ladder, _ = separable([lambda t: abs(t - d)], np.zeros(1))
    result = reading(ladder, np.array([-1.0]), 0)
    assert not result.smooth[0] and not result.kinked[0]
    below = reading(ladder, np.array([-1.0]), -1)
    assert below.smooth[0] and abs(below.estimate[0] + 1.0) <= below.bound[0]


def test_rounding_noise_alone_reads_as_smooth() -> None:
    # At a tiny step the one-sided slopes of a line differ by noise only.
    ladder, _ = separable([lambda t: 3 * t + 1e3], np.array([0.5]))
    ladder.steps[:] = 1e-12
    scale = ladder.steps[:, np.newaxis] * 2.0 ** ladder.levels.astype(np.float64)
    ladder.upper, ladder.lower = 0.5 + scale, 0.5 - scale
    rows = np.zeros(1, dtype=np.intp)
    ladder.measure(np.array([0, 0]), np.array([0, -1]))
    noise = 1e3 * UNIT
    big = ladder.quotients(rows, np.array([0]), noise, UNIT)
    small = ladder.quotients(rows, np.array([-1]), noise, UNIT)
    result = read(big, small, np.array([3.0]))
    assert result.smooth[0] and not result.kinked[0]
    assert result.rounding[0]
    assert abs(result.estimate[0] - 3.0) <= result.bound[0]
