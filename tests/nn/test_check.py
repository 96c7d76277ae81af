"""check_model: the proof that the MLP's own backprop is right, and that it would notice."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gradprobe import MLP, NondeterministicLossError, check_gradients, check_model
from gradprobe.errors import InvalidTypeError
from gradprobe.nn.activations import ACTIVATIONS

OUTPUT_UNITS = {"sigmoid": 1, "softmax": 3, "linear": 2}


def _problem(output: str, seed: int = 0, m: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, 3))
    if output == "sigmoid":
        return X, rng.integers(0, 2, m)
    if output == "softmax":
        return X, rng.integers(0, 3, m)
    return X, rng.normal(size=(m, 2))


@pytest.mark.parametrize(
    ("activation", "output", "l2", "dropout"),
    list(itertools.product(ACTIVATIONS, OUTPUT_UNITS, (0.0, 0.7), (0.0, 0.3))),
)
def test_every_combination_passes(activation: str, output: str, l2: float, dropout: float) -> None:
    net = MLP(
        [3, 4, 3, OUTPUT_UNITS[output]],
        activation=activation,
        output=output,
        l2=l2,
        dropout=dropout,
        seed=1,
    )
    X, y = _problem(output)
    report = check_model(net, X, y)
    assert report.difference < 1e-7, str(report)
    assert report.verdict == "ok"
    assert report.passed


class _WrongW2(MLP):
    """Backprop with a planted bug: dW2 is 5% too large."""

    def backward(self, cache, y):  # type: ignore[no-untyped-def]
        grads = super().backward(cache, y)
        grads["W2"] = grads["W2"] * 1.05
        return grads


class _ForgetsL2(MLP):
    """Backprop with a planted bug: the L2 term is left out of dW1."""

    def backward(self, cache, y):  # type: ignore[no-untyped-def]
        grads = super().backward(cache, y)
        m = cache.A[0].shape[0]
        grads["W1"] = grads["W1"] - self.l2 / m * cache.params["W1"]
        return grads


def test_planted_bug_is_found_and_named() -> None:
    net = _WrongW2([3, 4, 3, 1], activation="tanh", seed=0)
    report = check_model(net, *_problem("sigmoid"))
    assert not report.passed
    assert report.verdict == "wrong"
    assert report.wrong_parameters == ["W2"]
    assert report.parameter("W1").verdict == "ok"


def test_forgotten_regularization_is_found() -> None:
    X, y = _problem("softmax")
    assert check_model(_ForgetsL2([3, 4, 3, 3], l2=0.0, seed=0), X, y).passed
    report = check_model(_ForgetsL2([3, 4, 3, 3], l2=0.5, seed=0), X, y)
    assert report.wrong_parameters == ["W1"]


def test_report_says_dropout_off_and_l2_included() -> None:
    net = MLP([3, 4, 1], dropout=0.25, l2=0.3, seed=0)
    report = check_model(net, *_problem("sigmoid"))
    notes = " ".join(report.notes)
    assert "dropout (p=0.25) switched off" in notes
    assert "λ=0.3" in notes
    plain = " ".join(check_model(MLP([3, 4, 1], seed=0), *_problem("sigmoid")).notes)
    assert "dropout" not in plain and "no L2 term" in plain


def test_dropout_would_break_the_check_if_left_on() -> None:
    net = MLP([3, 4, 1], dropout=0.5, seed=0)
    X, y = _problem("sigmoid")
    params = {name: value.copy() for name, value in net.params.items()}
    with pytest.raises(NondeterministicLossError):
        check_gradients(lambda p: net.loss(X, y, params=p), params, net.loss_and_grads(X, y)[1])


@pytest.mark.parametrize("training", [True, False])
def test_network_left_as_it_was(training: bool) -> None:
    net = MLP([3, 5, 2], dropout=0.4, seed=3)
    net.training = training
    before = {name: value.copy() for name, value in net.params.items()}
    arrays = dict(net.params)
    check_model(net, *_problem("softmax", m=6))
    assert net.training is training
    for name, value in net.params.items():
        assert value is arrays[name]
        np.testing.assert_array_equal(value, before[name])


def test_passes_after_training_too() -> None:
    X, y = _problem("softmax", m=20)
    net = MLP([3, 6, 3], activation="tanh", l2=0.1, dropout=0.2, seed=0)
    before = check_model(net, X[:5], y[:5])
    history = net.fit(X, y, epochs=200, lr=0.05, optimizer="adam")
    assert history.loss[-1] < history.loss[0]
    after = check_model(net, X[:5], y[:5])
    assert before.difference < 1e-7 and after.difference < 1e-7


def test_sample_option_is_passed_on() -> None:
    net = MLP([3, 8, 8, 1], seed=0)
    report = check_model(net, *_problem("sigmoid"), sample=3)
    assert report.sampled
    assert report.passed


def test_rejects_other_models() -> None:
    with pytest.raises(InvalidTypeError, match="net: got dict"):
        check_model({"W": np.ones(2)}, np.ones((2, 2)), [0, 1])  # type: ignore[arg-type]
