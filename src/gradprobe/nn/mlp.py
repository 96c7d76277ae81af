"""A fully connected network in NumPy: forward with a cache, backward, L2 and dropout.

Layout (scikit-learn's and PyTorch's): ``X`` is ``(m examples, n features)``.
Layer ``l`` has ``W{l}`` of shape ``(n_l, n_{l-1})`` and ``b{l}`` of shape ``(n_l,)``,
as in the course notes, so with ``A[0] = X``::

    Z[l] = A[l-1] @ W{l}.T + b{l}             # (m, n_l)
    A[l] = g(Z[l])     (hidden layers; times the dropout mask in training mode)
    A[L] = output(Z[L])                       # sigmoid, softmax or linear

and backprop runs the same lines in reverse, with ``dZ[L]`` from the loss table::

    dW{l} = dZ[l].T @ A[l-1] + (λ/m)·W{l}     db{l} = Σ_rows dZ[l]
    dZ[l-1] = (dZ[l] @ W{l}) · mask[l-1] · g'(Z[l-1])

The cost is the mean loss plus ``λ/(2m)·Σ_l ‖W{l}‖²`` when ``l2 = λ > 0``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._validate import (
    as_feature_matrix,
    check_fraction,
    check_layer_sizes,
    check_seed,
    unless_interrupt,
)
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, ShapeMismatchError
from gradprobe.nn import initializers
from gradprobe.nn.activations import get_activation
from gradprobe.nn.losses import encode_targets, get_output
from gradprobe.nn.train import History, Optimizer, fit

__all__ = ["MLP", "Cache"]

Array = NDArray[np.floating[Any]]


@dataclass
class Cache:
    """What the forward pass keeps for the backward pass.

    Attributes
    ----------
    Z : dict of int to ndarray
        ``Z[l]``, the pre-activation of layer ``l = 1..L``, shape ``(m, n_l)``.
    A : dict of int to ndarray
        ``A[l]`` for ``l = 0..L``: ``A[0]`` is ``X``, ``A[L]`` the network's output;
        hidden activations are stored after dropout.
    masks : dict of int to ndarray
        The inverted-dropout mask of each hidden layer that had dropout (values 0 and
        ``1/keep``), shape ``(m, n_l)``; empty in evaluation mode.
    params : dict of str to ndarray
        The parameters the pass used.
    """

    Z: dict[int, Array] = field(default_factory=dict)
    A: dict[int, Array] = field(default_factory=dict)
    masks: dict[int, Array] = field(default_factory=dict)
    params: Mapping[str, Array] = field(default_factory=dict)


class MLP:
    """A multilayer perceptron whose forward and backward passes are written out by hand.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_0, n_1, …, n_L]``: the number of input features first, the output units last.
    activation : {"relu", "leaky_relu", "tanh", "sigmoid", "linear"}, default="relu"
        The hidden layers' activation (see :data:`gradprobe.nn.activations.ACTIVATIONS`).
    output : {"sigmoid", "softmax", "linear"}, optional
        The output layer and its loss: binary cross-entropy, categorical cross-entropy
        or mean squared error. Default: ``"sigmoid"`` when ``n_L = 1``, else ``"softmax"``.
    init : str or callable, default="auto"
        An initializer name from :mod:`gradprobe.init`, a callable ``(shape, rng) ->
        array``, or ``"auto"`` for :func:`auto_initializer`. Biases start at zero.
    l2 : float, default=0.0
        λ of the L2 term ``λ/(2m)·Σ‖W‖²`` added to the cost (biases are not penalized).
    dropout : float, default=0.0
        The probability of dropping a hidden unit in training mode (inverted dropout:
        kept units are divided by ``1 − dropout``); never applied to the output layer.
    seed : int or numpy.random.Generator, default=0
        Source of the initial weights, the dropout masks and the minibatch order.

    Attributes
    ----------
    params : dict of str to ndarray
        ``W1, b1, …, WL, bL``, float64; the network's live arrays.
    training : bool
        True in training mode (dropout on), False after :meth:`eval`.

    Examples
    --------
    >>> import numpy as np
    >>> net = MLP([2, 3, 1], seed=0)
    >>> net.params["W1"].shape, net.params["b1"].shape, net.n_layers
    ((3, 2), (3,), 2)
    >>> output, cache = net.forward(np.zeros((5, 2)))
    >>> output.shape, sorted(cache.A)
    ((5, 1), [0, 1, 2])
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        activation: str = "relu",
        output: str | None = None,
        init: str | Callable[..., Any] = "auto",
        l2: float = 0.0,
        dropout: float = 0.0,
        seed: int | np.random.Generator = 0,
    ) -> None:
        self.layer_sizes = check_layer_sizes(layer_sizes)
        self.activation = get_activation(activation).name
        if output is None:
            output = "sigmoid" if self.layer_sizes[-1] == 1 else "softmax"
        self.output = get_output(output).output
        if self.output == "softmax" and self.layer_sizes[-1] < 2:
            raise InvalidArgumentError(
                f"output: got 'softmax' with {self.layer_sizes[-1]} output unit, expected at "
                "least 2 units; use output='sigmoid' for a binary problem"
            )
        self.l2 = check_fraction(l2, "l2", np.inf)
        self.dropout = check_fraction(dropout, "dropout", 1.0)
        check_seed(seed)
        self.seed = seed
        self.training = True
        self._rng = np.random.default_rng(seed)
        self.params: dict[str, Array] = self._initial_params(init)

    def _initial_params(self, init: str | Callable[..., Any]) -> dict[str, Array]:
        if isinstance(init, str):
            initializer = (
                initializers.auto_initializer(self.activation, self.layer_sizes)
                if init == "auto"
                else initializers.lookup(init, "init")
            )
        elif callable(init):
            initializer = init
        else:
            raise InvalidTypeError(
                f"init: got {type(init).__name__}, expected an initializer name, 'auto' or a "
                "callable (shape, rng) -> array"
            )
        params: dict[str, Array] = {}
        for layer in range(1, self.n_layers + 1):
            shape = (self.layer_sizes[layer], self.layer_sizes[layer - 1])
            try:
                weight = np.array(initializer(shape, self._rng), dtype=np.float64)
            except BaseException as error:  # noqa: BLE001 - whatever the user's initializer raises
                raise InvalidArgumentError(
                    f"init: the initializer raised {type(error).__name__} for W{layer} of shape "
                    f"{shape}: {error}; expected a callable (shape, rng) -> array"
                ) from unless_interrupt(error)
            if weight.shape != shape or not np.all(np.isfinite(weight)):
                raise InvalidArgumentError(
                    f"init: the initializer returned shape {weight.shape} for W{layer}, expected a "
                    f"finite array of shape {shape} (fan_out, fan_in)"
                )
            params[f"W{layer}"] = weight
            params[f"b{layer}"] = np.zeros(shape[0])
        return params

    def __repr__(self) -> str:
        return (
            f"MLP({self.layer_sizes}, activation={self.activation!r}, output={self.output!r}, "
            f"l2={self.l2:g}, dropout={self.dropout:g})"
        )

    @property
    def n_layers(self) -> int:
        """L, the number of weight layers (``len(layer_sizes) − 1``)."""
        return len(self.layer_sizes) - 1

    def train(self) -> MLP:
        """Switch to training mode (dropout on); return ``self``."""
        self.training = True
        return self

    def eval(self) -> MLP:
        """Switch to evaluation mode (dropout off); return ``self``."""
        self.training = False
        return self

    # -- the passes -----------------------------------------------------------------------

    def forward(self, X: Any, params: Mapping[str, Array] | None = None) -> tuple[Array, Cache]:
        """Run the network on ``X``, keeping what backprop needs.

        Parameters
        ----------
        X : array_like of shape (m, n_0)
            The examples.
        params : dict of str to ndarray, optional
            Parameters to use instead of ``self.params`` (same keys and shapes); lets
            a caller evaluate the network at other weights without changing it.

        Returns
        -------
        output : ndarray of shape (m, n_L)
            The final activation: probabilities, or predictions for a linear output.
        cache : Cache
        """
        cache = self._forward(self.features(X), self._resolve(params), self.training)
        return cache.A[self.n_layers], cache

    def backward(self, cache: Cache, y: Any) -> dict[str, Array]:
        """Backpropagate the cost through the pass that produced ``cache``.

        Parameters
        ----------
        cache : Cache
            From :meth:`forward`.
        y : array_like
            The labels of the examples in that pass (see :meth:`loss`).

        Returns
        -------
        dict of str to ndarray
            ``dW1, db1, …`` keyed like ``params`` (``W1, b1, …``), the L2 term included.
        """
        return self._backward(cache, self._targets(y, cache))

    def _backward(self, cache: Cache, targets: Array) -> dict[str, Array]:
        m = targets.shape[0]
        derivative = get_activation(self.activation).derivative
        dZ = get_output(self.output).gradient(cache.A[self.n_layers], targets)
        grads: dict[str, Array] = {}
        for layer in range(self.n_layers, 0, -1):
            W = cache.params[f"W{layer}"]
            grads[f"W{layer}"] = dZ.T @ cache.A[layer - 1]
            if self.l2 > 0:
                grads[f"W{layer}"] += (self.l2 / m) * W
            grads[f"b{layer}"] = dZ.sum(axis=0)
            if layer > 1:
                dA = dZ @ W
                if layer - 1 in cache.masks:
                    dA *= cache.masks[layer - 1]
                dZ = dA * derivative(cache.Z[layer - 1])
        return {name: grads[name] for name in cache.params}

    def loss(self, X: Any, y: Any, params: Mapping[str, Array] | None = None) -> float:
        """Return the cost on ``(X, y)``: the mean loss plus the L2 term when ``l2 > 0``.

        Parameters
        ----------
        X : array_like of shape (m, n_0)
            The examples.
        y : array_like
            ``"sigmoid"``: 0/1 labels, shape ``(m,)`` or ``(m, 1)``; ``"softmax"``: integer
            class labels ``(m,)`` or one-hot ``(m, n_L)``; ``"linear"``: targets ``(m,)``
            or ``(m, n_L)``.
        params : dict of str to ndarray, optional
            Parameters to use instead of ``self.params``.

        Returns
        -------
        float
            Uses dropout when the network is in training mode.
        """
        _, cache = self.forward(X, params)
        return self._objective(cache, self._targets(y, cache))

    def loss_and_grads(
        self, X: Any, y: Any, params: Mapping[str, Array] | None = None
    ) -> tuple[float, dict[str, Array]]:
        """Return the cost (as :meth:`loss`) and its gradients (as :meth:`backward`) in one pass.

        Examples
        --------
        >>> import numpy as np
        >>> net = MLP([2, 4, 1], l2=0.1, seed=0)
        >>> value, grads = net.loss_and_grads(np.ones((3, 2)), [0, 1, 1])
        >>> list(grads) == list(net.params)
        True
        """
        _, cache = self.forward(X, params)
        return self._objective(cache, self._targets(y, cache)), self.backward(cache, y)

    def _targets(self, y: Any, cache: Cache) -> Array:
        return self.targets(y, cache.A[0].shape[0])

    def _objective(self, cache: Cache, targets: Array) -> float:
        m = targets.shape[0]
        value = get_output(self.output).loss(cache.Z[self.n_layers], targets)
        if self.l2 > 0:
            weights = (cache.params[f"W{layer}"] for layer in range(1, self.n_layers + 1))
            squares = sum(float(np.sum(W**2)) for W in weights)
            value += self.l2 / (2 * m) * squares
        return value

    def _forward(self, X: NDArray[Any], params: Mapping[str, Array], training: bool) -> Cache:
        g = get_activation(self.activation).function
        cache = Cache(params=params)
        cache.A[0] = A = X
        keep = 1.0 - self.dropout
        for layer in range(1, self.n_layers + 1):
            Z = A @ params[f"W{layer}"].T + params[f"b{layer}"]
            cache.Z[layer] = Z
            if layer == self.n_layers:
                A = get_output(self.output).activate(Z)
            else:
                A = g(Z)
                if training and self.dropout > 0:
                    mask = (self._rng.random(A.shape) < keep) / keep
                    cache.masks[layer] = mask
                    A = A * mask
            cache.A[layer] = A
        return cache

    def features(self, X: Any, argument: str = "X") -> NDArray[Any]:
        """Return ``X`` validated as this network's input, shape ``(m, n_0)``; not a copy."""
        return as_feature_matrix(X, argument, self.layer_sizes[0])

    def targets(self, y: Any, m: int) -> Array:
        """Return labels ``y`` for ``m`` examples encoded for the output layer, ``(m, n_L)``."""
        return encode_targets(y, self.output, self.layer_sizes[-1], m)

    def training_step(
        self, X: NDArray[Any], targets: Array
    ) -> tuple[float, dict[str, Array], Array]:
        """Return the cost, its gradients and the outputs on one batch in training mode.

        ``X`` comes from :meth:`features` and ``targets`` from :meth:`targets`; dropout
        masks are drawn from the network's generator.
        """
        cache = self._forward(X, self.params, True)
        return (
            self._objective(cache, targets),
            self._backward(cache, targets),
            cache.A[self.n_layers],
        )

    @property
    def rng(self) -> np.random.Generator:
        """The network's generator: dropout masks and minibatch order come from it."""
        return self._rng

    def _resolve(self, params: Mapping[str, Array] | None) -> Mapping[str, Array]:
        if params is None:
            return self.params
        for name, current in self.params.items():
            if name not in params:
                raise InvalidArgumentError(
                    f"params: no entry {name!r}, expected keys {list(self.params)}"
                )
            if np.shape(params[name]) != current.shape:
                raise ShapeMismatchError(
                    f"params: {name!r} has shape {np.shape(params[name])}, expected {current.shape}"
                )
        return params

    # -- using the network ----------------------------------------------------------------

    def predict_proba(self, X: Any) -> Array:
        """Return the class probabilities without dropout, shape ``(m, n_classes)``.

        As in scikit-learn: row ``i`` is the distribution over the classes, so a
        one-unit sigmoid gives two columns, ``[1 − p, p]`` with ``p`` = P(label = 1);
        softmax gives its ``n_L`` columns. A sigmoid of several units (independent
        labels) gives P(label_j = 1) in column ``j``, shape ``(m, n_L)``.
        """
        if self.output == "linear":
            raise InvalidArgumentError(
                "predict_proba: got a network with output='linear', expected a sigmoid or "
                "softmax output; use predict for regression values"
            )
        output = self._forward(self.features(X), self.params, False).A[self.n_layers]
        if self.output == "sigmoid" and output.shape[1] == 1:
            return np.hstack([1.0 - output, output])
        return output

    def predict(self, X: Any) -> NDArray[Any]:
        """Return predictions without dropout.

        Returns
        -------
        ndarray
            Class labels of shape ``(m,)`` (sigmoid with one unit: 0/1; softmax: the
            argmax); ``(m, n_L)`` 0/1 for a multi-unit sigmoid; values ``(m,)`` or
            ``(m, n_L)`` for a linear output.
        """
        output = self._forward(self.features(X), self.params, False).A[self.n_layers]
        return self._decide(output)

    def _decide(self, output: Array) -> NDArray[Any]:
        if self.output == "softmax":
            labels: NDArray[Any] = output.argmax(axis=1)
            return labels
        squeeze = output[:, 0] if output.shape[1] == 1 else output
        return (squeeze >= 0.5).astype(np.int64) if self.output == "sigmoid" else squeeze

    def score(self, X: Any, y: Any) -> float:
        """Return the accuracy (sigmoid, softmax) or R² (linear output), without dropout."""
        data = self.features(X)
        targets = self.targets(y, data.shape[0])
        return self.metric(self._forward(data, self.params, False).A[self.n_layers], targets)

    @property
    def metric_name(self) -> str:
        """``"accuracy"`` for classification outputs, ``"r2"`` for a linear output."""
        return "r2" if self.output == "linear" else "accuracy"

    def metric(self, output: Array, targets: Array) -> float:
        """Return :attr:`metric_name` of ``output`` against encoded ``targets``, ``(m, n_L)``."""
        if self.output == "linear":
            residual = np.sum((targets - output) ** 2, axis=0)
            total = np.sum((targets - targets.mean(axis=0)) ** 2, axis=0)
            # As scikit-learn's r2_score: a constant target scores 1 if matched, else 0.
            safe = np.where(total > 0, total, 1.0)
            r2 = np.where(total > 0, 1.0 - residual / safe, np.where(residual == 0, 1.0, 0.0))
            return float(np.mean(r2))
        m = targets.shape[0]
        if self.output == "softmax":
            return float(np.count_nonzero(output.argmax(axis=1) == targets.argmax(axis=1)) / m)
        wrong = (output >= 0.5) != (targets >= 0.5)
        return float(1.0 - np.count_nonzero(wrong.any(axis=1) if wrong.shape[1] > 1 else wrong) / m)

    def fit(
        self,
        X: Any,
        y: Any,
        epochs: int = 100,
        lr: float = 0.01,
        batch_size: int | None = None,
        optimizer: str | Optimizer = "gd",
        validation_data: tuple[Any, Any] | None = None,
        callback: Callable[[int, History], bool | None] | None = None,
    ) -> History:
        """Train with minibatch gradient descent; see :func:`gradprobe.nn.train.fit`."""
        return fit(
            self,
            X,
            y,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            optimizer=optimizer,
            validation_data=validation_data,
            callback=callback,
        )
