"""A framework's MLP answered by gradprobe's structure-aware evaluator: the shared part.

When an adapter (PyTorch's :mod:`gradprobe.torch._mlp`, JAX's
:mod:`gradprobe.jax._mlp`) recognises a plain dense stack under a loss gradprobe's
:class:`~gradprobe.nn.mlp.MLP` computes, the numerical side of its check can come from
:class:`~gradprobe.nn.fastcheck.MLPEvaluator`: one cached forward pass, rank-1
updates and series expansions instead of one forward pass per perturbation. This
module holds what both adapters need for that: :func:`build_mlp` (the copy, from the
layers' weight arrays), :class:`ReplicaRoute` (an evaluator's values taken from the
copy at θ and one coordinate away, anything else left to the adapter's own
evaluator), :func:`agreement` (the copy trusted only when its losses equal the
framework's at θ and at perturbed points, to rounding) and :func:`route_note`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._params import ParameterLayout
from gradprobe.nn.fastcheck import MLPEvaluator
from gradprobe.nn.mlp import MLP
from gradprobe.numdiff.batched import ThetaEvaluator

__all__ = [
    "AGREEMENT",
    "LOSSES",
    "ReplicaRoute",
    "agreement",
    "agrees",
    "build_mlp",
    "moved_points",
    "route_note",
    "spot_points",
]

Array = NDArray[np.float64]
# Agreement demanded between the copy's loss and the framework's, relative to the loss.
AGREEMENT = 1e-12
# Perturbed points compared before the copy is trusted, per checked array.
_SPOT_CHECKS = 2
LOSSES = {
    "softmax": "cross-entropy",
    "linear": "mean squared error",
    "sigmoid": "binary cross-entropy with logits",
}
"""The MLP's output layer -> the loss it stands for, as reports name it."""


def build_mlp(activation: str, output: str, layers: Sequence[tuple[Any, Any]]) -> MLP:
    """Return gradprobe's MLP (evaluation mode) with the given layers' weights, in float64.

    Parameters
    ----------
    activation : str
        The hidden layers' activation (a name of :data:`gradprobe.nn.activations.ACTIVATIONS`).
    output : {"softmax", "linear", "sigmoid"}
        The output layer and its loss.
    layers : sequence of (W, b)
        Each layer's weight, shape ``(n_l, n_{l-1})`` (``Z = A @ W.T + b``), and bias,
        shape ``(n_l,)``; consecutive layers must chain.

    Returns
    -------
    MLP
        The network; its arrays are copies.

    Examples
    --------
    >>> import numpy as np
    >>> layers = [(np.ones((3, 2)), np.zeros(3)), (np.ones((2, 3)), np.zeros(2))]
    >>> net = build_mlp("relu", "softmax", layers)
    >>> net.layer_sizes, net.training
    ([2, 3, 2], False)
    """
    sizes = [int(np.shape(layers[0][0])[1]), *(int(np.shape(w)[0]) for w, _ in layers)]
    net = MLP(sizes, activation=activation, output=output).eval()
    for number, (weight, bias) in enumerate(layers, start=1):
        net.params[f"W{number}"] = np.array(weight, dtype=np.float64)
        net.params[f"b{number}"] = np.array(bias, dtype=np.float64).reshape(-1)
    return net


