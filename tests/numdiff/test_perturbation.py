"""The loss on θ and its differences along coordinates: closed forms, counts, θ restored."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from gradprobe._params import ParameterLayout
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, LossEvaluationError
from gradprobe.numdiff.perturbation import (
    Differences,
    LossOnTheta,
    coordinate_steps,
    evaluate_differences,
)
from gradprobe.numdiff.rules import METHODS, default_step

Params = dict[str, np.ndarray]


@pytest.fixture
def quadratic(rng: np.random.Generator) -> tuple[Any, Params, np.ndarray, np.ndarray]:
    """J(θ) = ½ θᵀAθ + cᵀθ with parameters W (2, 3) and b (2,): gradient Aθ + c, Hessian A."""
    M = rng.normal(size=(8, 8))
    A = M @ M.T / 8 + np.eye(8)
    c = rng.normal(size=8)

    def loss(p: Params) -> Any:  # complex-safe (no float()), so every method applies
        theta = np.concatenate([p["W"].ravel(), p["b"]])
        return 0.5 * theta @ A @ theta + c @ theta

    params = {"W": rng.normal(size=(2, 3)), "b": rng.normal(size=2)}
    return loss, params, A, c


def _setup(params: Params) -> tuple[ParameterLayout, np.ndarray]:
    layout = ParameterLayout.from_params(params)
    return layout, layout.flatten(params)


# ------------------------------------------------------------------------ LossOnTheta


def test_every_call_is_counted_and_sees_the_users_structure(quadratic: Any) -> None:
    loss, params, A, c = quadratic
    layout, theta = _setup(params)
    seen: list[set[str]] = []

    def spy(p: Params) -> float:
        seen.append(set(p))
        return loss(p)

    evaluate = LossOnTheta(spy, layout)
    value = evaluate(theta)
    assert value == pytest.approx(0.5 * theta @ A @ theta + c @ theta, rel=1e-15)
    evaluate.at(theta, 2, theta[2] + 1.0)
    evaluate.coordinates(theta, np.array([0, 7]), theta[[0, 7]] - 0.5)
    assert evaluate.evaluations == 4 and seen == [{"W", "b"}] * 4


def test_the_value_dtype_is_read_from_the_first_value_only() -> None:
    layout, theta = _setup({"x": np.ones(3)})
    low = LossOnTheta(lambda p: np.float32(p["x"].sum()), layout)
    low(theta)
    assert low.value_dtype == np.float32
    high = LossOnTheta(lambda p: np.float64(p["x"].sum()), layout)
    high(theta)
    assert high.value_dtype == np.float64
    # A Python float or an integer value says nothing about low precision.
    assert LossOnTheta(lambda p: 3, layout).value_dtype == np.float64


def test_a_loss_must_be_callable() -> None:
    layout, _ = _setup({"x": np.ones(2)})
    with pytest.raises(InvalidTypeError, match="loss: got list, expected a callable"):
        LossOnTheta([1.0], layout)  # type: ignore[arg-type]


def test_failures_name_the_coordinate_that_was_moved() -> None:
    layout, theta = _setup({"W": np.zeros((2, 3)), "b": np.zeros(2)})

    def fragile(p: Params) -> float:
        if p["W"][1, 2] != 0:
            raise KeyError("boom")
        return float(p["b"].sum())

    evaluate = LossOnTheta(fragile, layout)
    assert evaluate(theta) == 0.0
    with pytest.raises(
        LossEvaluationError, match=r"loss raised KeyError at θ with W\[1, 2\] moved"
    ):
        evaluate.at(theta, 5, 1.0)
    with pytest.raises(LossEvaluationError, match=r"loss returned nan at θ with b\[1\] moved"):
        LossOnTheta(lambda p: p["b"][1] / p["b"][1] if p["b"][1] else 0.0, layout).at(
            theta, 7, np.nan
        )


def test_at_puts_the_old_value_back_bit_for_bit(rng: np.random.Generator) -> None:
    # Values whose (x + h) − h differs from x: only a saved copy restores them exactly.
    theta = np.array([0.1, -0.0, 5e-324, 1e300, 1 / 3])
    layout = ParameterLayout.from_params(theta.copy())
    before = theta.tobytes()
    evaluate = LossOnTheta(lambda p: float(np.sum(np.tanh(p))), layout)
    for index in range(len(theta)):
        evaluate.at(theta, index, theta[index] + 0.7)
    assert theta.tobytes() == before

    def raising(p: np.ndarray) -> float:
        raise RuntimeError("fails")

    with pytest.raises(LossEvaluationError):
        LossOnTheta(raising, layout).at(theta, 3, 2.0)
    assert theta.tobytes() == before


def test_the_complex_slope_is_exact(quadratic: Any) -> None:
    loss, params, A, c = quadratic
    layout, theta = _setup(params)
    evaluate = LossOnTheta(loss, layout)
    gradient = A @ theta + c
    for index in range(layout.size):
        assert evaluate.complex_slope(theta, index, 1e-20) == pytest.approx(
            gradient[index], rel=1e-14, abs=1e-14
        )
    assert evaluate.evaluations == layout.size
    assert theta.dtype == np.float64  # perturbed on a complex copy


# ----------------------------------------------------------------------------- steps


def test_coordinate_steps_are_eps_or_the_default_step_of_each_value() -> None:
    theta = np.array([0.0, 0.5, -20.0, 300.0])
    indices = np.array([3, 0, 2])
    np.testing.assert_array_equal(coordinate_steps("central", theta, indices, 1e-4), [1e-4] * 3)
    for method in METHODS:
        np.testing.assert_array_equal(
            coordinate_steps(method, theta, indices, None),
            [default_step(method, theta[i]) for i in indices],
        )
    low = coordinate_steps("central", theta, indices, None, np.float32)
    assert np.all(low > 100 * coordinate_steps("central", theta, indices, None))
    with pytest.raises(InvalidArgumentError, match="eps: got -1.0"):
        coordinate_steps("central", theta, indices, -1.0)


# ---------------------------------------------------------------- evaluate_differences


@pytest.mark.parametrize("method", METHODS)
def test_every_method_recovers_the_gradient_of_a_quadratic(quadratic: Any, method: str) -> None:
    loss, params, A, c = quadratic
    layout, theta = _setup(params)
    # Central differences are exact for a quadratic; one-sided ones are off by h·A_ii / 2.
    result = evaluate_differences(loss, layout, theta, np.arange(8), None, method)
    exact = A @ theta + c
    tolerance = {"forward": 1e-6, "backward": 1e-6}.get(method, 1e-9)
    np.testing.assert_allclose(result.gradient, exact, atol=tolerance)
    assert isinstance(result, Differences)
    assert result.center == pytest.approx(0.5 * theta @ A @ theta + c @ theta, rel=1e-15)


def test_one_sided_slopes_differ_by_the_curvature_times_the_step(quadratic: Any) -> None:
    loss, params, A, c = quadratic
    layout, theta = _setup(params)
    indices = np.array([1, 4, 6])
    result = evaluate_differences(loss, layout, theta, indices, 1e-3, "central")
    assert result.forward is not None and result.backward is not None
    # For a quadratic: forward − backward = h·A_ii exactly, up to rounding of the loss.
    np.testing.assert_allclose(
        result.forward - result.backward, 1e-3 * np.diag(A)[indices], rtol=1e-6
    )
    np.testing.assert_allclose((result.forward + result.backward) / 2, result.gradient, rtol=1e-9)
    forward = evaluate_differences(loss, layout, theta, indices, 1e-3, "forward")
    assert forward.forward is None and forward.backward is None
    np.testing.assert_allclose(forward.gradient, result.forward, rtol=1e-9)


@pytest.mark.parametrize(
    ("method", "per_coordinate"),
    [("central", 2), ("forward", 1), ("backward", 1), ("complex", 1), ("richardson", 8)],
)
def test_evaluations_are_counted_per_method(method: str, per_coordinate: int) -> None:
    layout, theta = _setup({"x": np.linspace(-1.0, 1.0, 5)})
    calls: list[int] = []

    def loss(p: Any) -> Any:
        calls.append(1)
        return np.sum(np.sin(p["x"]))

    result = evaluate_differences(loss, layout, theta, np.array([0, 2, 3]), None, method)
    assert result.evaluations == len(calls) == 1 + per_coordinate * 3
    np.testing.assert_allclose(result.gradient, np.cos(theta[[0, 2, 3]]), rtol=1e-6)


def test_theta_is_restored_and_the_indices_keep_their_order(rng: np.random.Generator) -> None:
    params = {"W": rng.normal(size=(3, 3)), "b": rng.normal(size=3)}
    layout, theta = _setup(params)
    before = theta.tobytes()
    indices = np.array([11, 0, 5, 5])
    result = evaluate_differences(
        lambda p: float(np.sum(p["W"] ** 3) + np.sum(np.exp(p["b"]))),
        layout,
        theta,
        indices,
        None,
        "central",
    )
    assert theta.tobytes() == before
    exact = np.concatenate([3 * params["W"].ravel() ** 2, np.exp(params["b"])])
    np.testing.assert_array_equal(result.indices, indices)
    np.testing.assert_allclose(result.gradient, exact[indices], rtol=1e-8)
    assert result.steps.shape == (4,)


def test_agrees_with_scipy_approx_fprime(rng: np.random.Generator) -> None:
    A = rng.normal(size=(5, 4))
    x = rng.normal(size=4)

    def f(v: np.ndarray) -> float:
        return float(np.log(np.sum(np.exp(A @ v))))

    layout, theta = _setup(x)
    ours = evaluate_differences(f, layout, theta, np.arange(4), None, "forward").gradient
    reference = approx_fprime(x, f, float(np.sqrt(np.finfo(float).eps)))
    np.testing.assert_allclose(ours, reference, atol=1e-7)


def test_an_unknown_method_is_refused_before_any_evaluation() -> None:
    layout, theta = _setup({"x": np.ones(2)})
    calls: list[int] = []
    with pytest.raises(InvalidArgumentError, match="method: got 'secant'"):
        evaluate_differences(
            lambda p: calls.append(1) or 0.0, layout, theta, np.arange(2), None, "secant"
        )
    assert calls == []


def test_given_steps_override_eps(quadratic: Any) -> None:
    loss, params, A, c = quadratic
    layout, theta = _setup(params)
    steps = np.array([1e-2, 1e-4])
    result = evaluate_differences(loss, layout, theta, np.array([0, 1]), 0.5, "forward", steps)
    np.testing.assert_array_equal(result.steps, steps)
    # The one-sided error is h·A_ii / 2 with the step given per coordinate, not ε = 0.5.
    np.testing.assert_allclose(
        result.gradient - (A @ theta + c)[:2], steps * np.diag(A)[:2] / 2, rtol=1e-3
    )
