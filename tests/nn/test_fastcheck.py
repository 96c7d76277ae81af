"""The structure-aware MLP check gives the plain per-coordinate differences of net.loss."""

from __future__ import annotations

import numpy as np
import pytest

from gradprobe import check_gradients
from gradprobe._params import ParameterLayout
from gradprobe.errors import InvalidArgumentError
from gradprobe.nn.check import check_model
from gradprobe.nn.fastcheck import MLPEvaluator, MLPLoss
from gradprobe.nn.losses import encode_targets
from gradprobe.nn.mlp import MLP
from gradprobe.numdiff.perturbation import coordinate_steps, evaluate_differences

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
    structured = evaluate_differences(
        MLPEvaluator(net, X, y, theta), layout, theta, indices, None, "central", steps
    )
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


def test_structure_aware_check_pins_a_planted_backprop_bug(monkeypatch: pytest.MonkeyPatch) -> None:
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


def test_the_evaluator_refuses_another_point() -> None:
    net, X, y = _network([3, 2], "linear", "linear", 0.1)
    layout = ParameterLayout.from_params(net.params)
    theta = layout.flatten(net.params)
    evaluate = MLPEvaluator(net, X, y, theta)
    with pytest.raises(InvalidArgumentError, match="theta"):
        evaluate.coordinates(theta + 1.0, np.array([0]), np.array([0.5]))


def test_no_coordinates_give_no_values() -> None:
    net, X, y = _network([3, 2], "linear", "linear", 0.1)
    layout = ParameterLayout.from_params(net.params)
    theta = layout.flatten(net.params)
    empty = MLPEvaluator(net, X, y, theta).coordinates(
        theta, np.empty(0, dtype=np.intp), np.empty(0)
    )
    assert empty.shape == (0,)


# -- the routes inside MLPEvaluator, each against an independent computation ------------


