"""A structure-aware full gradient check for gradprobe's MLP.

Perturbing one weight ``W{l}[i, j]`` by δ changes only column ``i`` of ``Z[l]``, by
``δ·A[l-1][:, j]``; a bias ``b{l}[i]`` changes the same column by δ. So instead of
a whole forward pass per perturbation:

* the forward pass at θ is computed once and kept;
* the changed column is a rank-1 update of ``Z[l]``, and after the activation the
  changed column of ``A[l]`` is again a rank-1 update of ``Z[l+1]``;
* from layer ``l+2`` on, all perturbations of a block go through the remaining
  layers together, as one ``(batch·m, n) @ (n, n')`` matrix product;
* the L2 term changes by ``λ/(2m)·((w+δ)² − w²)``.

The cost of the ``2N`` loss values drops from ``2N`` full forward passes to about
``2N`` passes through the layers *after* the perturbed one's successor. Every value
is the loss :meth:`MLP.loss` computes, up to the rounding of the reordered sums.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._params import ParameterLayout
from gradprobe.batched import DEFAULT_MEMORY, ThetaEvaluator, check_memory, rows_per_block
from gradprobe.errors import InvalidArgumentError
from gradprobe.gradcheck import (
    DEFAULT_THRESHOLDS,
    GradCheckReport,
    _check_sample,
    _check_thresholds,
    choose_mode,
    run_check,
)
from gradprobe.nn.activations import get_activation
from gradprobe.nn.losses import encode_targets
from gradprobe.nn.mlp import MLP
from gradprobe.parallel import resolve_executor

__all__ = ["MLPEvaluator", "MLPLoss", "batched_output_loss", "structured_check"]

Array = NDArray[np.float64]
# Bytes of intermediates per block: elementwise passes run several times faster in cache.
_CACHE_BLOCK = 4 * 2**20


def _logsumexp(z: Array) -> Array:
    top = z.max(axis=-1, keepdims=True)
    result: Array = top + np.log(np.exp(z - top).sum(axis=-1, keepdims=True))
    return result


# The output losses of gradprobe.nn.losses over a leading batch axis: Z (batch, m, k) -> (batch,).
_BATCHED_LOSSES: dict[str, Callable[[Array, Array], Array]] = {
    "sigmoid": lambda z, y: np.sum(np.logaddexp(0.0, z) - y * z, axis=(-2, -1)) / z.shape[-2],
    "softmax": lambda z, y: np.sum(y * (_logsumexp(z) - z), axis=(-2, -1)) / z.shape[-2],
    "linear": lambda z, y: np.mean((z - y) ** 2, axis=(-2, -1)),
}


def batched_output_loss(output: str, z: Array, y: Array) -> Array:
    """Return the mean loss of ``output`` for each of a batch of logits.

    Parameters
    ----------
    output : {"sigmoid", "softmax", "linear"}
        The output layer, as in :data:`gradprobe.nn.losses.OUTPUTS`.
    z : ndarray of shape (batch, m, k)
        Logits.
    y : ndarray of shape (m, k)
        Targets, as :func:`gradprobe.nn.losses.encode_targets` returns them.

    Returns
    -------
    ndarray of shape (batch,)

    Examples
    --------
    >>> import numpy as np
    >>> batched_output_loss("softmax", np.zeros((2, 1, 4)), np.eye(4)[:1]).round(4)
    array([1.3863, 1.3863])
    """
    values: Array = _BATCHED_LOSSES[output](z, y)
    return values


class MLPLoss:
    """``net.loss(X, y, params)`` as a picklable callable of the parameters alone.

    Parameters
    ----------
    net : MLP
        The network; it should be in evaluation mode (no dropout).
    X : ndarray of shape (m, n_0)
        The examples.
    y : array_like
        Their labels.
    """

    def __init__(self, net: MLP, X: Any, y: Any) -> None:
        self.net, self.X, self.y = net, X, y

    def __call__(self, params: dict[str, Array]) -> float:
        """Return the network's cost at ``params``."""
        return self.net.loss(self.X, self.y, params)


