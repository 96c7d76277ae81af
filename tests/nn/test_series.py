"""The small-argument series of the structure-aware check, against NumPy, SciPy and SymPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
from scipy.special import logsumexp as scipy_logsumexp

from gradprobe.nn._series import expm1_small, horner, log1p_small, log_moment_series, logsumexp

UNIT = float(np.finfo(np.float64).eps)


def test_logsumexp_matches_scipy_and_survives_large_logits(rng: np.random.Generator) -> None:
    z = rng.normal(size=(6, 4)) * 5
    np.testing.assert_allclose(logsumexp(z), scipy_logsumexp(z, axis=-1, keepdims=True), rtol=1e-14)
    huge = np.array([[1000.0, 1000.0, -1000.0]])
    np.testing.assert_allclose(logsumexp(huge), [[1000.0 + math.log(2)]], rtol=1e-15)
    assert logsumexp(z).shape == (6, 1)


def test_horner_is_the_polynomial_without_a_constant_term(rng: np.random.Generator) -> None:
    x = rng.normal(size=10)
    coefficients = rng.normal(size=5)
    # np.polyval wants the highest power first and a constant term: append 0.
    expected = np.polyval([*coefficients[::-1], 0.0], x)
    np.testing.assert_allclose(horner(x.copy(), coefficients), expected, rtol=1e-13)


def test_horner_broadcasts_array_coefficients(rng: np.random.Generator) -> None:
    x = rng.normal(size=(3, 1))
    coefficients = rng.normal(size=(2, 1, 4))  # two powers, one row of 4 per power
    expected = coefficients[0] * x + coefficients[1] * x**2
    np.testing.assert_allclose(horner(x, coefficients), expected, rtol=1e-14)
    assert horner(x, coefficients).shape == (3, 4)


@pytest.mark.parametrize("peak", [1e-3, 1e-6, 1e-12])
def test_expm1_small_is_exact_to_rounding_below_its_threshold(peak: float) -> None:
    x = np.linspace(-peak, peak, 101)
    np.testing.assert_allclose(expm1_small(x, peak), np.expm1(x), rtol=4 * UNIT, atol=0)


@pytest.mark.parametrize("peak", [1.1e-3, 1e-6, 1e-12])
def test_log1p_small_is_exact_to_rounding_below_its_threshold(peak: float) -> None:
    x = np.linspace(-peak, peak, 101)
    np.testing.assert_allclose(log1p_small(x, peak), np.log1p(x), rtol=4 * UNIT, atol=0)


def test_above_the_threshold_the_library_functions_are_used() -> None:
    x = np.array([-0.5, 0.1, 2.0])
    np.testing.assert_array_equal(expm1_small(x, 2.0), np.expm1(x))
    np.testing.assert_array_equal(log1p_small(x, 2.0), np.log1p(x))
    # The Taylor polynomials themselves would be far off there.
    assert abs(horner(np.array([2.0]), [1 / math.factorial(n) for n in range(1, 6)])[0]
               - math.expm1(2.0)) > 1e-2  # fmt: skip


def test_the_log_moment_series_is_the_cumulant_series() -> None:
    # One example, one unit, three classes: a ↦ log Σ w_c exp(a j_c) by SymPy.
    j = [1, -2, sympy.Rational(1, 2)]
    w = [sympy.Rational(1, 5), sympy.Rational(3, 10), sympy.Rational(1, 2)]
    a = sympy.symbols("a")
    moment = sum(wc * sympy.exp(a * jc) for wc, jc in zip(w, j, strict=True))
    series = sympy.series(sympy.log(moment), a, 0, 6)
    expected = [float(series.removeO().coeff(a, n)) for n in range(1, 6)]
    jacobian = np.array([[[float(v) for v in j]]])
    weights = np.array([[float(v) for v in w]])
    got = [float(c[0, 0]) for c in log_moment_series(jacobian, weights, 5)]
    np.testing.assert_allclose(got, expected, rtol=1e-13)


def test_the_first_coefficients_are_mean_variance_and_skew(rng: np.random.Generator) -> None:
    m, n, c = 4, 3, 5
    jacobian = rng.normal(size=(m, n, c))
    weights = rng.random((m, c))
    weights /= weights.sum(axis=1, keepdims=True)
    first, second, third = log_moment_series(jacobian, weights, 3)
    mean = np.einsum("mnc,mc->mn", jacobian, weights)
    centred = jacobian - mean[..., None]
    variance = np.einsum("mnc,mc->mn", centred**2, weights)
    skew = np.einsum("mnc,mc->mn", centred**3, weights)
    np.testing.assert_allclose(first, mean, rtol=1e-12)
    np.testing.assert_allclose(second, variance / 2, rtol=1e-12)
    np.testing.assert_allclose(third, skew / 6, rtol=1e-10, atol=1e-14)
    assert first.shape == (m, n)


def test_a_shared_jacobian_broadcasts_over_examples_and_the_remainder_is_small() -> None:
    rng = np.random.default_rng(3)
    jacobian = rng.normal(size=(1, 2, 4))
    weights = rng.random((3, 4))
    weights /= weights.sum(axis=1, keepdims=True)
    coefficients = log_moment_series(jacobian, weights, 4)
    assert all(coefficient.shape == (3, 2) for coefficient in coefficients)
    for step in (1e-2, 1e-3):
        exact = np.log(np.einsum("mc,nc->mn", weights, np.exp(step * jacobian[0])))
        approx = sum(coefficient * step ** (k + 1) for k, coefficient in enumerate(coefficients))
        # The truncation is of order a⁵.
        assert np.max(np.abs(exact - approx)) < 10 * step**5
