"""The final step of every check: the chosen coordinates judged, kinks told from bugs."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from gradprobe import check_gradients
from gradprobe._params import ParameterLayout
from gradprobe.check.coordinates import check_coordinates, noise_notes, precision_notes
from gradprobe.numdiff.noise import NoiseEstimate, measure_noise
from gradprobe.numdiff.perturbation import LossOnTheta

Params = dict[str, np.ndarray]
QUIET = NoiseEstimate(1e-16, 1e-16, 1e-7, 3, "measured", 0)


def _abs_plus_square(p: np.ndarray) -> float:
    """|θ₀| + θ₁²: a kink at θ₀ = 0, smooth in θ₁."""
    return float(abs(p[0]) + p[1] ** 2)


def _check(theta: np.ndarray, analytic: np.ndarray, eps: float | None = None, method="central"):  # type: ignore[no-untyped-def]
    layout = ParameterLayout.from_params(theta.copy())
    evaluate = LossOnTheta(_abs_plus_square, layout)
    center = evaluate(theta)
    return check_coordinates(
        evaluate,
        theta.copy(),
        np.arange(len(theta)),
        analytic,
        center=center,
        eps=eps,
        method=method,
        thresholds=(1e-6, 1e-4),
        notes=[],
        started=time.perf_counter(),
        noise=QUIET,
    )


@pytest.mark.parametrize("slope", [-1.0, 0.3, 0.0, 1.0])
def test_a_subgradient_at_a_kink_is_excused(slope: float) -> None:
    report = _check(np.array([0.0, 1.5]), np.array([slope, 3.0]))
    assert report.verdict == "ok", str(report)
    first, second = report.entries
    if slope == 0.0:  # the central difference itself: nothing to re-check
        assert not first.kink and report.evaluations == 1 + 2 * 2
        return
    assert first.kink and not second.kink
    assert first.significance == 0.0 and first.relative_error == 0.0
    # The central value at the step is kept as the notes' numerical value.
    assert first.numerical == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("slope", [1.5, -1.8, -3.0, 10.0])
def test_a_value_outside_the_one_sided_slopes_is_a_bug(slope: float) -> None:
    report = _check(np.array([0.0, 1.5]), np.array([slope, 3.0]))
    assert report.verdict == "wrong" and report.entries[0].verdict == "wrong"
    assert report.entries[1].verdict == "ok"


def test_a_kink_crossed_inside_the_step_is_refined_away() -> None:
    # θ₀ = ε/4: the central difference straddles the kink and reads 0.75; smaller steps
    # do not, and give the slope 1 of the piece through θ.
    report = _check(np.array([2.5e-5, 1.5]), np.array([1.0, 3.0]), 1e-4)
    first = report.entries[0]
    assert report.verdict == "ok" and first.kink
    assert first.numerical == pytest.approx(1.0, abs=1e-9)
    assert abs(first.estimate - 1.0) <= first.bound
    wrong = _check(np.array([2.5e-5, 1.5]), np.array([0.75, 3.0]), 1e-4)
    assert wrong.entries[0].verdict == "wrong"


def test_smooth_clear_entries_are_not_re_checked() -> None:
    report = _check(np.array([0.7, -1.2]), np.array([1.0, -2.4]))
    assert report.verdict == "ok" and not any(e.kink for e in report.entries)
    assert report.evaluations == 1 + 2 * 2  # the loss at θ, then two values per entry
    assert not any("re-checked" in note for note in report.notes)


def test_low_precision_losses_say_so() -> None:
    layout = ParameterLayout.from_params(np.ones(3))
    high = LossOnTheta(lambda p: float(np.sum(p**2)), layout)
    low = LossOnTheta(lambda p: np.float32(np.sum(p**2)), layout)
    for evaluate in (high, low):
        evaluate(np.ones(3))
    assert precision_notes(high, ["given"]) == ["given"]
    notes = precision_notes(low, ["given"])
    assert notes[0] == "given" and notes[1].startswith("the loss is computed in float32")


def test_noise_far_above_rounding_is_said() -> None:
    unit = float(np.finfo(np.float64).eps)
    assert noise_notes(QUIET, 1.0, unit) == []
    loud = NoiseEstimate(1e-12, 1e-12, 1e-7, 2, "measured", 8)
    assert "computational noise" in noise_notes(loud, 1.0, unit)[0]
    lost = NoiseEstimate(0.0, 0.0, 1e-7, 0, "not measurable", 0)
    assert "could not be measured" in noise_notes(lost, 1.0, unit)[0]


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
    noise = measure_noise(evaluate, theta, loss(params), np.random.default_rng(0))
    before = evaluate.evaluations
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
        noise=noise,
        closing_notes=["last"],
    )
    assert report.checked == 3 and report.total == 9 and report.mode == "sampled"
    assert [entry.name for entry in report.entries] == ["W[0, 0]", "W[1, 1]", "W[2, 2]"]
    assert report.worst(1)[0].name == "W[1, 1]" and report.verdict == "wrong"
    assert report.notes[0] == "first" and report.notes[-1] == "last"
    # Two values per coordinate (the loss at θ is given).
    assert report.evaluations == evaluate.evaluations == before + 2 * 3
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


def _offset_loss(p: np.ndarray) -> float:
    """Σ p² plus 1e12: a step below ~1e-5 does not move it at all (its ulp is 1.2e-4)."""
    return float(np.sum(p**2) + 1e12)


_OFFSET_POINT = np.array([[1.915, -0.844, 0.997], [1.796, 1.082, 1.014]])


@pytest.mark.parametrize("how", ["zeros", "negated", "doubled", "random"])
@pytest.mark.parametrize("eps", [None, 1e-7])
def test_garbage_is_never_ok_where_the_loss_does_not_move(how: str, eps: float | None) -> None:
    # The first step cannot move a +1e12 loss: numerical 0 "agrees" with a zero
    # gradient, and a garbage gradient lies within the huge rounding bound.
    p = _OFFSET_POINT.copy()
    true = 2 * p
    garbage = {
        "zeros": np.zeros_like(p),
        "negated": -true,
        "doubled": 2 * true,
        "random": np.random.default_rng(0).normal(size=p.shape) * 3,
    }[how]
    report = check_gradients(_offset_loss, p, garbage, eps=eps)
    assert report.verdict != "ok"
    assert not report.passed
    assert check_gradients(_offset_loss, p, true, eps=eps).verdict == "ok"


def test_a_value_that_measured_nothing_gives_way_to_the_recheck() -> None:
    p = _OFFSET_POINT.copy()
    report = check_gradients(_offset_loss, p, np.zeros_like(p), eps=1e-7)
    # The reported numerical values are the ones at a step where the loss moved.
    numerical = np.array([entry.numerical for entry in report.entries])
    assert np.all(np.abs(numerical) > 1.0)
    assert report.difference == pytest.approx(1.0)
