"""The structure-aware MLP check gives the plain per-coordinate differences of net.loss."""

from __future__ import annotations

import numpy as np
import pytest

from gradprobe import check_gradients
from gradprobe._params import ParameterLayout
from gradprobe.batched import many_differences
from gradprobe.errors import InvalidArgumentError
from gradprobe.nn.check import check_model
from gradprobe.nn.fastcheck import MLPEvaluator, MLPLoss, batched_output_loss
from gradprobe.nn.losses import OUTPUTS, encode_targets
from gradprobe.nn.mlp import MLP
from gradprobe.numdiff import coordinate_steps, evaluate_differences

ARCHITECTURES = [
    ([5, 7, 6, 3], "relu", "softmax", 0.1),
    ([4, 6, 5, 1], "tanh", "sigmoid", 0.2),
    ([4, 6, 2], "sigmoid", "linear", 0.3),
    ([6, 8, 8, 8, 3], "leaky_relu", "softmax", 0.05),
    ([3, 2], "linear", "linear", 0.1),
]


def _network(sizes: list[int], activation: str, output: str, l2: float) -> tuple:
    rng = np.random.default_rng(len(sizes) * 10 + sizes[0])
    net = MLP(sizes, activation=activation, output=output, l2=l2, seed=1).eval()
    for name in net.params:  # move biases off zero so every path is exercised
        net.params[name] = net.params[name] + 0.1 * rng.normal(size=net.params[name].shape)
    m = 20
    X = rng.normal(size=(m, sizes[0]))
    if output == "softmax":
        y = rng.integers(0, sizes[-1], m)
    elif output == "sigmoid":
        y = rng.integers(0, 2, (m, sizes[-1]))
    else:
        y = rng.normal(size=(m, sizes[-1]))
    return net, X, y


def _both(net: MLP, X: np.ndarray, y: np.ndarray, eps: float | None) -> tuple:
    layout = ParameterLayout.from_params(net.params)
    theta = layout.flatten(net.params)
    indices = np.arange(layout.size)
    steps = coordinate_steps("central", theta, indices, eps)
    plain = evaluate_differences(
        MLPLoss(net, X, y), layout, theta.copy(), indices, None, "central", steps
    )
    structured = many_differences(MLPEvaluator(net, X, y, theta), theta, indices, steps, "central")
    return plain, structured, steps


@pytest.mark.parametrize(("sizes", "activation", "output", "l2"), ARCHITECTURES)
def test_every_entry_equals_the_plain_central_difference(
    sizes: list[int], activation: str, output: str, l2: float
) -> None:
    # At ε = 1e-3 the plain quotient's own rounding noise (an ulp of the loss over 2ε,
    # about 1e-13) is below the tolerance, so equality to 1e-9 relative or 1e-12
    # absolute is a real test of the structured computation.
    net, X, y = _network(sizes, activation, output, l2)
    plain, structured, _ = _both(net, X, y, eps=1e-3)
    np.testing.assert_allclose(structured.gradient, plain.gradient, rtol=1e-9, atol=1e-12)
    assert structured.evaluations == plain.evaluations
    assert structured.center == plain.center


@pytest.mark.parametrize(("sizes", "activation", "output", "l2"), ARCHITECTURES)
def test_default_steps_agree_to_the_rounding_noise(
    sizes: list[int], activation: str, output: str, l2: float
) -> None:
    # At the default ε ≈ 6e-6 both quotients carry rounding noise of a few ulp of the
    # loss over 2ε; they must agree to that, and nothing more can be asked.
    net, X, y = _network(sizes, activation, output, l2)
    plain, structured, steps = _both(net, X, y, eps=None)
    noise = 8 * np.finfo(float).eps * max(abs(plain.center), 1.0) / (2 * steps)
    assert np.all(np.abs(structured.gradient - plain.gradient) <= noise)


def test_check_model_full_matches_the_plain_check() -> None:
    net, X, y = _network([6, 8, 8, 8, 3], "tanh", "softmax", 0.05)
    layout = ParameterLayout.from_params(net.params)
    fast = check_model(net, X, y, mode="full", eps=1e-3)
    plain = check_gradients(
        MLPLoss(net, X, y), net.params, net.loss_and_grads(X, y)[1], eps=1e-3, mode="full"
    )
    assert fast.verdict == plain.verdict == "ok"
    assert fast.checked == plain.checked == layout.size
    np.testing.assert_allclose(
        [e.numerical for e in fast.entries],
        [e.numerical for e in plain.entries],
        rtol=1e-9,
        atol=1e-12,
    )


def test_structured_check_pins_a_planted_backprop_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    net, X, y = _network([5, 7, 6, 3], "relu", "softmax", 0.1)
    original = MLP._backward

    def dropped_l2(self: MLP, cache: object, targets: np.ndarray) -> dict[str, np.ndarray]:
        grads = original(self, cache, targets)  # type: ignore[arg-type]
        grads["W2"] = grads["W2"] - (self.l2 / targets.shape[0]) * cache.params["W2"]  # type: ignore[attr-defined]
        return grads

    monkeypatch.setattr(MLP, "_backward", dropped_l2)
    report = check_model(net, X, y, mode="full")
    assert report.wrong_parameters == ["W2"]
    assert "regularization" in (report.parameter("W2").diagnosis or "")


@pytest.mark.parametrize("output", sorted(OUTPUTS))
def test_batched_output_loss_equals_the_loss_table(output: str) -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(size=(4, 6, 3)) * 3
    labels = rng.integers(0, 2, (6, 3)) if output != "linear" else rng.normal(size=(6, 3))
    if output == "softmax":
        labels = rng.integers(0, 3, 6)
    targets = encode_targets(labels, output, 3, 6)
    expected = [OUTPUTS[output].loss(row, targets) for row in z]
    np.testing.assert_allclose(batched_output_loss(output, z, targets), expected, rtol=1e-14)


def test_the_evaluator_refuses_another_point() -> None:
    net, X, y = _network([3, 2], "linear", "linear", 0.1)
    layout = ParameterLayout.from_params(net.params)
    theta = layout.flatten(net.params)
    evaluate = MLPEvaluator(net, X, y, theta)
    with pytest.raises(InvalidArgumentError, match="theta"):
        evaluate.coordinates(theta + 1.0, np.array([0]), np.array([0.5]))
