"""Entry bounds: they cover the actual error of real differences, and the verdict rules."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from gradprobe._params import ParameterLayout
from gradprobe.check.bounds import (
    CLEAR,
    OK,
    SUSPICIOUS,
    UNCLEAR,
    WRONG,
    complex_bound,
    first_bounds,
    judge,
)
from gradprobe.numdiff.noise import measure_noise
from gradprobe.numdiff.perturbation import LossOnTheta, evaluate_differences

UNIT = float(np.finfo(np.float64).eps)
THRESHOLDS = (1e-6, 1e-4)


def noisy_quadratic(sigma: float) -> tuple:
    """A quadratic plus deterministic noise of known size: a hash of θ's bits."""
    A = np.random.default_rng(0).normal(size=(40, 40)) / 7
    H = A @ A.T + np.eye(40)

    def loss(p: dict) -> float:
        w = p["w"]
        seed = int.from_bytes(hashlib.sha256(np.ascontiguousarray(w).tobytes()).digest()[:8])
        return float(0.5 * w @ H @ w + 3.0 + sigma * np.random.default_rng(seed).normal())

    w = np.random.default_rng(1).normal(size=40)
    return loss, w, H @ w


@pytest.mark.parametrize("sigma", [1e-13, 1e-10, 1e-7])
@pytest.mark.parametrize("eps", [None, 1e-4])
def test_first_bounds_cover_the_rounding_of_central_differences(
    sigma: float, eps: float | None
) -> None:
    # A quadratic has no truncation error: the central difference errs by noise alone,
    # and the bound from the measured noise must cover it in every entry.
    loss, w, exact = noisy_quadratic(sigma)
    layout = ParameterLayout.from_params({"w": w})
    evaluate = LossOnTheta(loss, layout)
    center = evaluate(w)
    noise = measure_noise(evaluate, w.copy(), center, np.random.default_rng(2))
    assert noise.sigma == pytest.approx(sigma, rel=2.0)
    indices = np.arange(40)
    differences = evaluate_differences(evaluate, layout, w, indices, eps, "central", center=center)
    bound, reach = first_bounds(differences, w, exact, noise.sigma, UNIT, "central")
    error = np.abs(differences.gradient - exact)
    assert np.all(error <= bound)
    # ... and is not loose: the typical error is a sizable fraction of it.
    assert np.median(error / bound) > 0.05
    assert np.all(reach >= bound)


def test_richardson_bound_covers_its_error() -> None:
    def loss(p: dict) -> float:
        return float(np.sum(np.exp(np.sin(3 * p["w"]))))

    w = np.linspace(-1, 1, 30)
    exact = 3 * np.cos(3 * w) * np.exp(np.sin(3 * w))
    layout = ParameterLayout.from_params({"w": w})
    evaluate = LossOnTheta(loss, layout)
    center = evaluate(w)
    for eps in (None, 0.2, 1e-3):
        differences = evaluate_differences(
            evaluate, layout, w, np.arange(30), eps, "richardson", center=center
        )
        bound, _ = first_bounds(differences, w, exact, 1e-16, UNIT, "richardson")
        assert np.all(np.abs(differences.gradient - exact) <= bound), eps


def test_complex_bound_has_a_floor_at_the_gradient_scale() -> None:
    tiny = complex_bound(np.array([1e-204]), np.array([0.0]), 0.0, UNIT, scale=1.0)
    assert tiny[0] >= 8 * UNIT
    assert complex_bound(np.array([1.0]), np.array([1.0]), 1e-9, UNIT)[0] >= 4e-9


class TestJudge:
    def test_bands_and_clear_factor(self) -> None:
        analytic = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
        numerical = np.array([1.0 + 5e-7, 1.01, 1.01, 1.0 + 5e-5, 1.02, np.nan])
        bound = np.array([1e-9, 1e-1, 1e-3, 1e-6, 1e-2, 1.0])
        codes, significance = judge(analytic, numerical, bound, THRESHOLDS)
        # below the first band / within bound / > 3 bounds: wrong / suspicious / 1-3 bounds
        assert codes.tolist() == [OK, OK, WRONG, SUSPICIOUS, UNCLEAR, UNCLEAR]
        assert significance[2] == pytest.approx(0.01 / 1e-3 / (1.0 + 1e-16), rel=1e-6)

    def test_exact_agreement_with_zero_bound_is_ok(self) -> None:
        codes, significance = judge(np.zeros(2), np.zeros(2), np.zeros(2), THRESHOLDS)
        assert codes.tolist() == [OK, OK] and significance.tolist() == [0.0, 0.0]

    def test_the_clear_factor_is_the_boundary(self) -> None:
        at = judge(np.array([0.0]), np.array([CLEAR]), np.array([1.0]), THRESHOLDS)[0]
        beyond = judge(np.array([0.0]), np.array([CLEAR * 1.01]), np.array([1.0]), THRESHOLDS)[0]
        assert at[0] == UNCLEAR and beyond[0] == WRONG
