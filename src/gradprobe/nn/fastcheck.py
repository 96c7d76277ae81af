"""A structure-aware full gradient check for gradprobe's MLP.

Perturbing one weight ``W{l}[i, j]`` by δ changes only column ``i`` of ``Z[l]``, by
``δ·A[l-1][:, j]``; a bias ``b{l}[i]`` changes the same column by δ. So instead of a
whole forward pass per perturbation:

* the forward pass at θ is computed once and kept, and each value is returned as
  the cost at θ plus the sum of the examples' loss *changes*: no two rounded sums
  over all examples are ever subtracted;
* an example whose entry of the changed column does not move (a ReLU unit that
  stays off, an input of exactly 0) keeps its loss exactly and is skipped;
* for the output layer one logit moves; for the last hidden layer the logits move
  by a rank-1 update, ``a·W{L}[:, i]``; for earlier layers with piecewise-linear
  activations the logits move by ``a`` times the example's Jacobian as long as no
  later unit crosses its kink (checked per example), else the change goes through
  the later activations, as differences from the cached pass;
* the loss change is expanded around the cached logits (``log1p``/``expm1``), and
  where the logits move by ``a·j`` it is a polynomial in ``a`` whose coefficients
  are tabulated once per (unit, example) (see :meth:`MLPEvaluator._series_table`);
* the L2 term changes by ``λ/(2m)·((w+δ)² − w²)``.

Every value is the loss :meth:`MLP.loss` computes, up to rounding that is smaller
than that of the loss itself.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._params import ParameterLayout
from gradprobe.errors import InvalidArgumentError
from gradprobe.nn import _series as taylor
from gradprobe.nn.activations import get_activation, sigmoid
from gradprobe.nn.losses import encode_targets, softmax
from gradprobe.nn.mlp import MLP
from gradprobe.numdiff.batched import DEFAULT_MEMORY, ThetaEvaluator, rows_per_block

__all__ = ["MLPEvaluator", "MLPLoss"]

Array = NDArray[np.float64]
# Bytes of intermediates per block: elementwise passes run several times faster in cache.
_CACHE_BLOCK = 4 * 2**20
# Hidden activations made of linear pieces -> whether they have a kink (at 0).
_PIECEWISE_LINEAR = {"relu": True, "leaky_relu": True, "linear": False}
# Largest logit change for which the log1p/expm1 expansion of the output loss is used.
_EXPANSION_LIMIT = 0.5
# Largest |a·j_c| for which the loss change is summed as a degree-6 polynomial in a.
_SERIES_REACH = 1e-3
_SERIES_DEGREE = 6
# The truncation bound of that polynomial at that reach: 3.2·(1e-3)⁷/(1 − 1e-3).
_SERIES_ERROR = 4e-21


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

    Every value is returned as ``J(θ) + Σ_k ΔJ_k / m + ΔL2``: the cost at θ (from
    ``net.loss`` itself) plus the change of each example's loss, so the difference of
    two values never subtracts two rounded sums over all examples.

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
        Bytes allowed for one block's intermediates, and for each layer's table of
        per-example Jacobians.

    Attributes
    ----------
    center : float
        The cost at θ, as ``net.loss`` computes it.
    paths : dict of str to int
        How many (perturbation, example) pairs took each route: ``"unchanged"`` (the
        example's entry did not move, so neither did its loss: skipped), ``"output"``
        (one logit moved), ``"series"`` (the tabulated polynomial), ``"linear"``
        (through the later layers' linear pieces) and ``"propagated"`` (through the
        later layers' activations, e.g. across a kink).
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
        self.Z: dict[int, Array] = {q: np.asarray(z, np.float64) for q, z in cache.Z.items()}
        self.A: dict[int, Array] = {q: np.asarray(a, np.float64) for q, a in cache.A.items()}
        # Columns of Z and A as contiguous rows: a perturbation reads one column.
        self.columns = {
            "Z": {q: np.ascontiguousarray(z.T) for q, z in self.Z.items()},
            "A": {q: np.ascontiguousarray(a.T) for q, a in self.A.items()},
        }
        self.W = {layer: params[f"W{layer}"] for layer in range(1, net.n_layers + 1)}
        self.m = int(self.A[0].shape[0])
        self.targets = encode_targets(y, net.output, net.layer_sizes[-1], self.m)
        self.center = float(self.loss(params))
        logits = self.Z[net.n_layers]
        bases: dict[str, Callable[[Array], Any]] = {
            "softmax": softmax,
            "sigmoid": sigmoid,
            "linear": lambda z: z - self.targets,
        }
        self._base: Array = bases[net.output](logits)  # what _output_change expands around
        self._mass = self.targets.sum(axis=1)  # Σ_c y_kc: 1 for one-hot rows
        self._regions: dict[int, tuple[Array, Array | None] | None] = {}
        self._tables: dict[int, Array | None] = {}
        self._steepest: dict[int, Array] = {}  # per layer and unit: max |j_c| over examples
        self.paths = dict.fromkeys(("unchanged", "output", "series", "linear", "propagated"), 0)

    @property
    def stacks(self) -> bool:
        """Always: the point of this evaluator is to answer many values at once."""
        return True

    #: The check measures this evaluator's noise along coordinates, which it moves by
    #: rank-1 updates, rather than along a random direction, which costs a forward pass.
    noise_along_coordinates = True

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
        if len(indices) == 0:
            return out
        owner = np.searchsorted(self.layout.offsets, indices, side="right") - 1
        # Group by parameter and unit (row of W{l}, entry of b{l}): one column of Z[l] each.
        local = indices - np.asarray(self.layout.offsets)[owner]
        width = np.asarray(self.net.layer_sizes)[owner // 2]
        unit = np.where(owner % 2 == 0, local // width, local)
        order = np.lexsort((unit, owner))
        starts = np.flatnonzero(np.diff(owner[order]) | np.diff(unit[order])) + 1
        # Blocks that fit in cache: the work per row is elementwise-heavy.
        budget = min(self.memory, _CACHE_BLOCK)
        blocks = {
            k: rows_per_block(self._row_bytes(k // 2 + 1), budget) for k in set(owner.tolist())
        }
        for group in np.split(order, starts):
            k = int(owner[group[0]])
            block = blocks[k]
            for start in range(0, len(group), block):
                chosen = group[start : start + block]
                out[chosen] = self._perturbed(
                    k, int(unit[chosen[0]]), indices[chosen], values[chosen]
                )
        self.evaluations += len(indices)
        return out

    def _row_bytes(self, layer: int) -> int:
        # A few (m,) rows per perturbation; (m, n_L) ones when its examples' logits move
        # outside the series, and (m, n_q) ones per later hidden layer when those moves go
        # through the activations.
        sizes, last = self.net.layer_sizes, self.net.n_layers
        widths = 8
        if layer < last and self._series_table(layer) is None:
            widths += 4 * sizes[-1]
            if self._region(layer) is None:
                widths += 3 * sum(sizes[layer + 1 : -1])
        return 8 * self.m * widths

    def _perturbed(self, k: int, unit: int, indices: NDArray[np.intp], values: Array) -> Array:
        """Loss values for perturbations of unit ``i`` (one row of ``W{l}``, or ``b{l}[i]``)."""
        net = self.net
        layer = k // 2 + 1
        old = self.theta[indices]
        delta = values - old  # the moves actually taken, (batch,)
        Z, A = self.columns["Z"], self.columns["A"]
        if k % 2 == 0:
            inputs = (indices - self.layout.offsets[k]) % net.layer_sizes[layer - 1]
            shift = delta[:, np.newaxis] * A[layer - 1][inputs]  # change of Z[l][:, i], (batch, m)
            l2 = net.l2 / (2 * self.m) * (delta * (values + old))  # λ/(2m)·((w + δ)² − w²)
        else:
            shift = np.repeat(delta[:, np.newaxis], self.m, axis=1)
            l2 = np.zeros(len(indices))
        if layer == net.n_layers:
            moved = shift  # column i of the logits
        else:
            g = get_activation(net.activation).function
            moved = g(Z[layer][unit] + shift) - A[layer][unit]  # change of A[l][:, i]
        # An example whose entry of column i did not move keeps its loss exactly: skip it.
        changed = int(np.count_nonzero(moved))
        self.paths["unchanged"] += moved.size - changed
        total = np.zeros(len(indices))
        table = self._series_table(layer) if layer < net.n_layers else None
        if table is not None:
            size = np.abs(moved)
            near = size < table[unit, 0]
            everywhere = bool(near.all())
            series = moved if everywhere else np.where(near, moved, 0.0)
            self.paths["series"] += changed if everywhere else int(np.count_nonzero(series))
            peak = float(np.max(size, initial=0.0, where=near))
            degree = self._series_degree(layer, unit, peak)
            total += taylor.horner(series, table[unit, 1 : 1 + degree]) @ np.ones(self.m)
            moved = np.zeros((0, self.m)) if everywhere else moved - series
        perturbation, example = np.nonzero(moved)
        if len(example):
            step = moved[perturbation, example]
            if layer == net.n_layers:
                self.paths["output"] += len(step)
                change = self._output_change(example, step, unit)
            else:
                logits = self._logit_change(layer, example, unit, step)
                change = self._output_change(example, logits)
            total += np.bincount(perturbation, weights=change, minlength=len(indices))
        result: Array = self.center + (total / self.m + l2)
        return result

    def _series_table(self, layer: int) -> Array | None:
        """Per (unit, example) coefficients of the loss change as a polynomial in ``a``.

        When ``A[layer][k, i]`` moves by ``a`` within :meth:`_region`'s limit, the
        logits move by ``a·j`` with ``j = jacobian[k, i]``, and example ``k``'s loss by

        * softmax: ``ȳ·K(a) − a·(y·j)`` with ``K(a) = log Σ_c p_c·exp(a·j_c)`` and
          ``p = softmax(z)``. ``K`` is analytic and bounded by 3.2 on ``|a|·max|j| ≤ 1``,
          so its Taylor series truncated after ``a⁶`` is off by less than
          ``3.2·(|a|·max|j|)⁷/(1 − |a|·max|j|)``: under 4e-21 while ``|a|·max|j| ≤ 1e-3``,
          far below the rounding of the loss;
        * squared error: ``(a·Σ_c 2 r_c j_c + a²·Σ_c j_c²) / n_L`` exactly.

        Returns
        -------
        ndarray of shape (n_l, 1 + degree, m) or None
            Channel 0: the largest ``|a|`` the polynomial serves (the kink limit, and
            1e-3/max|j| for softmax); then the coefficients of ``a¹`` up. None for a
            sigmoid output or when :meth:`_region` is None.
        """
        if layer in self._tables:
            return self._tables[layer]
        region = self._region(layer) if self.net.output != "sigmoid" else None
        table = None
        if region is not None:
            jacobian, limit = region
            J = jacobian if jacobian.ndim == 3 else jacobian[np.newaxis]  # (m or 1, n_l, n_L)
            if self.net.output == "softmax":
                terms = taylor.log_moment_series(J, self._base, _SERIES_DEGREE)
                terms = [term * self._mass[:, np.newaxis] for term in terms]
                terms[0] = terms[0] - (J @ self.targets[:, :, np.newaxis])[..., 0]
                largest = np.abs(J).max(axis=2)
                self._steepest[layer] = largest.max(axis=0)
                reach = np.divide(
                    _SERIES_REACH, largest, out=np.full(largest.shape, np.inf), where=largest > 0
                )
            else:
                width = self.net.layer_sizes[-1]
                terms = [
                    (J @ (2 * self._base[:, :, np.newaxis]))[..., 0] / width,
                    (J * J).sum(axis=2) / width,
                ]
                reach = np.full(J.shape[:2], np.inf)
            if limit is not None:
                reach = np.minimum(reach, limit)
            channels = np.broadcast_arrays(reach, *terms)
            table = np.ascontiguousarray(np.stack(channels, axis=0).transpose(2, 0, 1))
        self._tables[layer] = table
        return table

    def _series_degree(self, layer: int, unit: int, peak: float) -> int:
        """Return the degree that sums ``unit``'s series to the table's accuracy, at ``peak``."""
        if layer not in self._steepest:  # a squared-error table: exact at its degree
            return _SERIES_DEGREE
        r = peak * float(self._steepest[layer][unit])
        return taylor.log_moment_degree(r, _SERIES_ERROR, _SERIES_DEGREE)

    def _logit_change(
        self, layer: int, examples: NDArray[np.intp], unit: int, moved: Array
    ) -> Array:
        """Change of ``Z[L][k]`` when ``A[layer][k, i]`` moves by ``moved``: (P,) -> (P, n_L)."""
        region = self._region(layer)
        if region is None:
            self.paths["propagated"] += len(moved)
            return self._propagate(layer, examples, unit, moved)
        jacobian, limit = region
        rows = jacobian[unit] if jacobian.ndim == 2 else jacobian[examples, unit]
        out: Array = moved[:, np.newaxis] * rows
        # Beyond the limit some later unit crosses its kink: go through the activations.
        outside = np.flatnonzero(
            np.abs(moved) >= limit[examples, unit] if limit is not None else np.zeros(0, bool)
        )
        if len(outside):
            out[outside] = self._propagate(layer, examples[outside], unit, moved[outside])
        self.paths["linear"] += len(moved) - len(outside)
        self.paths["propagated"] += len(outside)
        return out

    def _propagate(self, layer: int, examples: NDArray[np.intp], unit: int, moved: Array) -> Array:
        """:meth:`_logit_change` through the later activations, as differences from θ's pass."""
        g = get_activation(self.net.activation).function
        change: Array = moved[:, np.newaxis] * self.W[layer + 1][:, unit]  # rank-1 change of Z[l+1]
        for later in range(layer + 1, self.net.n_layers):
            shifted = g(self.Z[later][examples] + change) - self.A[later][examples]
            change = shifted @ self.W[later + 1].T
        return change

    def _region(self, layer: int) -> tuple[Array, Array | None] | None:
        """Per-example Jacobians ``∂Z[L]/∂A[layer]`` and how far they stay exact, or None.

        Returns ``(jacobian, limit)``: ``jacobian`` of shape ``(n_l, n_L)`` (the same
        for every example: ``W{L}ᵀ`` when ``layer = L − 1``) or ``(m, n_l, n_L)``;
        ``limit`` of shape ``(m, n_l)``, or None for no limit. A move ``a`` of
        ``A[layer][k, i]`` with ``|a| < limit[k, i]`` leaves every later hidden unit of
        example ``k`` on its side of the activation's kink, so the logits move by
        exactly ``a·jacobian[k, i]``. None when the later activations are curved, or
        the table would not fit in ``memory``.
        """
        if layer not in self._regions:
            self._regions[layer] = self._linear_region(layer)
        return self._regions[layer]

    def _linear_region(self, layer: int) -> tuple[Array, Array | None] | None:
        net, last = self.net, self.net.n_layers
        if layer == last - 1:
            return np.ascontiguousarray(self.W[last].T), None
        if net.activation not in _PIECEWISE_LINEAR:
            return None
        sizes = net.layer_sizes
        if 8 * self.m * sizes[layer] * (sizes[-1] + 1) > self.memory:
            return None
        kinked = _PIECEWISE_LINEAR[net.activation]
        slope = get_activation(net.activation).derivative
        jacobian = np.empty((self.m, sizes[layer], sizes[-1]))
        limit = np.full((self.m, sizes[layer]), np.inf)
        chunk = max(1, _CACHE_BLOCK // (8 * max(sizes[layer + 1 :]) * sizes[layer]))
        for start in range(0, self.m, chunk):
            part = slice(start, min(self.m, start + chunk))
            # ∂Z[q]/∂A[layer] for each example of the part, from q = layer + 1 on.
            partial: Array = self.W[layer + 1][np.newaxis]
            for later in range(layer + 1, last):
                z = self.Z[later][part]
                if kinked:
                    size = np.abs(partial)
                    room = np.divide(
                        np.abs(z)[:, :, np.newaxis],
                        size,
                        out=np.full(np.broadcast_shapes((*z.shape, 1), size.shape), np.inf),
                        where=size > 0,
                    )
                    np.minimum(limit[part], room.min(axis=1), out=limit[part])
                partial = self.W[later + 1] @ (slope(z)[:, :, np.newaxis] * partial)
            jacobian[part] = partial.transpose(0, 2, 1)
        # Half the distance to the nearest kink: a margin for the rounding of the table.
        return jacobian, 0.5 * limit if kinked else None

    def _output_change(
        self, examples: NDArray[np.intp], change: Array, column: int | None = None
    ) -> Array:
        """Change of example ``k``'s loss when its logits move by ``change``.

        ``change`` is ``(P, n_L)``, or ``(P,)`` for logit ``column`` alone. Expanded
        around θ's pass so that no two large numbers are subtracted:
        ``logsumexp(z + Δ) − logsumexp(z) = log1p(Σ_c p_c·expm1(Δ_c))`` for softmax
        with ``p = softmax(z)``, ``softplus(z + Δ) − softplus(z) = log1p(σ(z)·expm1(Δ))``
        for sigmoid, and ``(r + Δ)² − r² = Δ·(2r + Δ)`` for the squared error.
        """
        output = self.net.output
        where = (examples,) if column is None else (examples, column)
        step = change if column is None else change[:, np.newaxis]
        base = self._base[where].reshape(step.shape)
        ones = np.ones(step.shape[1])  # row sums as matrix-vector products: short rows
        linear = (self.targets[where].reshape(step.shape) * step) @ ones
        if output == "linear":
            squared: Array = ((2 * base + step) * step) @ ones / self._base.shape[1]
            return squared
        peak = float(np.max(np.abs(step), initial=0.0))
        grown = base * taylor.expm1_small(step, peak)
        if output == "softmax":
            total = grown @ ones
            total_peak = float(np.max(np.abs(total), initial=0.0))
            curved = taylor.log1p_small(total, total_peak) * self._mass[examples]
        else:
            curved = taylor.log1p_small(grown, float(np.max(np.abs(grown), initial=0.0))) @ ones
        if peak > _EXPANSION_LIMIT:
            # Far from θ the expansion loses digits (log1p near −1): there use the plain formula.
            far = np.flatnonzero(np.abs(step).max(axis=1) > _EXPANSION_LIMIT)
            full = np.zeros((far.size, self._base.shape[1]))
            if column is None:
                full[:] = change[far]
            else:
                full[:, column] = change[far]
            logits = self.Z[self.net.n_layers][examples[far]]
            if output == "softmax":
                jump = taylor.logsumexp(logits + full) - taylor.logsumexp(logits)
                curved[far] = jump[:, 0] * self._mass[examples[far]]
            else:
                curved[far] = np.sum(
                    np.logaddexp(0.0, logits + full) - np.logaddexp(0.0, logits), axis=1
                )
        result: Array = curved - linear
        return result
