"""The activation table: each derivative against a numerical one; a planted wrong one caught."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.nn.activations import ACTIVATIONS, LEAKY_SLOPE, Activation, get_activation, sigmoid


def _derivative_error(activation: Activation, z: np.ndarray) -> float:
    """Largest gap between the tabulated derivative and a central difference."""
    h = 1e-6
    numerical = (activation.function(z + h) - activation.function(z - h)) / (2 * h)
    return float(np.max(np.abs(activation.derivative(z) - numerical)))


@pytest.fixture
def points(rng: np.random.Generator) -> np.ndarray:
    z = rng.uniform(-4, 4, size=(50, 3))
    return z[np.abs(z) > 1e-3].reshape(-1)  # away from the ReLU kink


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_derivative_matches_numerical(name: str, points: np.ndarray) -> None:
    assert _derivative_error(ACTIVATIONS[name], points) < 1e-8


def test_planted_wrong_derivative_is_caught(points: np.ndarray) -> None:
    wrong = Activation("tanh", np.tanh, lambda z: 1 - np.tanh(z))
    assert _derivative_error(wrong, points) > 0.1


def test_closed_forms(points: np.ndarray) -> None:
    z = points
    np.testing.assert_allclose(ACTIVATIONS["relu"].function(z), np.where(z > 0, z, 0))
    np.testing.assert_allclose(
        ACTIVATIONS["leaky_relu"].function(z), np.where(z > 0, z, LEAKY_SLOPE * z)
    )
    np.testing.assert_allclose(sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-14)
    np.testing.assert_array_equal(ACTIVATIONS["linear"].function(z), z)
    np.testing.assert_array_equal(ACTIVATIONS["relu"].derivative(np.array([-1.0, 2.0])), [0, 1])


def test_sigmoid_is_stable_far_out() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = sigmoid(np.array([-1e4, -40.0, 0.0, 40.0, 1e4]))
        slopes = ACTIVATIONS["sigmoid"].derivative(np.array([-1e4, 1e4]))
    assert np.all(np.isfinite(values)) and np.all(np.isfinite(slopes))
    np.testing.assert_allclose(values[[0, 2, 4]], [0.0, 0.5, 1.0])


def test_input_not_modified(points: np.ndarray) -> None:
    copy = points.copy()
    for row in ACTIVATIONS.values():
        out = row.function(points)
        row.derivative(points)
        assert not np.shares_memory(out, points)
    np.testing.assert_array_equal(points, copy)


def test_lookup() -> None:
    assert get_activation("tanh") is ACTIVATIONS["tanh"]
    assert list(ACTIVATIONS) == [
        "relu",
        "leaky_relu",
        "tanh",
        "sigmoid",
        "linear",
        "gelu",
        "silu",
        "elu",
        "softplus",
    ]
    with pytest.raises(InvalidArgumentError, match="got 'swish', expected one of relu, leaky_relu"):
        get_activation("swish")
    with pytest.raises(InvalidTypeError):
        get_activation(3)  # type: ignore[arg-type]


def test_smooth_activations_match_their_closed_forms() -> None:
    from scipy.special import erf, expit

    z = np.linspace(-6, 6, 241)
    np.testing.assert_allclose(ACTIVATIONS["silu"].function(z), z * expit(z), rtol=1e-13)
    np.testing.assert_allclose(ACTIVATIONS["softplus"].function(z), np.log1p(np.exp(z)), rtol=1e-13)
    np.testing.assert_allclose(
        ACTIVATIONS["elu"].function(z), np.where(z > 0, z, np.exp(z) - 1), atol=1e-15
    )
    # GELU's tanh form stays within 1e-3 of the exact z·Φ(z).
    exact = 0.5 * z * (1 + erf(z / np.sqrt(2)))
    assert np.max(np.abs(ACTIVATIONS["gelu"].function(z) - exact)) < 1e-3
    # No overflow warnings at the float range's edge.
    with np.errstate(all="raise"):
        for name in ("gelu", "silu", "elu", "softplus"):
            ACTIVATIONS[name].function(np.array([-700.0, 700.0]))
            ACTIVATIONS[name].derivative(np.array([-700.0, 700.0]))
