"""What the depth tools share: backpropagating a probe, robust moments and the verdict.

The verdict compares, layer by layer, the forward signal's second moment (the
pre-activations ``E[Z[l]²]`` in :func:`gradprobe.propagation`) with the input's, and
the backpropagated signal's second moment ``E[dZ[l]²]`` with the probe's. If every
ratio stays within ``tolerance`` (default ×100) the network is "healthy". Otherwise
the forward pass decides when it leaves the band (the backward pass when only it
does), and the verdict is read where trouble starts: at the first layer beyond the
tolerance, counted from the input for the forward pass and from the output for the
backward pass. That layer's ratio says "exploding" (above the band) or "vanishing"
(below it), so a signal that explodes and is later squashed (a saturated output
probability of exactly 0) is still "exploding". Arithmetic overflow is caught and
reported ("exploding: overflow at layer 37"). :func:`gradprobe.deep_linear` and
:func:`gradprobe.propagation` both judge with :func:`judge` and word the verdict with
:func:`headline`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Array",
    "Judgement",
    "backpropagate",
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

    ``forward[l−1]`` is the forward signal's second moment at layer ``l`` over the
    input's (``E[Z[l]²] / E[A[0]²]``); ``backward[l−1] = E[dZ[l]²] / E[dZ[L]²]``.
    """
    overflow_layer, overflow_direction = overflow
    if overflow_layer is not None:
        return Judgement("exploding", overflow_layer, overflow_direction, np.inf, True)
    with np.errstate(divide="ignore"):
        logs = {"forward": np.log10(forward), "backward": np.log10(backward)}
    limit = np.log10(tolerance)
    # The forward pass comes first: when the signal leaves the band, gradients follow.
    for direction in ("forward", "backward"):
        values = logs[direction]
        beyond = np.flatnonzero(np.abs(values) > limit)
        if beyond.size == 0:
            continue
        # Signals travel forward from layer 1, gradients backward from layer L.
        start = int(beyond[0] if direction == "forward" else beyond[-1])
        exploding = bool(values[start] > 0)
        extreme = np.nanmax(values) if exploding else np.nanmin(values)
        verdict = "exploding" if exploding else "vanishing"
        return Judgement(verdict, start + 1, direction, float(10.0**extreme), False)
    judged = logs["forward"][np.isfinite(logs["forward"])]
    extreme = judged[np.argmax(np.abs(judged))] if judged.size else 0.0
    return Judgement("healthy", None, None, float(10.0**extreme), False)


def headline(
    judgement: Judgement,
    tolerance: float,
    signal: str = "activations",
    names: Sequence[str] | None = None,
    references: tuple[str, str] = ("input", "output"),
) -> str:
    """Word a judgement in one line, e.g. ``"exploding: overflow at layer 37"``.

    ``signal`` names what the forward ratios measured; ``names`` (one per layer, from
    layer 1) name the layer instead of its number; ``references`` what the forward and
    the backward ratios are relative to.
    """
    if judgement.verdict == "healthy":
        return "healthy"
    layer = judgement.layer
    if names is not None and layer is not None and 1 <= layer <= len(names):
        where_layer = f"{names[layer - 1]} (weight layer {layer})"
    else:
        where_layer = str(layer)
    if judgement.overflow:
        where = "" if judgement.direction == "forward" else " in the backward pass"
        return f"exploding: overflow at layer {where_layer}{where}"
    what = signal if judgement.direction == "forward" else "gradients"
    return (
        f"{judgement.verdict}: {what} leave the ×{tolerance:g} band at layer {where_layer}; "
        f"their second moment reaches ×{judgement.factor:.2g} of the "
        f"{references[0] if judgement.direction == 'forward' else references[1]}'s"
    )


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