class MLPEvaluator(ThetaEvaluator):
    """Loss values of an MLP at θ with one coordinate moved, from one cached forward pass.

    Parameters
    ----------
    net : MLP
        The network, in evaluation mode.
    X : array_like of shape (m, n_0)
        The examples.
    y : array_like
        Their labels.
    theta : ndarray of float64, shape (size,)
        The point the cached pass is taken at (``net.params`` flattened).
    executor : concurrent.futures.Executor, optional
        Where blocks of values run.
    memory : int, default=DEFAULT_MEMORY
        Bytes allowed for one block's intermediate activations.
    """

    def __init__(
        self,
        net: MLP,
        X: Any,
        y: Any,
        theta: Array,
        *,
        executor: Executor | None = None,
        memory: int = DEFAULT_MEMORY,
    ) -> None:
        layout = ParameterLayout.from_params(net.params)
        super().__init__(MLPLoss(net, X, y), layout, executor=executor, memory=memory)
        self.net, self.X, self.y = net, X, y
        self.theta = theta.copy()
        params = layout.unflatten(self.theta)
        _, cache = net.forward(X, params)
        self.Z, self.A = cache.Z, cache.A
        self.W = {layer: params[f"W{layer}"] for layer in range(1, net.n_layers + 1)}
        self.targets = encode_targets(y, net.output, net.layer_sizes[-1], self.A[0].shape[0])
        self.squares = sum(float(np.sum(weight**2)) for weight in self.W.values())

    @property
    def stacks(self) -> bool:
        """Always: the point of this evaluator is to answer many values at once."""
        return True

    def serial(self) -> MLPEvaluator:
        """Return this evaluator without its executor, to run inside a worker."""
        twin = MLPEvaluator.__new__(MLPEvaluator)
        twin.__dict__.update(self.__dict__)
        twin.executor = None
        return twin

    def coordinates(self, theta: Array, indices: NDArray[np.intp], values: Array) -> Array:
        """Return the loss at θ with ``theta[indices[r]] = values[r]``, for each ``r``.

        ``theta`` must be the point the evaluator was built at.
        """
        if self.executor is not None:
            return super().coordinates(theta, indices, values)
        if not np.array_equal(theta, self.theta):
            raise InvalidArgumentError(
                "theta: got a point other than the one the cached forward pass was taken at, "
                "expected the same θ; build a new MLPEvaluator for a new point"
            )
        out = np.empty(len(indices))
        owner = np.searchsorted(self.layout.offsets, indices, side="right") - 1
        for k in np.unique(owner).tolist():
            rows = np.flatnonzero(owner == k)
            layer = k // 2 + 1
            # Blocks that fit in cache: the work per row is elementwise-heavy.
            block = rows_per_block(self._row_bytes(layer), min(self.memory, _CACHE_BLOCK))
            for start in range(0, len(rows), block):
                chosen = rows[start : start + block]
                out[chosen] = self._perturbed(k, indices[chosen], values[chosen])
        self.evaluations += len(indices)
        return out

    def _row_bytes(self, layer: int) -> int:
        # A few (m, n_l) temporaries per perturbation in every layer from `layer` on.
        widths = sum(self.net.layer_sizes[layer:])
        return int(4 * 8 * self.A[0].shape[0] * widths)

    def _perturbed(self, k: int, indices: NDArray[np.intp], values: Array) -> Array:
        """Loss values for perturbations all in parameter ``k`` (``W{l}`` or ``b{l}``)."""
        net = self.net
        layer, is_weight = k // 2 + 1, k % 2 == 0
        local = indices - self.layout.offsets[k]
        delta = values - self.theta[indices]  # the moves actually taken, (batch,)
        if is_weight:
            rows, columns = np.divmod(local, net.layer_sizes[layer - 1])
            change = delta[:, np.newaxis] * self.A[layer - 1][:, columns].T  # (batch, m)
            old = self.theta[indices]
            l2 = net.l2 / (2 * self.A[0].shape[0]) * (self.squares - old**2 + values**2)
        else:
            rows = local
            change = np.repeat(delta[:, np.newaxis], self.A[0].shape[0], axis=1)
            l2 = np.full(len(indices), net.l2 / (2 * self.A[0].shape[0]) * self.squares)
        column = self.Z[layer][:, rows].T + change  # the new column i of Z[l], (batch, m)
        if layer == net.n_layers:
            Z = np.repeat(self.Z[layer][np.newaxis], len(indices), axis=0)
            Z[np.arange(len(indices)), :, rows] = column
        else:
            g = get_activation(net.activation).function
            moved = g(column) - self.A[layer][:, rows].T  # change of A[l][:, i], (batch, m)
            # Rank-1 update of Z[l+1]: the changed column of A[l] times column i of W{l+1}.
            Z = self.Z[layer + 1][np.newaxis] + (
                moved[:, :, np.newaxis] * self.W[layer + 1][:, rows].T[:, np.newaxis, :]
            )
            for later in range(layer + 2, net.n_layers + 1):
                A = g(Z)
                batch, m, width = A.shape
                Z = (A.reshape(batch * m, width) @ self.W[later].T).reshape(batch, m, -1)
                Z += self._bias(later)
        loss = batched_output_loss(net.output, Z.astype(np.float64, copy=False), self.targets)
        total: Array = loss + l2 if net.l2 > 0 else loss
        return total

    def _bias(self, layer: int) -> Array:
        bias: Array = self.theta[self.layout.span(f"b{layer}")]
        return bias


