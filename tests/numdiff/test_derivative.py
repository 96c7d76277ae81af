"""Numerical derivatives: the course notes' figures, the error orders, and the better methods."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradprobe
from gradprobe import derivative, numerical_gradient
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, LossEvaluationError
from gradprobe.numdiff.derivative import METHODS


def cube(t: float) -> float:
    return t**3


class TestSeedExample:
    """f(θ) = θ³ at θ = 1 with ε = 0.01, the course notes' worked example."""

    def test_one_sided_gives_3_0301(self) -> None:
        value = derivative(cube, 1.0, eps=0.01, method="forward")
        assert value == pytest.approx(3.0301, abs=1e-12)
        assert value - 3.0 == pytest.approx(0.0301, abs=1e-12)

    def test_two_sided_gives_3_0001(self) -> None:
        value = derivative(cube, 1.0, eps=0.01, method="central")
        assert value == pytest.approx(3.0001, abs=1e-12)
        assert value - 3.0 == pytest.approx(0.0001, abs=1e-12)

    def test_backward_mirrors_forward(self) -> None:
        # (1 − 0.99³)/0.01 = 2.9701: error −0.0299, also O(ε).
        assert derivative(cube, 1.0, eps=0.01, method="backward") == pytest.approx(
            2.9701, abs=1e-12
        )

    def test_full_output_carries_step_and_error(self) -> None:
        result = derivative(cube, 1.0, eps=0.01, method="central", full_output=True)
        assert result.step == 0.01
        assert result.method == "central"
        # The estimate of the error is of the size of the true error (1e-4), not wildly off.
        assert 1e-5 < result.error < 1e-3
        assert result.evaluations >= 2


class TestErrorOrder:
    """Halving ε halves the one-sided error and quarters the two-sided one."""

    @pytest.mark.parametrize("eps", [0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 1e-3])
    def test_forward_error_is_first_order(self, eps: float) -> None:
        f, exact = np.sin, math.cos(0.7)
        ratio = abs(derivative(f, 0.7, eps=eps, method="forward") - exact) / abs(
            derivative(f, 0.7, eps=eps / 2, method="forward") - exact
        )
        assert 1.8 < ratio < 2.2

    @pytest.mark.parametrize("eps", [0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 1e-3])
    def test_central_error_is_second_order(self, eps: float) -> None:
        f, exact = np.sin, math.cos(0.7)
        ratio = abs(derivative(f, 0.7, eps=eps, method="central") - exact) / abs(
            derivative(f, 0.7, eps=eps / 2, method="central") - exact
        )
        assert 3.8 < ratio < 4.2

    def test_fitted_slopes_on_log_scale(self) -> None:
        steps = np.logspace(-1, -3, 9)
        exact = math.exp(0.3)
        errors = {
            method: [abs(derivative(np.exp, 0.3, eps=h, method=method) - exact) for h in steps]
            for method in ("forward", "central")
        }
        slope_forward = np.polyfit(np.log(steps), np.log(errors["forward"]), 1)[0]
        slope_central = np.polyfit(np.log(steps), np.log(errors["central"]), 1)[0]
        assert slope_forward == pytest.approx(1.0, abs=0.05)
        assert slope_central == pytest.approx(2.0, abs=0.05)


SMOOTH = [
    (np.exp, np.exp, 0.5),
    (np.sin, np.cos, 1.3),
    (lambda t: np.log1p(t * t), lambda t: 2 * t / (1 + t * t), -0.8),
    (lambda t: t**5 - 3 * t, lambda t: 5 * t**4 - 3, 2.0),
    (np.tanh, lambda t: 1 - np.tanh(t) ** 2, 0.3),
]


class TestBetterMethods:
    @pytest.mark.parametrize(("f", "exact", "x"), SMOOTH)
    def test_complex_step_is_exact_to_rounding(self, f, exact, x) -> None:  # type: ignore[no-untyped-def]
        value = derivative(f, x, method="complex")
        assert abs(value - exact(x)) <= 1e-13 * max(1.0, abs(exact(x)))

    @pytest.mark.parametrize(("f", "exact", "x"), SMOOTH)
    def test_richardson_reaches_1e_10(self, f, exact, x) -> None:  # type: ignore[no-untyped-def]
        value = derivative(f, x, method="richardson")
        assert abs(value - exact(x)) <= 1e-10 * max(1.0, abs(exact(x)))

    @pytest.mark.parametrize(("f", "exact", "x"), SMOOTH)
    def test_default_central_beats_1e_9(self, f, exact, x) -> None:  # type: ignore[no-untyped-def]
        assert abs(derivative(f, x) - exact(x)) <= 1e-9 * max(1.0, abs(exact(x)))

    @pytest.mark.parametrize(("f", "exact", "x"), SMOOTH)
    def test_error_estimate_bounds_the_true_error(self, f, exact, x) -> None:  # type: ignore[no-untyped-def]
        for method in METHODS:
            result = derivative(f, x, method=method, full_output=True)
            assert abs(result.value - exact(x)) <= result.error, method

    def test_complex_step_beats_central_at_tiny_steps(self) -> None:
        # Central differences lose every digit to cancellation at ε = 1e-14; the complex step
        # does not.
        central = derivative(np.exp, 1.0, eps=1e-14, method="central")
        complex_step = derivative(np.exp, 1.0, eps=1e-14, method="complex")
        assert abs(central - math.e) > 1e-3
        assert abs(complex_step - math.e) < 1e-14


