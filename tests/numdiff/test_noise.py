"""ECnoise: the measured noise matches noise of known size and the true rounding of real losses."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from gradprobe._params import ParameterLayout
from gradprobe.numdiff.batched import ThetaEvaluator
from gradprobe.numdiff.noise import (
    direction_rng,
    measure_noise,
    noise_level,
    scalar_noise,
    value_noise,
)
from gradprobe.numdiff.perturbation import LossOnTheta

UNIT = float(np.finfo(np.float64).eps)


class TestTable:
    @pytest.mark.parametrize("sigma", [1e-12, 1e-9, 1e-6, 1e-4])
    def test_recovers_gaussian_noise_on_a_smooth_function(self, sigma: float) -> None:
        # A cubic spaced 1e-5 apart: its differences of order 3 and up are below 1e-14,
        # so the table must read the added noise, whatever its size.
        ratios = []
        for seed in range(40):
            rng = np.random.default_rng(seed)
            t = 1e-5 * np.arange(9)
            values = 1.0 + 0.3 * t - 2 * t**2 + t**3 + sigma * rng.normal(size=9)
            level, _, status = noise_level(values)
            assert status == "measured"
            ratios.append(level / sigma)
        assert 0.6 < np.median(ratios) < 1.6
        assert 0.2 < min(ratios) and max(ratios) < 4

    def test_equal_values_mean_the_step_was_too_small(self) -> None:
        assert noise_level(np.full(9, 2.5))[2] == "step too small"

    def test_a_function_varying_by_more_than_ten_percent_means_too_large(self) -> None:
        assert noise_level(np.exp(np.arange(9.0)))[2] == "step too large"

    def test_smooth_values_without_noise_show_no_level(self) -> None:
        t = 0.1 * np.arange(9)
        level, order, status = noise_level(5 + np.sin(t))
        assert (order, status) == (0, "step too large")


def course_loss(dtype: type) -> tuple:
    """The course's 3-layer ReLU net with a sigmoid output and −log(1 − a) in its cost."""
    rng = np.random.RandomState(1)
    X, Y = rng.randn(4, 3), np.array([1.0, 1.0, 0.0])
    p = {
        "W1": rng.randn(5, 4), "b1": rng.randn(5, 1), "W2": rng.randn(3, 5),
        "b2": rng.randn(3, 1), "W3": rng.randn(1, 3), "b3": rng.randn(1, 1),
    }  # fmt: skip

    def loss(q: dict) -> float:
        c = {k: np.asarray(v, dtype=dtype) for k, v in q.items()}
        x, y = X.astype(dtype), Y.astype(dtype)
        a1 = np.maximum(0, c["W1"] @ x + c["b1"])
        a2 = np.maximum(0, c["W2"] @ a1 + c["b2"])
        a3 = 1 / (1 + np.exp(-(c["W3"] @ a2 + c["b3"])))
        return np.sum(-np.log(a3) * y - np.log(1 - a3) * (1 - y)) / 3

    return loss, p


def test_course_loss_noise_matches_its_true_rounding() -> None:
    """Against the same loss in extended precision: the float64 values' actual errors."""
    assert np.finfo(np.longdouble).eps < 1e-18, "needs an extended-precision long double"
    loss64, params = course_loss(np.float64)
    exact, _ = course_loss(np.longdouble)
    layout = ParameterLayout.from_params(params)
    theta = layout.flatten(params)
    rng = np.random.default_rng(0)
    errors = []
    for _ in range(300):
        point = theta + 1e-6 * rng.normal(size=theta.size)
        q = layout.unflatten(point)
        errors.append(float(loss64(q)) - float(exact(q)))
    true_sigma = float(np.std(errors))
    evaluate = LossOnTheta(loss64, layout)
    center = evaluate(theta)
    estimate = measure_noise(evaluate, theta, center, np.random.default_rng(3))
    assert estimate.status == "measured"
    assert true_sigma / 3 < estimate.sigma < 3 * true_sigma
    # Far above the rounding of the value itself: the 10-25x.
    assert estimate.sigma > 10 * UNIT * abs(center)


def test_a_kink_through_theta_is_not_read_as_noise() -> None:
    # A ReLU unit exactly at 0: every direction through θ crosses the kink, but a table
    # that starts at θ and goes one way never does.
    X = np.random.default_rng(1).normal(size=(6, 3))

    def loss(p: dict) -> float:
        return float(np.sum(np.maximum(X @ p["w"], 0.0) ** 1) + 0.5 * np.sum(p["w"] ** 2))

    w = np.array([1.0, -1.0, 0.5])
    w[2] = -(X[0, 0] * w[0] + X[0, 1] * w[1]) / X[0, 2]  # example 0 sits on the kink
    layout = ParameterLayout.from_params({"w": w})
    evaluate = LossOnTheta(loss, layout)
    center = evaluate(w)
    estimate = measure_noise(evaluate, w.copy(), center, np.random.default_rng(0))
    assert estimate.sigma < 20 * UNIT * abs(center)


