"""A two-layer network with hand-written backprop, ready for ``gradprobe check``.

``gradprobe check FILE.py`` looks for three names in FILE.py:

* ``params``: a dict of NumPy arrays (or a list of arrays, or one array);
* ``loss(params) -> float``: the cost J, deterministic (dropout off), L2 term included;
* ``grads(params)``: the analytic gradients, keyed like ``params`` (``dW1`` or ``W1``).

``gradprobe check FILE.py:NAME`` calls ``NAME()`` instead, which returns
``(loss, params, grads)``. Try both::

    gradprobe check examples/two_layer_net.py                    # exit 0: ok
    gradprobe check examples/two_layer_net.py:with_planted_bug   # exit 1: W1 is wrong

The planted bug is the course notes' "remember regularization": the L2 term is left out of
dW1, and the check names W1 and says so.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Params = dict[str, np.ndarray]

L2 = 0.1  # λ, the L2 strength


def make_data(m: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return X of shape (m, 4) and labels y of shape (m,) in {0, 1}."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, 4))
    y = (X[:, 0] - X[:, 1] ** 2 > 0).astype(float)
    return X, y


def init_params(seed: int = 1) -> Params:
    """He initialization of a 4 → 5 → 1 network; W of layer l is (n_l, n_{l-1})."""
    rng = np.random.default_rng(seed)
    return {
        "W1": rng.normal(size=(5, 4)) * np.sqrt(2 / 4),
        "b1": np.zeros(5),
        "W2": rng.normal(size=(1, 5)) * np.sqrt(2 / 5),
        "b2": np.zeros(1),
    }


def _forward(p: Params, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    Z1 = X @ p["W1"].T + p["b1"]
    A1 = np.maximum(Z1, 0.0)
    A2 = 1 / (1 + np.exp(-(A1 @ p["W2"].T + p["b2"])))
    return Z1, A1, A2[:, 0]


def make_problem(planted_bug: bool = False) -> tuple[Callable, Params, Callable]:
    """Return ``(loss, params, grads)`` for the cross-entropy + L2 cost of the network."""
    X, y = make_data()
    m = len(y)

    def loss(p: Params) -> float:
        _, _, A2 = _forward(p, X)
        cross_entropy = -np.mean(y * np.log(A2) + (1 - y) * np.log(1 - A2))
        l2 = L2 / (2 * m) * (np.sum(p["W1"] ** 2) + np.sum(p["W2"] ** 2))
        return float(cross_entropy + l2)

    def grads(p: Params) -> Params:
        Z1, A1, A2 = _forward(p, X)
        dZ2 = (A2 - y)[:, None] / m  # (m, 1)
        dW2 = dZ2.T @ A1 + L2 / m * p["W2"]
        db2 = dZ2.sum(axis=0)
        dZ1 = (dZ2 @ p["W2"]) * (Z1 > 0)  # (m, 5)
        dW1 = dZ1.T @ X
        if not planted_bug:
            dW1 = dW1 + L2 / m * p["W1"]
        db1 = dZ1.sum(axis=0)
        return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}

    return loss, init_params(), grads


def with_planted_bug() -> tuple[Callable, Params, Callable]:
    """The same network with the L2 term missing from dW1."""
    return make_problem(planted_bug=True)


loss, params, grads = make_problem()