# Functions, with their derivatives, and points where a population of error bounds is
# checked: smooth ones, ones with large curvature, and values computed with cancellation
# (−log(1 − σ(t)) loses digits as σ(t) → 1; a large constant hides the variation).
POPULATION = [
    (np.exp, np.exp),
    (np.sin, np.cos),
    (np.log, lambda t: 1 / t),
    (lambda t: t**3, lambda t: 3 * t * t),
    (np.tanh, lambda t: 1 - np.tanh(t) ** 2),
    (np.sqrt, lambda t: 0.5 / np.sqrt(t)),
    (np.arctan, lambda t: 1 / (1 + t * t)),
    (lambda t: t**5 - 3 * t, lambda t: 5 * t**4 - 3),
    (lambda t: -np.log(1 - 1 / (1 + np.exp(-t))), lambda t: 1 / (1 + np.exp(-t))),
    (lambda t: 1e6 + np.sin(t), np.cos),
]
POINTS = [1e-3, 0.3, 1.0, 2.5, 10.0]


class TestErrorBound:
    """``full_output``'s error bounds the true error: 2x the truncation estimate + 4 sigma."""

    @pytest.mark.parametrize("method", ["central", "forward", "backward", "richardson"])
    @pytest.mark.parametrize("eps", [None, 1e-3, 1e-6, 1e-9])
    def test_the_bound_holds_over_a_population(self, method: str, eps: float | None) -> None:
        ratios = []
        for f, exact in POPULATION:
            for x in POINTS:
                if eps is not None and eps >= x / 2:
                    continue  # a given step reaching past 0: the function is not defined there
                result = derivative(f, x, eps=eps, method=method, full_output=True)
                true_error = abs(result.value - exact(x))
                assert true_error <= result.error, (f, x)
                ratios.append(result.error / max(true_error, 1e-300))
        # ... and is not uselessly loose: typically within 100 times the true error (1000
        # for Richardson, whose bound is the error of its lower orders).
        assert np.median(ratios) < (1000 if method == "richardson" else 100)

    def test_the_course_notes_example_is_bounded(self) -> None:
        # Forward at ε = 0.01: the error 0.0301 used to be estimated as 0.0151.
        result = derivative(cube, 1.0, eps=0.01, method="forward", full_output=True)
        assert result.value - 3 == pytest.approx(0.0301, abs=1e-12)
        assert 0.0301 <= result.error <= 0.07
        central = derivative(cube, 1.0, eps=0.01, method="central", full_output=True)
        assert 1e-4 <= central.error <= 3e-4

    def test_complex_step_bound_includes_the_noise_of_the_real_part(self) -> None:
        def f(t: complex) -> complex:
            return -np.log(1 - 1 / (1 + np.exp(-t)))

        result = derivative(f, 10.0, method="complex", full_output=True)
        exact = 1 / (1 + np.exp(-10.0))
        assert abs(result.value - exact) <= result.error
        assert result.noise > 1e-13


class TestCalls:
    @pytest.mark.parametrize(
        ("method", "calls"),
        [("central", 2), ("forward", 2), ("backward", 2), ("richardson", 8), ("complex", 1)],
    )
    def test_without_an_estimate_only_the_formula_is_evaluated(
        self, method: str, calls: int
    ) -> None:
        seen: list[float] = []

        def f(t: float) -> float:
            seen.append(t)
            return np.exp(t)

        derivative(f, 0.4, method=method)
        assert len(seen) == calls

    def test_full_output_counts_its_calls(self) -> None:
        seen: list[float] = []

        def f(t: float) -> float:
            seen.append(t)
            return float(np.sin(t))

        result = derivative(f, 0.4, full_output=True)
        assert result.evaluations == len(seen)

    def test_richardson_stays_in_the_domain_near_zero(self) -> None:
        # The old step max(1, |x|)·u^(1/9) ≈ 0.018 evaluated log at x − 0.018 < 0.
        seen: list[float] = []

        def f(t: float) -> float:
            seen.append(t)
            return float(np.log(t))

        value = derivative(f, 1e-3, method="richardson")
        assert min(seen) > 0 and value == pytest.approx(1e3, rel=1e-9)

    def test_a_default_step_leaving_the_domain_is_shrunk(self) -> None:
        # √x at x = 1e-7: the central step 6e-6 would reach x − ε < 0.
        seen: list[float] = []

        def f(t: float) -> float:
            seen.append(t)
            return float(np.sqrt(t)) if t >= 0 else float("nan")

        value = derivative(f, 1e-7)
        assert min(seen[-2:]) > 0  # the step that was used stays in the domain
        assert value == pytest.approx(0.5 / np.sqrt(1e-7), rel=1e-9)
        with pytest.raises(LossEvaluationError, match="nan"):
            derivative(f, 1e-7, eps=6e-6)  # a given step is used as given


