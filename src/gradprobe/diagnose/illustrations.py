"""The course notes' pictures, computed on the user's own network and data.

* :func:`cost_surface`: the cost over two first-layer weights, with raw and with
  normalized inputs: the notes' elongated bowl (features on different scales) against
  the round one (normalized), which gradient descent crosses in far fewer steps.
* :func:`step_errors`: the error of one-sided and two-sided differences against the
  step ε for one coordinate of the cost: falling like O(ε) and O(ε²) until rounding
  takes over, with the step a gradient check chooses.

Both return plain data (:class:`Surface`, :class:`StepErrors`); :mod:`gradprobe.report`
draws them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe.nn.mlp import MLP
from gradprobe.numdiff.rules import default_step

__all__ = ["StepErrors", "Surface", "cost_surface", "step_errors"]

Array = NDArray[np.float64]

# Grid points per axis of a cost surface, and the examples its costs are taken on.
_GRID = 31
_EXAMPLES = 200
# Steps from 1e-13 to 1e-1, four per decade.
_STEPS = np.logspace(-13, -1, 49)


@dataclass(frozen=True)
class Surface:
    """The cost over a grid of two weights, for raw and for normalized inputs.

    Attributes
    ----------
    weights : tuple of str
        The two weights varied, e.g. ``("W1[0, 23]", "W1[0, 9]")``.
    features : tuple of str
        The features they multiply: the one with the largest spread, then the smallest.
    offsets : ndarray of float64, shape (points,)
        How far each weight moves from its initial value, the same for both axes.
    raw, normalized : ndarray of float64, shape (points, points)
        The cost, ``[i, j]`` with the first weight moved by ``offsets[j]`` and the
        second by ``offsets[i]``.
    """

    weights: tuple[str, str]
    features: tuple[str, str]
    offsets: Array
    raw: Array
    normalized: Array


@dataclass(frozen=True)
class StepErrors:
    """Errors of difference quotients of the cost against the step, for one coordinate.

    Attributes
    ----------
    coordinate : str
        The coordinate of θ, e.g. ``"W1[3, 0]"``.
    steps : ndarray of float64, shape (k,)
        The steps ε.
    forward, central : ndarray of float64, shape (k,)
        ``|(J(θ+ε) − J(θ))/ε − g|`` and ``|(J(θ+ε) − J(θ−ε))/2ε − g|``.
    chosen : float
        The step a central-difference check takes there, ``∛u·max(1, |θᵢ|)``.
    derivative : float
        ``g``, the derivative from backprop (checked to agree by the gradient check).
    """

    coordinate: str
    steps: Array
    forward: Array
    central: Array
    chosen: float
    derivative: float


def cost_surface(
    net: MLP,
    raw: tuple[NDArray[np.floating[Any]], NDArray[Any]],
    normalized: NDArray[np.floating[Any]],
    names: list[str],
    spread: float = 3.0,
) -> Surface:
    """Return the cost over two weights of the first hidden unit, raw and normalized.

    Parameters
    ----------
    net : MLP
        The network at initialization; not modified.
    raw : (ndarray of shape (m, n), ndarray)
        The raw training inputs and their labels.
    normalized : ndarray of shape (m, n)
        The same inputs normalized.
    names : list of str
        The feature names.
    spread : float, default=3.0
        How far each weight moves from its initial value, either way.
    """
    X, y = raw
    std = X.std(axis=0)
    varied = np.flatnonzero(std > 0)
    first = int(varied[np.argmax(std[varied])])
    second = int(varied[np.argmin(std[varied])])
    offsets = np.linspace(-spread, spread, _GRID)
    params = {key: value.copy() for key, value in net.params.items()}
    start = params["W1"][0, [first, second]].copy()
    was_training = net.training
    net.eval()
    costs = []
    try:
        for inputs in (X, normalized):
            grid = np.empty((_GRID, _GRID))
            for i, below in enumerate(offsets):
                for j, across in enumerate(offsets):
                    params["W1"][0, [first, second]] = start + (across, below)
                    with np.errstate(all="ignore"):
                        grid[i, j] = net.loss(inputs[:_EXAMPLES], y[:_EXAMPLES], params)
            costs.append(grid)
    finally:
        net.training = was_training
    return Surface(
        weights=(f"W1[0, {first}]", f"W1[0, {second}]"),
        features=(names[first], names[second]),
        offsets=offsets,
        raw=costs[0],
        normalized=costs[1],
    )


def step_errors(net: MLP, X: Array, y: NDArray[Any]) -> StepErrors:
    """Return the errors of forward and central differences of the cost against ε.

    The coordinate is the first-layer weight with the largest backprop derivative (a
    derivative near zero would make every error look large next to it). The network
    is evaluated in evaluation mode (no dropout); it is not modified.
    """
    was_training = net.training
    net.eval()
    try:
        params = {key: value.copy() for key, value in net.params.items()}
        center, grads = net.loss_and_grads(X, y, params)
        row, column = np.unravel_index(int(np.argmax(np.abs(grads["W1"]))), grads["W1"].shape)
        derivative = float(grads["W1"][row, column])
        original = float(params["W1"][row, column])
        above, below = np.empty(len(_STEPS)), np.empty(len(_STEPS))
        for k, step in enumerate(_STEPS):
            for sign, out in ((1.0, above), (-1.0, below)):
                params["W1"][row, column] = original + sign * step
                out[k] = net.loss(X, y, params)
        params["W1"][row, column] = original
    finally:
        net.training = was_training
    # The steps actually taken (x + ε − x), as a gradient check uses them.
    up = (original + _STEPS) - original
    down = original - (original - _STEPS)
    return StepErrors(
        coordinate=f"W1[{row}, {column}]",
        steps=_STEPS.copy(),
        forward=np.abs((above - center) / up - derivative),
        central=np.abs((above - below) / (up + down) - derivative),
        chosen=float(default_step("central", original)),
        derivative=derivative,
    )
