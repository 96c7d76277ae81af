"""The MLP: its contract, its backprop against numerical gradients, L2, dropout and stability."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, r2_score

from gradprobe import MLP, numerical_gradient
from gradprobe import init as initializers
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, ShapeMismatchError


def _relative(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    flat_a = np.concatenate([a[k].ravel() for k in a])
    flat_b = np.concatenate([b[k].ravel() for k in a])
    return float(
        np.linalg.norm(flat_a - flat_b) / (np.linalg.norm(flat_a) + np.linalg.norm(flat_b))
    )


def _numerical(net: MLP, X: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    point = {name: value.copy() for name, value in net.params.items()}
    return numerical_gradient(lambda p: net.loss(X, y, params=p), point)  # type: ignore[no-any-return]


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(size=(7, 4)), rng.integers(0, 3, 7)


def test_contract_attributes() -> None:
    net = MLP([4, 6, 5, 3], activation="tanh", l2=0.1, dropout=0.2, seed=0)
    assert net.layer_sizes == [4, 6, 5, 3]
    assert net.activation == "tanh" and net.output == "softmax"
    assert (net.l2, net.dropout, net.training, net.n_layers) == (0.1, 0.2, True, 3)
    assert list(net.params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert net.params["W2"].shape == (5, 6) and net.params["b2"].shape == (5,)
    assert np.all(net.params["b1"] == 0)
    assert MLP([4, 1]).output == "sigmoid"
    assert net.eval() is net and not net.training and net.train().training


def test_params_are_live(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = data
    net = MLP([4, 5, 3], seed=0)
    before = net.forward(X)[0]
    net.params["b2"][:] = [10.0, 0.0, 0.0]
    after = net.forward(X)[0]
    assert np.all(after[:, 0] > before[:, 0])


def test_cache_layout(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = data
    net = MLP([4, 5, 3], dropout=0.5, seed=0)
    output, cache = net.forward(X)
    assert cache.A[0] is X or np.array_equal(cache.A[0], X)
    assert sorted(cache.Z) == [1, 2] and sorted(cache.A) == [0, 1, 2] and sorted(cache.masks) == [1]
    np.testing.assert_allclose(cache.Z[1], X @ net.params["W1"].T + net.params["b1"])
    np.testing.assert_allclose(cache.A[1], np.maximum(cache.Z[1], 0) * cache.masks[1])
    assert set(np.unique(cache.masks[1])) <= {0.0, 2.0}
    np.testing.assert_allclose(output.sum(axis=1), 1.0)
    assert net.eval().forward(X)[1].masks == {}


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid", "linear"])
@pytest.mark.parametrize(("output", "units"), [("sigmoid", 1), ("softmax", 3), ("linear", 2)])
def test_backward_matches_numerical_gradient(
    activation: str, output: str, units: int, rng: np.random.Generator
) -> None:
    X = rng.normal(size=(6, 3))
    y = {
        "sigmoid": rng.integers(0, 2, 6),
        "softmax": rng.integers(0, 3, 6),
        "linear": rng.normal(size=(6, 2)),
    }[output]
    net = MLP([3, 4, 3, units], activation=activation, output=output, l2=0.2, seed=2).eval()
    _, grads = net.loss_and_grads(X, y)
    assert list(grads) == list(net.params)
    assert _relative(grads, _numerical(net, X, y)) < 1e-7


def test_backward_with_dropout_matches_numerical_gradient_for_fixed_masks(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = data
    # tanh, not relu: a dropped-out row gives Z = b = 0 exactly, a relu kink.
    net = MLP([4, 6, 5, 3], activation="tanh", dropout=0.5, seed=0)
    _, cache = net.forward(X)
    grads = net.backward(cache, y)

    def fixed_mask_loss(params: dict[str, np.ndarray]) -> float:
        A = X
        for layer in (1, 2):
            A = np.tanh(A @ params[f"W{layer}"].T + params[f"b{layer}"]) * cache.masks[layer]
        Z = A @ params["W3"].T + params["b3"]
        shifted = Z - Z.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(y)), y].mean())

    numerical = numerical_gradient(fixed_mask_loss, {k: v.copy() for k, v in net.params.items()})
    assert _relative(grads, numerical) < 1e-7


def test_l2_term_in_loss_and_grads(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    plain = MLP([4, 5, 3], seed=0)
    regular = MLP([4, 5, 3], l2=0.4, seed=0)
    squares = sum(np.sum(plain.params[f"W{layer}"] ** 2) for layer in (1, 2))
    expected = 0.4 / (2 * len(y)) * squares
    assert regular.loss(X, y) - plain.loss(X, y) == pytest.approx(expected, rel=1e-12)
    _, g_plain = plain.loss_and_grads(X, y)
    value, g_regular = regular.loss_and_grads(X, y)
    assert value == pytest.approx(regular.loss(X, y), rel=1e-12)
    np.testing.assert_allclose(g_regular["W1"] - g_plain["W1"], 0.4 / len(y) * plain.params["W1"])
    np.testing.assert_array_equal(g_regular["b1"], g_plain["b1"])


def test_losses_match_sklearn(rng: np.random.Generator) -> None:
    X = rng.normal(size=(20, 3))
    binary = MLP([3, 4, 1], seed=0).eval()
    y2 = rng.integers(0, 2, 20)
    assert binary.loss(X, y2) == pytest.approx(log_loss(y2, binary.predict_proba(X)[:, 1]))
    multi = MLP([3, 4, 3], seed=0).eval()
    y3 = rng.integers(0, 3, 20)
    assert multi.loss(X, y3) == pytest.approx(log_loss(y3, multi.predict_proba(X)), rel=1e-10)
    assert multi.loss(X, np.eye(3)[y3]) == pytest.approx(multi.loss(X, y3), rel=1e-14)


def test_no_nan_or_inf_for_huge_logits(rng: np.random.Generator) -> None:
    X = rng.normal(size=(10, 2))
    for units, labels in ((1, rng.integers(0, 2, 10)), (3, rng.integers(0, 3, 10))):
        net = MLP([2, 3, units], activation="linear", seed=0).eval()
        net.params["W2"] *= 1e5
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            value, grads = net.loss_and_grads(X, labels)
            probabilities = net.predict_proba(X)
        assert np.isfinite(value) and value > 100
        assert all(np.all(np.isfinite(g)) for g in grads.values())
        assert np.all(np.isfinite(probabilities))


def test_predict_and_score(rng: np.random.Generator) -> None:
    X = rng.normal(size=(30, 3))
    binary = MLP([3, 4, 1], seed=1)
    y2 = rng.integers(0, 2, 30)
    predicted = binary.predict(X)
    assert predicted.shape == (30,)
    np.testing.assert_array_equal(predicted, (binary.predict_proba(X)[:, 1] >= 0.5).astype(int))
    assert binary.score(X, y2) == pytest.approx(accuracy_score(y2, predicted))
    multi = MLP([3, 4, 3], seed=1)
    y3 = rng.integers(0, 3, 30)
    assert multi.score(X, y3) == pytest.approx(accuracy_score(y3, multi.predict(X)))
    regression = MLP([3, 4, 2], output="linear", seed=1)
    targets = rng.normal(size=(30, 2))
    assert regression.score(X, targets) == pytest.approx(r2_score(targets, regression.predict(X)))
    with pytest.raises(InvalidArgumentError, match="predict_proba"):
        regression.predict_proba(X)


def test_prediction_ignores_dropout(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = data
    net = MLP([4, 8, 3], dropout=0.5, seed=0)
    first, second = net.predict_proba(X), net.predict_proba(X)
    np.testing.assert_array_equal(first, second)
    assert net.training
    assert not np.allclose(net.forward(X)[0], net.forward(X)[0])


def test_dropout_is_seeded_and_inverted(rng: np.random.Generator) -> None:
    X = rng.normal(size=(2000, 4))
    masks = [MLP([4, 50, 1], dropout=0.3, seed=5).forward(X)[1].masks[1] for _ in range(2)]
    np.testing.assert_array_equal(masks[0], masks[1])
    assert abs(np.mean(masks[0] == 0) - 0.3) < 0.01
    assert abs(masks[0].mean() - 1.0) < 0.01
    other = MLP([4, 50, 1], dropout=0.3, seed=6).forward(X)[1].masks[1]
    assert not np.array_equal(masks[0], other)


def test_global_random_state_untouched(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    net = MLP([4, 5, 3], dropout=0.5, seed=0)
    net.fit(X, y, epochs=3, batch_size=2)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002


def test_init_choices(data: tuple[np.ndarray, np.ndarray]) -> None:
    zeros = MLP([4, 5, 3], init="zeros")
    assert all(np.all(v == 0) for v in zeros.params.values())
    np.testing.assert_array_equal(
        MLP([4, 5, 3], init="he", seed=3).params["W1"],
        MLP([4, 5, 3], init=initializers.he, seed=3).params["W1"],
    )
    calls = []

    def custom(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        calls.append(shape)
        return np.full(shape, 0.5)

    net = MLP([4, 5, 3], init=custom)
    assert calls == [(5, 4), (3, 5)] and np.all(net.params["W2"] == 0.5)
    with pytest.raises(InvalidArgumentError, match="init: the initializer returned shape"):
        MLP([4, 5, 3], init=lambda shape, rng: np.ones(3))
    with pytest.raises(InvalidArgumentError, match="init: got 'kaiming'"):
        MLP([4, 5, 3], init="kaiming")


def test_callers_arrays_not_mutated(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    X_copy, y_copy = X.copy(), y.copy()
    net = MLP([4, 5, 3], activation="linear", seed=0)
    params = {k: v.copy() for k, v in net.params.items()}
    net.forward(X, params)
    net.loss_and_grads(X, y, params=params)
    net.fit(X, y, epochs=2)
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(y, y_copy)
    for name in params:
        assert not np.shares_memory(params[name], net.params[name])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"layer_sizes": [3]}, InvalidArgumentError, "layer_sizes: got"),
        ({"layer_sizes": [3, 0, 1]}, InvalidArgumentError, "positive integers"),
        ({"layer_sizes": [3, 2.5, 1]}, InvalidArgumentError, "layer_sizes"),
        ({"activation": "swish"}, InvalidArgumentError, "relu, leaky_relu, tanh"),
        ({"output": "softmax"}, InvalidArgumentError, "use output='sigmoid'"),
        ({"output": "hinge"}, InvalidArgumentError, "sigmoid, softmax, linear"),
        (
            {"dropout": 1.0},
            InvalidArgumentError,
            r"dropout: got 1.0, expected .* \[0, 1\)",
        ),
        ({"l2": -0.1}, InvalidArgumentError, "l2: got -0.1"),
        ({"seed": "a"}, InvalidTypeError, "seed: got str"),
        ({"init": 3}, InvalidTypeError, "init: got int"),
    ],
)
def test_bad_construction(kwargs: dict[str, object], error: type, match: str) -> None:
    options = {"layer_sizes": [3, 2, 1], **kwargs}
    with pytest.raises(error, match=match):
        MLP(**options)  # type: ignore[arg-type]


def test_bad_inputs(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    net = MLP([4, 5, 3], seed=0)
    with pytest.raises(ShapeMismatchError, match="X: got 7 features.*looks transposed"):
        net.forward(X.T)
    with pytest.raises(InvalidArgumentError, match="1-D"):
        net.forward(X[0])
    with pytest.raises(ShapeMismatchError, match="y: got shape"):
        net.loss(X, y[:3])
    with pytest.raises(InvalidArgumentError, match="integer class labels 0..2"):
        net.loss(X, y + 1)
    with pytest.raises(InvalidArgumentError, match="targets in"):
        MLP([4, 1]).loss(X, np.full(7, 2.0))
    with pytest.raises(ShapeMismatchError, match="params: 'W1' has shape"):
        net.forward(X, {**net.params, "W1": np.ones((2, 2))})


def test_predict_proba_has_one_column_per_class_as_in_scikit_learn(
    rng: np.random.Generator,
) -> None:
    X = rng.normal(size=(25, 3))
    y2 = rng.integers(0, 2, 25)
    binary = MLP([3, 5, 1], seed=3).eval()
    probabilities = binary.predict_proba(X)
    assert probabilities.shape == (25, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    # scikit-learn's log_loss reads the full (m, n_classes) matrix, as for its classifiers.
    assert binary.loss(X, y2) == pytest.approx(log_loss(y2, probabilities), rel=1e-10)
    multi = MLP([3, 5, 4], seed=3).eval()
    assert multi.predict_proba(X).shape == (25, 4)
