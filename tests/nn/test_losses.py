"""Output/loss pairs: values against scikit-learn, gradients against numerical ones, stability."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import log_loss, mean_squared_error

from gradprobe import numerical_gradient
from gradprobe.errors import InvalidArgumentError, ShapeMismatchError
from gradprobe.nn.losses import OUTPUTS, encode_targets, get_output, softmax


def _targets(output: str, rng: np.random.Generator) -> np.ndarray:
    if output == "sigmoid":
        return rng.integers(0, 2, (8, 2)).astype(float)
    if output == "softmax":
        return np.eye(3)[rng.integers(0, 3, 8)]
    return rng.normal(size=(8, 3))


def test_values_match_sklearn(rng: np.random.Generator) -> None:
    z = rng.normal(size=(20, 1)) * 3
    y = rng.integers(0, 2, 20)
    sig = get_output("sigmoid")
    assert sig.loss(z, y[:, None].astype(float)) == pytest.approx(
        log_loss(y, sig.activate(z)[:, 0]), rel=1e-12
    )
    z3 = rng.normal(size=(20, 3)) * 3
    y3 = rng.integers(0, 3, 20)
    assert get_output("softmax").loss(z3, np.eye(3)[y3]) == pytest.approx(
        log_loss(y3, softmax(z3)), rel=1e-12
    )
    t = rng.normal(size=(20, 3))
    assert get_output("linear").loss(z3, t) == pytest.approx(mean_squared_error(t, z3))


@pytest.mark.parametrize("output", list(OUTPUTS))
def test_gradient_matches_numerical(output: str, rng: np.random.Generator) -> None:
    pair = OUTPUTS[output]
    width = 2 if output == "sigmoid" else 3
    z = rng.normal(size=(8, width))
    y = _targets(output, rng)[:, :width]
    numerical = numerical_gradient(lambda p: pair.loss(p["z"], y), {"z": z})["z"]
    analytic = pair.gradient(pair.activate(z), y)
    assert np.linalg.norm(analytic - numerical) / np.linalg.norm(numerical) < 1e-8


@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_huge_logits_stay_finite(output: str) -> None:
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0]])
    y = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    pair = OUTPUTS[output]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = pair.loss(z, y)
        gradient = pair.gradient(pair.activate(z), y)
    assert np.isfinite(value) and np.all(np.isfinite(gradient))
    # The confidently wrong first row costs about 2·10⁴ nats: not clipped, not infinite.
    assert value > 5e3


def test_encode_targets() -> None:
    np.testing.assert_array_equal(encode_targets([1, 0], "sigmoid", 1, 2), [[1.0], [0.0]])
    np.testing.assert_array_equal(encode_targets([2, 0], "softmax", 3, 2), np.eye(3)[[2, 0]])
    one_hot = np.eye(3)[[2, 0]]
    np.testing.assert_array_equal(encode_targets(one_hot, "softmax", 3, 2), one_hot)
    np.testing.assert_array_equal(encode_targets([1.5, 2.5], "linear", 1, 2), [[1.5], [2.5]])
    labels = np.array([1, 0])
    encode_targets(labels, "sigmoid", 1, 2)[0, 0] = 7
    np.testing.assert_array_equal(labels, [1, 0])


@pytest.mark.parametrize(
    ("y", "output", "k", "error", "match"),
    [
        ([0, 3], "softmax", 3, InvalidArgumentError, "class labels 0..2"),
        ([0.5, 1], "softmax", 3, InvalidArgumentError, "integer class labels"),
        ([0, 1, 1], "sigmoid", 1, ShapeMismatchError, "expected 2 labels"),
        ([0, 2], "sigmoid", 1, InvalidArgumentError, r"targets in \[0, 1\]"),
        ([0.0, np.nan], "linear", 1, InvalidArgumentError, "NaN"),
        ([0.0, 1.0], "linear", 2, ShapeMismatchError, r"expected \(2, 2\)"),
        (np.ones((2, 4)), "softmax", 3, ShapeMismatchError, r"expected \(2, 3\)"),
    ],
)
def test_bad_targets(y: object, output: str, k: int, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        encode_targets(y, output, k, 2)


def test_unknown_output() -> None:
    with pytest.raises(InvalidArgumentError, match="sigmoid, softmax, linear"):
        get_output("hinge")