def test_stacking_evaluators_get_whole_tables() -> None:
    calls = []

    def batched(p: dict) -> np.ndarray:
        calls.append(len(p["w"]))
        return np.sum(np.sin(p["w"]), axis=1)

    w = np.linspace(0.1, 1.0, 5)
    layout = ParameterLayout.from_params({"w": w})
    evaluate = ThetaEvaluator(batched, layout, batched=True)
    center = evaluate(w)
    estimate = measure_noise(evaluate, w, center, np.random.default_rng(0))
    assert estimate.status == "measured"
    assert set(calls[1:]) == {8}  # each table's 8 new points in one call
    assert estimate.evaluations == 8 * (len(calls) - 1)


def test_a_loss_that_fails_off_theta_is_not_measurable() -> None:
    w = np.array([1.0, 2.0])

    def loss(p: dict) -> float:
        if not np.array_equal(p["w"], w):
            raise ValueError("only at θ")
        return 1.0

    layout = ParameterLayout.from_params({"w": w})
    evaluate = LossOnTheta(loss, layout)
    estimate = measure_noise(evaluate, w.copy(), 1.0, np.random.default_rng(0))
    assert estimate.status == "not measurable"


def test_direction_rng_leaves_a_given_generator_alone() -> None:
    given = np.random.default_rng(5)
    before = copy.deepcopy(given.bit_generator.state)
    direction_rng(given).normal(size=10)
    assert given.bit_generator.state == before
    first = direction_rng(3).normal(size=4)
    assert np.array_equal(first, direction_rng(3).normal(size=4))
    assert not np.array_equal(first, np.random.default_rng(3).normal(size=4))


def test_scalar_noise_sees_the_staircase_of_a_saturated_log() -> None:
    # −log(1 − σ(t)) at t = 16: 1 − σ(t) ≈ 1e-7 is known to an absolute 1e-16, so the
    # value jumps by about 1e-9 in a sawtooth that some spacings alias to a line.
    def f(t: float) -> float:
        return float(-np.log(1 - 1 / (1 + np.exp(-t))))

    for x in (16.0, 16.1, 15.3):
        sigma = scalar_noise(f, x, f(x)).sigma
        assert 1e-10 < sigma < 1e-8


def test_value_noise_grows_with_the_values_and_has_a_floor() -> None:
    assert value_noise(1e-10, UNIT, 1.0, 1.0)[()] == 1e-10
    # Rounding noise of the value itself grows with the value ...
    assert value_noise(2 * UNIT, UNIT, 1.0, 3.0)[()] == pytest.approx(6 * UNIT)
    # ... but noise far above the value's own rounding comes from larger terms and does not:
    # a loss that crosses 0 at θ (Σ sin on a symmetric grid) must not scale it by 1/|f(θ)|.
    assert value_noise(1e-10, UNIT, 1.0, 3.0)[()] == 1e-10
    assert value_noise(6e-17, UNIT, 1e-17, 1e-5)[()] == 6e-17
    floor = value_noise(0.0, UNIT, 0.0, 2.0)[()]
    assert floor == pytest.approx(UNIT * 2 / np.sqrt(12))
    assert np.all(value_noise(1e-12, UNIT, 1.0, np.array([np.nan, 1.0])) == 1e-12)


def test_an_evaluator_can_ask_for_tables_along_coordinates() -> None:
    # A layered model moves one coordinate by a rank-1 update but evaluates a whole point
    # by a forward pass: its tables go through coordinates(), one request each.
    class Coordinates(ThetaEvaluator):
        noise_along_coordinates = True

        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            self.requests: list[int] = []

        def coordinates(
            self, theta: np.ndarray, indices: np.ndarray, values: np.ndarray
        ) -> np.ndarray:
            self.requests.append(len(set(indices.tolist())))
            return super().coordinates(theta, indices, values)

        def rows(self, points: np.ndarray) -> np.ndarray:
            raise AssertionError("no whole points for this evaluator")

    loss, params = course_loss(np.float64)
    layout = ParameterLayout.from_params(params)
    theta = layout.flatten(params)
    evaluate = Coordinates(loss, layout)
    center = evaluate(theta)
    estimate = measure_noise(evaluate, theta, center, np.random.default_rng(1))
    assert estimate.status == "measured" and set(evaluate.requests) == {1}
    assert estimate.sigma > 10 * UNIT * abs(center)  # the same −log(1 − a) noise