def structured_check(
    net: MLP,
    X: Any,
    y: Any,
    *,
    eps: float | None = None,
    method: str = "central",
    thresholds: tuple[float, float] = DEFAULT_THRESHOLDS,
    sample: int | None = None,
    seed: int | np.random.Generator = 0,
    mode: str = "auto",
    executor: Executor | None = None,
    workers: int | None = None,
    memory: int = DEFAULT_MEMORY,
    notes: Sequence[str] = (),
) -> GradCheckReport:
    """Check an MLP's backprop at its current parameters, exploiting its layers.

    The network must be in evaluation mode (no dropout); ``check_model`` takes
    care of that. ``mode="full"`` (or ``"auto"`` up to 100,000 values) computes every
    loss value with :class:`MLPEvaluator`; ``"localize"`` runs group testing on
    ``net.loss``. Arguments are as for :func:`gradprobe.check_gradients`.

    Returns
    -------
    GradCheckReport

    Examples
    --------
    >>> import numpy as np
    >>> net = MLP([3, 5, 2], activation="tanh", seed=0).eval()
    >>> X = np.random.default_rng(0).normal(size=(8, 3))
    >>> structured_check(net, X, np.arange(8) % 2).verdict
    'ok'
    """
    thresholds = _check_thresholds(thresholds)
    count = _check_sample(sample)
    layout = ParameterLayout.from_params(net.params)
    theta = layout.flatten(net.params)
    chosen = choose_mode(mode, layout.size, count)
    memory = check_memory(memory)

    def grads(params: dict[str, Array]) -> Any:
        return net.loss_and_grads(X, y, params)[1]

    with resolve_executor(executor, workers) as pool:
        evaluate = (
            MLPEvaluator(net, X, y, theta, executor=pool, memory=memory)
            if chosen == "full"
            else ThetaEvaluator(MLPLoss(net, X, y), layout, executor=pool, memory=memory)
        )
        return run_check(
            evaluate,
            theta,
            grads,
            eps=eps,
            method=method,
            thresholds=thresholds,
            sample=count,
            seed=seed,
            mode=chosen,
            notes=notes,
        )