class ReplicaRoute(ThetaEvaluator):
    """An adapter's evaluator whose values at θ and one coordinate away come from the copy.

    A mixin: the adapter's evaluator class lists it first and calls :meth:`attach`
    after its own initialisation; every other request (θ moved in several
    coordinates, another θ) goes to the adapter's evaluator.

    Attributes
    ----------
    replica : MLPEvaluator
        The copy's evaluator, at the same point.
    theta : ndarray of float64, shape (size,)
        The point of the check, in the adapter's layout.
    to_full : ndarray of intp, shape (size,)
        For each checked coordinate, its position in the copy's θ.
    """

    replica: MLPEvaluator
    theta: Array
    to_full: NDArray[np.intp]
    #: As for the copy's own evaluator: the check measures the noise of the values it
    #: differences, which the copy computes, along coordinates.
    noise_along_coordinates = True

    def attach(self, replica: MLPEvaluator, theta: Array, to_full: NDArray[np.intp]) -> None:
        """Route the values at ``theta`` (the adapter's θ) through ``replica``."""
        self.replica = replica
        self.theta = np.array(theta, dtype=np.float64)
        self.to_full = np.asarray(to_full, dtype=np.intp)

    def replica_values(self, indices: NDArray[np.intp], values: Array) -> Array:
        """Return the copy's loss at θ with ``theta[indices[r]] = values[r]``, for each ``r``."""
        result: Array = self.replica.coordinates(self.replica.theta, self.to_full[indices], values)
        return result

    def coordinates(
        self, theta: NDArray[np.float64], indices: NDArray[np.intp], values: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Return the loss with ``theta[indices[r]] = values[r]``, from the MLP evaluator."""
        if not np.array_equal(theta, self.theta):
            return super().coordinates(theta, indices, values)
        if not len(indices):  # MLPEvaluator cannot be asked for nothing
            return np.empty(0)
        indices, values = np.asarray(indices, dtype=np.intp), np.asarray(values, np.float64)
        self.evaluations += len(indices)
        out = np.empty(len(indices))
        found = np.zeros(len(indices), dtype=bool)
        for points, answers in getattr(self, "_ahead", ()):
            hit = ~found & (values == points[indices])
            out[hit] = answers[indices[hit]]
            found |= hit
        if not found.all():
            out[~found] = self.replica_values(indices[~found], values[~found])
        return out

    def ahead(
        self, theta: NDArray[np.float64], indices: NDArray[np.intp], columns: Sequence[Array]
    ) -> None:
        """Compute every point a differentiation will ask for in one call to the copy.

        The copy's evaluator is fastest asked for all of them at once, grouped by the
        unit they move; the chunks that follow are answered from the table (a value not
        in it is computed as asked). A differentiation at another θ clears the table.
        """
        self._ahead: list[tuple[Array, Array]] = []
        if not np.array_equal(theta, self.theta) or not len(indices) or not columns:
            return
        indices = np.asarray(indices, dtype=np.intp)
        answers = self.replica_values(np.tile(indices, len(columns)), np.concatenate(columns))
        for number, column in enumerate(columns):
            points, table = np.full(self.theta.size, np.nan), np.full(self.theta.size, np.nan)
            points[indices] = column
            table[indices] = answers[number * len(indices) : (number + 1) * len(indices)]
            self._ahead.append((points, table))

    def __call__(self, theta: NDArray[Any], index: int | None = None) -> float:
        """Return the loss at ``theta``, from the copy (cached at θ or one coordinate away)."""
        moved = np.flatnonzero(theta != self.theta)
        self.evaluations += 1
        if len(moved) > 1:
            return float(self.replica(self._full_point(theta), index))
        if not len(moved):
            return float(self.replica.center)
        return float(self.replica_values(moved, np.asarray(theta[moved], dtype=np.float64))[0])

    def rows(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        """Return the copy's loss at every row of ``points``, shape ``(rows, size)``."""
        self.evaluations += len(points)
        return np.array([self.replica(self._full_point(point)) for point in points])

    def _full_point(self, theta: NDArray[Any]) -> Array:
        full: Array = np.array(self.replica.theta, dtype=np.float64)
        full[self.to_full] = theta
        return full


def spot_points(
    layout: ParameterLayout, theta: Array, seed: int = 0
) -> list[tuple[int | None, float]]:
    """Return the points the copy is compared with the framework at, before it is trusted.

    θ itself (``(None, 0.0)``) and, for each array of ``layout``, two seeded random
    coordinates moved by ``1e-3·max(1, |θᵢ|)``, as ``(index, value)``.
    """
    rng = np.random.default_rng(seed)
    points: list[tuple[int | None, float]] = [(None, 0.0)]
    for k in range(len(layout.names)):
        span = np.arange(layout.offsets[k], layout.offsets[k + 1])
        for index in rng.choice(span, min(_SPOT_CHECKS, len(span)), replace=False):
            points.append((int(index), float(theta[index]) + 1e-3 * max(1.0, abs(theta[index]))))
    return points


def moved_points(theta: Array, points: Sequence[tuple[int | None, float]]) -> Array:
    """Return θ at each of ``points``, shape ``(len(points), size)``."""
    thetas: Array = np.tile(theta, (len(points), 1))
    for row, (index, value) in enumerate(points):
        if index is not None:
            thetas[row, index] = value
    return thetas


def agreement(
    route: ReplicaRoute,
    points: Sequence[tuple[int | None, float]],
    expected: Sequence[float] | Array,
) -> int | None:
    """Return how many perturbed points the copy matched the framework at, or None.

    ``expected`` is the framework's loss at each of ``points`` (from
    :func:`spot_points`); the copy matches when each of its values is within
    :data:`AGREEMENT` of the framework's, relative to the loss.
    """
    for (index, value), reference in zip(points, expected, strict=True):
        if index is None:
            got = float(route.replica.center)
        else:
            got = float(route.replica_values(np.array([index]), np.array([value]))[0])
        if not agrees(got, float(reference)):
            return None
    return len(points) - 1


def agrees(got: float, expected: float) -> bool:
    """Whether the copy's loss ``got`` is the framework's ``expected``, to :data:`AGREEMENT`."""
    return abs(got - expected) <= AGREEMENT * max(abs(expected), np.finfo(float).tiny)


def route_note(net: MLP, framework: str, what: str, points: int, analytic: str) -> str:
    """Return the report's line saying the numerical values came from the copy."""
    return (
        f"numerical values from gradprobe's structure-aware MLP evaluator: the {what} is a "
        f"plain {net.activation} MLP {net.layer_sizes} under {LOSSES[net.output]}, whose loss "
        f"agreed with {framework}'s to 1e-12 at θ and at {points} perturbed points; the "
        f"analytic gradient is {analytic}"
    )