def _extended_loss(net: MLP, X: np.ndarray, targets: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """net.loss recomputed in extended precision (x87 long double), as a 0-d array."""
    layout = ParameterLayout.from_params(net.params)
    params = {k: v.astype(np.longdouble) for k, v in layout.unflatten(theta).items()}
    functions = {
        "relu": lambda z: np.maximum(z, 0),
        "leaky_relu": lambda z: np.where(z > 0, z, np.longdouble("0.01") * z),
        "tanh": np.tanh,
        "sigmoid": lambda z: (1 + np.tanh(z / 2)) / 2,
        "linear": lambda z: z,
    }
    a = X.astype(np.longdouble)
    for layer in range(1, net.n_layers + 1):
        z = a @ params[f"W{layer}"].T + params[f"b{layer}"]
        a = functions[net.activation](z)
    y, m = targets.astype(np.longdouble), X.shape[0]
    if net.output == "softmax":
        top = z.max(axis=1, keepdims=True)
        lse = top + np.log(np.exp(z - top).sum(axis=1, keepdims=True))
        value = np.sum(y * (lse - z)) / m
    elif net.output == "sigmoid":
        value = np.sum(np.logaddexp(0, z) - y * z) / m
    else:
        value = np.mean((z - y) ** 2)
    squares = sum(np.sum(params[f"W{q}"] ** 2) for q in range(1, net.n_layers + 1))
    return value + net.l2 / (2 * m) * squares


def _changes_against_extended(net: MLP, X: np.ndarray, y: np.ndarray, eps: float | None) -> dict:
    """Assert each value minus the cost at θ is the loss change to within one ulp of the cost."""
    layout = ParameterLayout.from_params(net.params)
    theta = layout.flatten(net.params)
    indices = np.arange(layout.size)
    steps = coordinate_steps("central", theta, indices, eps)
    evaluate = MLPEvaluator(net, X, y, theta)
    both = np.concatenate([indices, indices])
    moved = np.concatenate([theta + steps, theta - steps])
    values = evaluate.coordinates(theta, both, moved)
    targets = encode_targets(y, net.output, net.layer_sizes[-1], X.shape[0])
    center = _extended_loss(net, X, targets, theta)
    for index, value, row in zip(both.tolist(), values, moved, strict=True):
        point = theta.copy()
        point[index] = row
        exact = _extended_loss(net, X, targets, point) - center
        # value − center is exact (Sterbenz), so this is value's own rounding and nothing
        # more: one ulp (the plain path is off by several ulp of the loss here).
        ulp = np.spacing(max(abs(value), abs(evaluate.center)))
        assert abs((value - evaluate.center) - exact) <= ulp, index
    return evaluate.paths


extended = pytest.mark.skipif(
    np.finfo(np.longdouble).eps > 1e-18, reason="needs an extended-precision long double"
)


@extended
@pytest.mark.parametrize("eps", [None, 1e-3, 0.7])
@pytest.mark.parametrize(("sizes", "activation", "output", "l2"), ARCHITECTURES)
def test_each_value_is_the_loss_change_to_one_ulp(
    sizes: list[int], activation: str, output: str, l2: float, eps: float | None
) -> None:
    # The default step goes through the tabulated series, ε = 1e-3 partly past its reach,
    # ε = 0.7 past the log1p/expm1 expansion of the output loss (the plain formulas).
    net, X, y = _network(sizes, activation, output, l2)
    _changes_against_extended(net, X, y, eps)


def _kinked_network() -> tuple:
    """A ReLU network with a hidden unit of each layer within ε = 1e-3 of its kink."""
    net, X, y = _network([5, 7, 6, 3], "relu", "softmax", 0.1)
    X[3, 2] = 0.0  # an input of exactly zero: its weights move no example-3 pre-activation
    z1 = net.forward(X)[1].Z[1]
    net.params["b1"][4] -= z1[2, 4] - 2e-4  # Z1[2, 4] = 2e-4: W1[4, :] and b1[4] cross it
    z2 = net.forward(X)[1].Z[2]
    net.params["b2"][1] -= z2[5, 1] + 1e-5  # Z2[5, 1] = −1e-5: crossed by layer-1 moves
    return net, X, y


def test_kinks_inside_the_step_give_the_plain_one_sided_slopes() -> None:
    net, X, y = _kinked_network()
    plain, structured, _ = _both(net, X, y, eps=1e-3)
    for side in ("gradient", "forward", "backward"):
        np.testing.assert_allclose(
            getattr(structured, side), getattr(plain, side), rtol=1e-9, atol=1e-12
        )
    # Both kinks are really inside ±ε: the slopes on the two sides differ there.
    layout = ParameterLayout.from_params(net.params)
    w1 = layout.span("W1")
    assert np.max(np.abs(plain.forward - plain.backward)[w1][4 * 5 : 5 * 5]) > 1e-4
    paths = _changes_against_extended(net, X, y, 1e-3)
    assert paths["propagated"] > 0  # layer-1 moves taken through the crossed layer-2 kink
    assert paths["unchanged"] > 0 and paths["series"] > 0 and paths["output"] > 0


def test_check_model_flags_the_same_kinks_as_the_plain_check() -> None:
    net, X, y = _kinked_network()
    fast = check_model(net, X, y, mode="full", eps=1e-3)
    plain = check_gradients(
        MLPLoss(net, X, y), net.params, net.loss_and_grads(X, y)[1], eps=1e-3, mode="full"
    )
    assert fast.verdict == plain.verdict
    assert [e.kink for e in fast.entries] == [e.kink for e in plain.entries]
    assert any(e.kink for e in fast.entries)


def test_skipped_examples_are_exactly_those_whose_entry_does_not_move() -> None:
    net, X, y = _kinked_network()
    layout = ParameterLayout.from_params(net.params)
    theta = layout.flatten(net.params)
    evaluate = MLPEvaluator(net, X, y, theta)
    index = layout.span("W1").start + 4 * 5 + 2  # W1[4, 2]: input column 2, X[3, 2] = 0
    evaluate.coordinates(theta, np.array([index]), np.array([theta[index] + 1e-3]))
    z1 = net.forward(X)[1].Z[1][:, 4]
    moved = np.maximum(z1 + 1e-3 * X[:, 2], 0) != np.maximum(z1, 0)
    assert evaluate.paths["unchanged"] == X.shape[0] - np.count_nonzero(moved)
    assert 0 < evaluate.paths["unchanged"] < X.shape[0]


def test_the_series_degree_is_the_smallest_within_the_tables_bound() -> None:
    net, X, y = _network([5, 7, 6, 3], "relu", "softmax", 0.1)
    layout = ParameterLayout.from_params(net.params)
    evaluate = MLPEvaluator(net, X, y, layout.flatten(net.params))
    assert evaluate._series_table(1) is not None
    steepest = evaluate._steepest[1]
    for unit in range(len(steepest)):
        for peak in (0.0, 1e-12, 1e-8, 1e-6, 1e-4, 1e-3 / steepest[unit]):
            degree = evaluate._series_degree(1, unit, peak)
            r = peak * steepest[unit]

            def bound(d: int, r: float = r) -> float:
                return 3.2 * r ** (d + 1) / (1 - r)

            assert 1 <= degree <= 6
            assert degree == 6 or bound(degree) <= 4e-21
            assert degree == 1 or bound(degree - 1) > 4e-21
    assert evaluate._series_degree(1, 0, 1e-8) < 6  # short steps take fewer terms
