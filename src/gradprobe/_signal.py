"""What the depth tools share: backpropagating a probe, robust moments and the verdict.

The verdict compares, layer by layer, the activations' second moment ``E[A[l]²]``
with the input's, and the backpropagated signal's second moment ``E[dZ[l]²]`` with
the probe's. If every ratio stays within ``tolerance`` (default ×100) the network is
"healthy"; otherwise the activations decide between "exploding" and "vanishing"
when they leave the band (the gradients when only they do), and the first layer
beyond the tolerance is where trouble starts (counted from the output for gradients).
Arithmetic overflow is caught and reported ("exploding: overflow at layer 37").
:func:`gradprobe.deep_linear` and :func:`gradprobe.propagation` both judge with
:func:`judge` and word the verdict with :func:`headline`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe.errors import InvalidArgumentError

__all__ = [
    "Array",
    "Judgement",
    "backpropagate",
    "check_tolerance",
    "first_nonfinite",
    "headline",
    "judge",
    "moment",
    "rms",
]

Array = NDArray[np.floating[Any]]


@dataclass(frozen=True)
class Judgement:
    """A verdict, the layer where trouble starts, which pass decided and by what factor."""

    verdict: str
    layer: int | None
    direction: str | None
    factor: float
    overflow: bool


def judge(
    forward: Array, backward: Array, overflow: tuple[int | None, str], tolerance: float
) -> Judgement:
    """Decide the verdict from per-layer ratios (index ``l − 1`` for layer ``l``).

    ``forward[l−1] = E[A[l]²] / E[A[0]²]``; ``backward[l−1] = E[dZ[l]²] / E[dZ[L]²]``.
    """
    overflow_layer, overflow_direction = overflow
    if overflow_layer is not None:
        return Judgement("exploding", overflow_layer, overflow_direction, np.inf, True)
    with np.errstate(divide="ignore"):
        logs = {"forward": np.log10(forward), "backward": np.log10(backward)}
    limit = np.log10(tolerance)
    # The forward pass comes first: when activations leave the band, gradients follow.
    outside = {name: float(np.max(np.abs(values))) > limit for name, values in logs.items()}
    worst = "forward" if outside["forward"] or not outside["backward"] else "backward"
    extreme = logs[worst][np.argmax(np.abs(logs[worst]))]
    if abs(extreme) <= limit:
        return Judgement("healthy", None, None, float(10.0**extreme), False)
    beyond = np.flatnonzero(logs[worst] > limit if extreme > 0 else logs[worst] < -limit) + 1
    # Signals travel forward from layer 1, gradients backward from layer L.
    layer = int(beyond[0] if worst == "forward" else beyond[-1])
    verdict = "exploding" if extreme > 0 else "vanishing"
    return Judgement(verdict, layer, worst, float(10.0**extreme), False)


def headline(judgement: Judgement, tolerance: float) -> str:
    """Word a judgement in one line, e.g. ``"exploding: overflow at layer 37"``."""
    if judgement.verdict == "healthy":
        return "healthy"
    if judgement.overflow:
        where = "" if judgement.direction == "forward" else " in the backward pass"
        return f"exploding: overflow at layer {judgement.layer}{where}"
    what = "activations" if judgement.direction == "forward" else "gradients"
    return (
        f"{judgement.verdict}: {what} leave the ×{tolerance:g} band at layer {judgement.layer}; "
        f"their second moment reaches ×{judgement.factor:.2g} of the "
        f"{'input' if judgement.direction == 'forward' else 'output'}'s"
    )


def check_tolerance(tolerance: object) -> float:
    """Return the factor a second moment may change by and stay "healthy": finite, > 1."""
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, (int, float, np.integer, np.floating))
        or not 1 < float(tolerance) < np.inf
    ):
        raise InvalidArgumentError(
            f"tolerance: got {tolerance!r}, expected a finite factor > 1 such as 100"
        )
    return float(tolerance)


def rms(values: Array) -> float:
    """Return the root mean square without squaring huge values into infinity."""
    largest = float(np.max(np.abs(values)))
    if not 0 < largest < np.inf:
        return largest  # 0, inf or NaN
    return largest * float(np.sqrt(np.mean((values / largest) ** 2)))


def moment(values: Array) -> float:
    """Return the second moment ``E[x²]``; infinity when it exceeds the float range."""
    return float(np.square(np.float64(rms(values))))


def first_nonfinite(arrays: Mapping[int, Array], depth: int) -> int | None:
    """Return the first layer ``1..depth`` holding infinity or NaN, or None."""
    for layer in range(1, depth + 1):
        if not np.all(np.isfinite(arrays[layer])):
            return layer
    return None


def backpropagate(
    Z: Mapping[int, Array],
    A: Mapping[int, Array],
    weights: Mapping[int, Array],
    derivative: Callable[[Any], Any] | None,
    probe: Array,
    masks: Mapping[int, Array] | None = None,
) -> tuple[dict[int, Array], Array, dict[int, Array]]:
    """Backpropagate ``dZ[L] = probe``; return ``dZ[l]``, ``dA[0]`` and ``dW{l}``, l = 1..L.

    ``derivative`` is the hidden activation's; None means linear layers.
    """
    depth = len(weights)
    m = probe.shape[0]
    dZ, dW = {depth: probe}, {}
    dA = probe
    for layer in range(depth, 0, -1):
        dW[layer] = dZ[layer].T @ A[layer - 1] / m
        dA = dZ[layer] @ weights[layer]
        if layer > 1:
            if masks and layer - 1 in masks:
                dA = dA * masks[layer - 1]
            dZ[layer - 1] = dA if derivative is None else dA * derivative(Z[layer - 1])
    return dZ, dA, dW
