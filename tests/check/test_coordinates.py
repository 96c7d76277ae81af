"""The final step of every check: values of the chosen coordinates, kinks told from bugs."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from gradprobe import check_gradients
from gradprobe._params import ParameterLayout
from gradprobe.check.comparison import rounding_noise
from gradprobe.check.coordinates import (
    check_coordinates,
    precision_notes,
    refine_kinks,
    value_noise,
)
from gradprobe.numdiff.perturbation import LossOnTheta, evaluate_differences

Params = dict[str, np.ndarray]


def _abs_plus_square(p: np.ndarray) -> float:
    """|θ₀| + θ₁²: a kink at θ₀ = 0, smooth in θ₁."""
    return float(abs(p[0]) + p[1] ** 2)


def _refine(theta: np.ndarray, analytic: np.ndarray, eps: float | None = None, method="central"):  # type: ignore[no-untyped-def]
    layout = ParameterLayout.from_params(theta.copy())
    evaluate = LossOnTheta(_abs_plus_square, layout)
    differences = evaluate_differences(evaluate, layout, theta, np.arange(len(theta)), eps, method)
    tolerance = 1e-6 * (np.abs(analytic) + np.abs(differences.gradient)) + 1e-10
    before = evaluate.evaluations
    result = refine_kinks(evaluate, theta, differences, analytic, tolerance)
    return differences, result, evaluate.evaluations - before


@pytest.mark.parametrize("slope", [-1.0, 0.3, 0.0, 1.0])
def test_a_subgradient_at_a_kink_is_excused(slope: float) -> None:
    theta = np.array([0.0, 1.5])
    differences, (numerical, kink, excused), extra = _refine(theta, np.array([slope, 3.0]))
    if slope == 0.0:  # the central difference itself: nothing to refine
        assert not kink.any() and extra == 0
        return
    assert kink.tolist() == [True, False] and excused.tolist() == [True, False]
    # At the kink itself the central value is kept; two more evaluations were spent on it.
    np.testing.assert_array_equal(numerical, differences.gradient)
    assert extra == 2


@pytest.mark.parametrize("slope", [1.5, -1.8, -3.0, 10.0])
def test_a_value_outside_the_one_sided_slopes_is_a_bug_not_a_kink(slope: float) -> None:
    _, (_, kink, excused), _ = _refine(np.array([0.0, 1.5]), np.array([slope, 3.0]))
    assert not excused.any()
    # Only an error smaller than the jump in slope (2) is looked at as a possible kink.
    assert kink.tolist() == [abs(slope) < 2, False]


def test_a_kink_crossed_inside_the_step_is_refined_away() -> None:
    # θ₀ = ε/2: the central difference straddles the kink and reads 0.5; at ε/4 it does not.
    theta = np.array([5e-5, 1.5])
    differences, (numerical, kink, excused), extra = _refine(theta, np.array([1.0, 3.0]), 1e-4)
    assert differences.gradient[0] == pytest.approx(0.5)
    assert numerical[0] == pytest.approx(1.0, abs=1e-9) and numerical[1] == differences.gradient[1]
    assert kink.tolist() == [True, False] and not excused.any()
    assert extra == 2


def test_smooth_losses_and_one_sided_methods_are_left_alone() -> None:
    theta = np.array([0.7, -1.2])
    differences, (numerical, kink, excused), extra = _refine(theta, np.array([1.0, -2.4]))
    np.testing.assert_array_equal(numerical, differences.gradient)
    assert not kink.any() and not excused.any() and extra == 0
    at_kink = np.array([0.0, 1.5])
    differences, (numerical, kink, _), extra = _refine(
        at_kink, np.array([5.0, 3.0]), method="forward"
    )
    assert differences.forward is None and not kink.any() and extra == 0
    assert numerical is not differences.gradient  # a copy: the caller's differences stay


def test_low_precision_losses_have_a_higher_noise_floor_and_say_so() -> None:
    layout = ParameterLayout.from_params(np.ones(3))
    steps = np.array([1e-3, 2e-3, 4e-3])
    high = LossOnTheta(lambda p: float(np.sum(p**2)), layout)
    low = LossOnTheta(lambda p: np.float32(np.sum(p**2)), layout)
    for evaluate in (high, low):
        evaluate(np.ones(3))
    np.testing.assert_array_equal(
        value_noise(high, 3.0, steps, "central"), rounding_noise(3.0, steps, "central")
    )
    ratio = float(np.finfo(np.float32).eps / np.finfo(np.float64).eps)
    np.testing.assert_allclose(
        value_noise(low, 3.0, steps, "central"), ratio * rounding_noise(3.0, steps, "central")
    )
    assert precision_notes(high, ["given"]) == ["given"]
    notes = precision_notes(low, ["given"])
    assert notes[0] == "given" and notes[1].startswith("the loss is computed in float32")


def test_check_coordinates_is_the_last_step_of_check_gradients(rng: np.random.Generator) -> None:
    W = rng.normal(size=(3, 3))
    params = {"W": W}

    def loss(p: Params) -> float:
        return float(np.sum(np.tanh(p["W"])))

    analytic = (1 - np.tanh(W) ** 2).ravel()
    analytic[4] *= 1.5  # one planted error
    layout = ParameterLayout.from_params(params)
    theta = layout.flatten(params)
    evaluate = LossOnTheta(loss, layout)
    indices = np.array([0, 4, 8])
    report = check_coordinates(
        evaluate,
        theta,
        indices,
        analytic[indices],
        center=loss(params),
        eps=None,
        method="central",
        thresholds=(1e-6, 1e-4),
        notes=["first"],
        started=time.perf_counter(),
        closing_notes=["last"],
    )
    assert report.checked == 3 and report.total == 9 and report.mode == "sampled"
    assert [entry.name for entry in report.entries] == ["W[0, 0]", "W[1, 1]", "W[2, 2]"]
    assert report.worst(1)[0].name == "W[1, 1]" and report.verdict == "wrong"
    assert report.notes[0] == "first" and report.notes[-1] == "last"
    # The loss at θ once more, then two values per coordinate.
    assert report.evaluations == evaluate.evaluations == 1 + 2 * 3
    # The same coordinates through the public checker give the same numbers.
    full = check_gradients(loss, params, {"W": analytic.reshape(3, 3)})
    for entry in report.entries:
        same = next(e for e in full.entries if e.name == entry.name)
        assert entry.numerical == same.numerical and entry.analytic == same.analytic


class TestKinksThroughTheChecker:
    def relu_net_at_a_kink(self, rng: np.random.Generator) -> tuple[Any, Params, Any]:
        X = rng.normal(size=(8, 3))
        params = {
            "W1": rng.normal(size=(5, 3)),
            "b1": rng.normal(size=5),
            "W2": rng.normal(size=(1, 5)),
        }
        params["b1"][0] = -(X[0] @ params["W1"][0])  # unit 0 sits exactly at zero for example 0

        def forward(p: Params) -> tuple[np.ndarray, np.ndarray]:
            Z1 = X @ p["W1"].T + p["b1"]
            return Z1, np.maximum(Z1, 0)

        def loss(p: Params) -> float:
            _, A1 = forward(p)
            return float(np.sum((A1 @ p["W2"].T) ** 2) / 2)

        def grads(p: Params) -> Params:
            Z1, A1 = forward(p)
            out = A1 @ p["W2"].T
            dZ1 = (out @ p["W2"]) * (Z1 > 0)
            return {"W1": dZ1.T @ X, "b1": dZ1.sum(0), "W2": out.T @ A1}

        return loss, params, grads

    def test_relu_at_a_kink_is_reported_as_kink_not_failure(self, rng: np.random.Generator) -> None:
        loss, params, grads = self.relu_net_at_a_kink(rng)
        report = check_gradients(loss, params, grads)
        assert report.verdict == "ok"
        assert report.kinks >= 1
        assert report.parameter("b1").kinks == 1
        assert any("kink" in note for note in report.notes)
        kinked = [entry for entry in report.entries if entry.kink]
        assert "b1[0]" in [entry.name for entry in kinked]

    def test_a_wrong_value_at_a_kink_still_fails(self, rng: np.random.Generator) -> None:
        loss, params, grads = self.relu_net_at_a_kink(rng)

        def wrong(p: Params) -> Params:
            result = grads(p)
            result["b1"] = result["b1"].copy()
            result["b1"][0] += 10.0  # outside both one-sided slopes
            return result

        report = check_gradients(loss, params, wrong)
        assert "b1" in report.wrong_parameters


class TestRegressions:
    def test_correct_relu_backprop_with_dead_rows_is_never_wrong(self) -> None:
        # A row whose first layer is all dead puts the next pre-activation exactly on a
        # kink; the one-sided slopes then carry O(ε) truncation error of their own.
        from gradprobe import MLP, check_model

        X = np.random.default_rng(0).normal(size=(20, 3))
        y = X @ np.array([1.0, 2.0, 3.0])
        verdicts = []
        for seed in range(60):
            net = MLP([3, 5, 4, 1], activation="relu", output="linear", l2=0.1, seed=seed)
            verdicts.append(check_model(net, X, y).verdict)
        assert verdicts.count("ok") == 60

    def test_loss_computed_in_float32_is_said(self, rng: np.random.Generator) -> None:
        x = rng.normal(size=4)

        def loss(p: Params) -> np.float32:
            return np.float32(np.sum(p["x"].astype(np.float32) ** 2))

        report = check_gradients(loss, {"x": x}, {"x": 2 * x})
        assert any("computed in float32" in note for note in report.notes)
        assert report.steps[0] > 1e-3  # steps chosen for float32, not float64