class TestSteps:
    def test_explicit_eps_is_used_as_given(self) -> None:
        assert derivative(cube, 1.0, eps=1e-7, full_output=True).step == 1e-7


class TestNumericalGradient:
    def test_dict_list_tuple_and_array_keep_their_structure(self, rng: np.random.Generator) -> None:
        A = rng.normal(size=(4, 4))
        w = rng.normal(size=4)

        def quadratic(x: np.ndarray) -> float:
            return float(x @ A @ x)

        exact = (A + A.T) @ w
        as_dict = numerical_gradient(lambda p: quadratic(p["w"]), {"w": w})
        as_list = numerical_gradient(lambda p: quadratic(p[0]), [w])
        as_tuple = numerical_gradient(lambda p: quadratic(p[0]), (w,))
        as_array = numerical_gradient(quadratic, w)
        assert set(as_dict) == {"w"}
        assert isinstance(as_list, list) and isinstance(as_tuple, tuple)
        for value in (as_dict["w"], as_list[0], as_tuple[0], as_array):
            np.testing.assert_allclose(value, exact, rtol=1e-8)

    @pytest.mark.parametrize("method", METHODS)
    def test_every_method_on_a_matrix_function(self, method: str, rng: np.random.Generator) -> None:
        W = rng.normal(size=(3, 2))
        x = rng.normal(size=2)

        def loss(p: dict[str, np.ndarray]) -> object:
            return np.sum(np.tanh(p["W"] @ x))

        exact = np.outer(1 - np.tanh(W @ x) ** 2, x)
        tolerance = {"forward": 1e-6, "backward": 1e-6}.get(method, 1e-9)
        grad = numerical_gradient(loss, {"W": W}, method=method)
        np.testing.assert_allclose(grad["W"], exact, atol=tolerance)

    def test_params_are_not_mutated(self, rng: np.random.Generator) -> None:
        params = {"W": rng.normal(size=(3, 3)), "b": rng.normal(size=3)}
        before = {k: v.copy() for k, v in params.items()}
        numerical_gradient(lambda p: float(np.sum(p["W"] ** 3) + p["b"].sum()), params)
        for key in params:
            assert np.array_equal(params[key], before[key])


class TestBadInput:
    def test_unknown_method(self) -> None:
        with pytest.raises(InvalidArgumentError, match="method: got 'sideways'"):
            derivative(cube, 1.0, method="sideways")

    @pytest.mark.parametrize("eps", [0.0, -1e-3, float("nan"), float("inf")])
    def test_eps_must_be_positive(self, eps: float) -> None:
        with pytest.raises(InvalidArgumentError, match="eps: got"):
            derivative(cube, 1.0, eps=eps)
        with pytest.raises(InvalidArgumentError, match="eps: got"):
            numerical_gradient(lambda p: float(p.sum()), np.ones(2), eps=eps)

    def test_eps_must_be_a_number(self) -> None:
        with pytest.raises(InvalidTypeError, match="eps: got str"):
            derivative(cube, 1.0, eps="0.1")  # type: ignore[call-overload]

    def test_function_returning_array(self) -> None:
        with pytest.raises(LossEvaluationError, match=r"shape \(2,\).*expected a scalar"):
            derivative(lambda t: np.array([t, t]), 1.0)

    def test_function_raising(self) -> None:
        def broken(t: float) -> float:
            raise ZeroDivisionError("boom")

        with pytest.raises(LossEvaluationError, match="ZeroDivisionError.*boom"):
            derivative(broken, 1.0)

    def test_function_returning_nan(self) -> None:
        with pytest.raises(LossEvaluationError, match="nan"):
            derivative(lambda t: math.sqrt(t) if t > 1 else float("nan"), 1.0)

    def test_complex_step_on_a_function_that_drops_the_imaginary_part(self) -> None:
        with pytest.raises(LossEvaluationError, match="method='complex'"):
            derivative(lambda t: abs(t) ** 2, 1.0, method="complex")

    def test_x_must_be_finite(self) -> None:
        with pytest.raises(InvalidArgumentError, match="x: got inf"):
            derivative(cube, float("inf"))

    def test_errors_are_gradprobe_errors(self) -> None:
        with pytest.raises(gradprobe.GradprobeError):
            derivative(cube, 1.0, method="nope")


def test_numerical_gradient_matches_scipy_approx_fprime(rng: np.random.Generator) -> None:
    """An independent reference implementation agrees to its own (forward-difference) accuracy."""
    from scipy.optimize import approx_fprime

    A = rng.normal(size=(5, 5))
    x = rng.normal(size=5)

    def f(v: np.ndarray) -> float:
        return float(np.log(np.sum(np.exp(A @ v))))

    reference = approx_fprime(x, f, 1e-8)
    ours = numerical_gradient(f, x)
    np.testing.assert_allclose(ours, reference, atol=1e-6)
    # ... and ours is the more accurate of the two against the closed form.
    softmax = np.exp(A @ x) / np.sum(np.exp(A @ x))
    exact = A.T @ softmax
    assert np.max(np.abs(ours - exact)) < np.max(np.abs(reference - exact))
