"""How signals travel through a real network: per-layer statistics on a probe batch.

The course notes' argument: with linear activations and zero biases, ``ŷ = w^L·x``, so the
output explodes for ``w > 1`` and vanishes for ``w < 1``, and so do the gradients.
:func:`gradprobe.deep_linear` computes exactly that example; :func:`propagation`
measures the same effect in a real network on a probe batch;
:func:`gradprobe.depth_sweep` compares initializations on fresh deep networks.

The gradient comes from a *probe*, not a task loss: a fixed standard-normal matrix
``G`` (drawn from ``seed``) is fed in as ``dZ[L]``, the gradient at the last
pre-activation, and backpropagated through the network's own activation
derivatives. That is the gradient of the probe loss ``J = (1/m)·Σ G ⊙ Z[L]``, so the
statistics depend on the architecture and its weights alone, not on labels or the
output layer. Each weight gradient is then ``dW{l} = dZ[l].T @ A[l-1] / m``. The
verdict is described in :mod:`gradprobe.signals.judge`; its forward signal is the
pre-activation ``Z[l]``, not ``A[l]``: a bounded activation such as tanh hides weights
that are far too large (``|A| <= 1`` however large ``Z`` grows, the units simply
saturate), and an output sigmoid squashes an exploding signal to exactly 0 or 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._text import html_card, level_of
from gradprobe.errors import InvalidArgumentError
from gradprobe.signals.judge import (
    Array,
    Judgement,
    headline,
    judge,
    moment,
    rms,
)

__all__ = ["LayerStatistics", "PropagationReport", "assess", "is_symmetric", "layer_statistics"]

# How far σ_w² = fan_in·E[W²] may sit from the recommended scale and count as on it:
# 20%, or four standard deviations of a Gaussian draw's sample scale, √(2/size) relative,
# when a small layer makes that wider.
_SCALE_SLACK = 0.2
_SCALE_DEVIATIONS = 4.0

# Activation values that count as saturated, for the activations that saturate.
_SATURATED: dict[str, Callable[[Array], NDArray[np.bool_]]] = {
    "tanh": lambda A: np.abs(A) > 0.99,
    "sigmoid": lambda A: (A < 0.01) | (A > 0.99),
}


@dataclass(frozen=True)
class LayerStatistics:
    """What one layer did to the probe batch.

    Attributes
    ----------
    layer : int
        ``l``, from 1 (first weight layer) to ``L`` (output layer).
    mean, std, second_moment : float
        Of the activations ``A[l]`` over the batch and the units.
    preactivation_moment : float
        ``E[Z[l]²]``, the second moment of the pre-activations (for the output layer,
        before the output activation); the forward signal the verdict judges.
    dead : float
        The fraction of units whose activation is exactly 0 for every example.
    saturated : float
        The fraction of activation values in saturation (``|tanh| > 0.99``; sigmoid
        below 0.01 or above 0.99); 0 for activations that do not saturate.
    gradient_norm : float
        ``‖dW{l}‖``, the Frobenius norm of the weight gradient.
    gradient_ratio : float
        ``‖dW{l}‖ / ‖dW{l+1}‖``; NaN for the last layer.
    backward_moment : float
        ``E[dZ[l]²]``, the second moment of the backpropagated signal.
    weight_scale : float
        ``fan_in · E[W{l}²]``, the σ_w² the layer's weights actually have.
    """

    layer: int
    mean: float
    std: float
    second_moment: float
    preactivation_moment: float
    dead: float
    saturated: float
    gradient_norm: float
    gradient_ratio: float
    backward_moment: float
    weight_scale: float

    def to_dict(self) -> dict[str, float]:
        """Return the fields as a plain dictionary."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class PropagationReport:
    """Per-layer signal statistics of one network on one probe batch, and a verdict.

    Attributes
    ----------
    layers : tuple of LayerStatistics
        Layers ``1..L``.
    activation : str
        The hidden activation.
    input_std, input_second_moment : float
        Of the probe batch ``X``.
    verdict : str
        "healthy", "vanishing" or "exploding".
    trouble_layer : int or None
        Where trouble starts: the first layer beyond the tolerance (for gradients,
        counted from the output), or the layer that overflowed; None when healthy.
    direction : str or None
        "forward" (pre-activations) or "backward" (gradients): which pass decided.
    summary : str
        The verdict in one line, e.g. ``"exploding: overflow at layer 37"``.
    advice : str
        One sentence saying what to change.
    findings : tuple of str
        Everything notable: overflow, dead and saturated units, symmetric layers.
    symmetric_layer : int or None
        The first hidden layer whose units all compute the same value (so gradient
        descent can never make them differ), e.g. after zero initialization.
    overflow_layer : int or None
        The layer where infinity or NaN first appeared.
    tolerance : float
        The factor used for the verdict.
    """

    layers: tuple[LayerStatistics, ...]
    activation: str
    input_std: float
    input_second_moment: float
    verdict: str
    trouble_layer: int | None
    direction: str | None
    summary: str
    advice: str
    findings: tuple[str, ...] = field(default=())
    symmetric_layer: int | None = None
    overflow_layer: int | None = None
    tolerance: float = 100.0

    @property
    def depth(self) -> int:
        """L, the number of weight layers."""
        return len(self.layers)

    @property
    def rows(self) -> list[dict[str, float]]:
        """One dictionary per layer (the fields of :class:`LayerStatistics`)."""
        return [layer.to_dict() for layer in self.layers]

    def column(self, name: str) -> Array:
        """Return one statistic for layers ``1..L`` as an array of shape ``(L,)``.

        Examples
        --------
        >>> import numpy as np
        >>> from gradprobe import MLP, propagation
        >>> report = propagation(MLP([4, 8, 8, 2], output="linear"), np.ones((16, 4)))
        >>> report.column("std").shape
        (3,)
        """
        if name not in LayerStatistics.__dataclass_fields__:
            raise InvalidArgumentError(
                f"name: got {name!r}, expected one of "
                f"{', '.join(LayerStatistics.__dataclass_fields__)}"
            )
        return np.array([getattr(layer, name) for layer in self.layers], dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """Return everything as plain Python objects (lists, floats, strings)."""
        return {
            "activation": self.activation,
            "input_std": self.input_std,
            "input_second_moment": self.input_second_moment,
            "verdict": self.verdict,
            "trouble_layer": self.trouble_layer,
            "direction": self.direction,
            "summary": self.summary,
            "advice": self.advice,
            "findings": list(self.findings),
            "symmetric_layer": self.symmetric_layer,
            "overflow_layer": self.overflow_layer,
            "tolerance": self.tolerance,
            "layers": self.rows,
        }

    def __str__(self) -> str:
        lines = [
            f"signal propagation through {self.depth} layers ({self.activation}): {self.summary}",
            f"{'layer':>5} {'mean':>10} {'std':>10} {'E[A²]':>10} {'E[Z²]':>10} {'dead':>6} "
            f"{'satur.':>6} "
            f"{'‖dW‖':>10} {'ratio':>8} {'σ_w²':>7}",
            f"{'input':>5} {'':>10} {self.input_std:>10.3g} {self.input_second_moment:>10.3g}",
        ]
        for row in self.layers:
            lines.append(
                f"{row.layer:>5} {row.mean:>10.3g} {row.std:>10.3g} {row.second_moment:>10.3g} "
                f"{row.preactivation_moment:>10.3g} {row.dead:>6.0%} {row.saturated:>6.0%} "
                f"{row.gradient_norm:>10.3g} "
                f"{row.gradient_ratio:>8.3g} {row.weight_scale:>7.3g}"
            )
        lines += [f"- {finding}" for finding in self.findings]
        return "\n".join([*lines, self.advice])

    def __repr__(self) -> str:
        verdict = f"verdict={self.verdict!r}, trouble_layer={self.trouble_layer}"
        return f"PropagationReport(depth={self.depth}, activation={self.activation!r}, {verdict})"

    def _repr_html_(self) -> str:
        """Show the report in a notebook: the verdict and advice, then one row per layer."""
        cells = ("{:.3g}", "{:.0%}", "{:.0%}", "{:.3g}")
        fields = ("std", "dead", "saturated", "gradient_norm")
        rows = [
            [str(n), *(c.format(getattr(row, f)) for c, f in zip(cells, fields, strict=True))]
            for n, row in enumerate(self.layers, start=1)
        ]
        title = f"signal propagation through {self.depth} layers ({self.activation})"
        headers = ["layer", "std of A", "dead", "saturated", "‖dW‖"]
        lines = [self.summary, self.advice, *self.findings]
        return html_card(title, level_of(self.verdict), lines, headers, rows)


def _advice(
    judgement: Judgement,
    report_symmetric: int | None,
    activation: str,
    weight_scale: Array,
    weight_size: NDArray[np.intp],
    recommended: float,
) -> str:
    fix = (
        f"draw every W ~ N(0, {recommended:.3g}/fan_in), the scale "
        f"gradprobe.recommend_scale gives for {activation} (init='auto')"
    )
    if report_symmetric is not None:
        return (
            f"Break the symmetry: every unit of layer {report_symmetric} computes the same "
            f"value, so initialize the weights randomly: {fix}."
        )
    if judgement.verdict == "healthy":
        return "Nothing to change: activations and gradients keep their scale through depth."
    # The weights' own scale, not the verdict, says which way to move them: tanh weights
    # ×10 too large saturate the units, and the gradients may then vanish.
    slack = np.maximum(_SCALE_SLACK, _SCALE_DEVIATIONS * np.sqrt(2 / weight_size))
    with np.errstate(invalid="ignore"):
        ratio = weight_scale / recommended
    large = np.flatnonzero(ratio > 1 + slack) + 1
    small = np.flatnonzero(ratio < 1 - slack) + 1
    if large.size == small.size == 0:
        layer = judgement.layer if judgement.layer is not None else 1
        return (
            f"The weights already have the recommended scale (σ_w² ≈ "
            f"{weight_scale[layer - 1]:.3g}), so {activation} itself "
            f"{'shrinks' if judgement.verdict == 'vanishing' else 'grows'} the signal: use a "
            "non-saturating activation such as relu, add normalization layers, or use fewer "
            "layers."
        )
    if large.size and small.size:
        return (
            f"Rescale the initial weights: σ_w² per fan-in is above {recommended:.3g} at "
            f"{_layers(large)} and below it at {_layers(small)}; {fix}."
        )
    change, off = ("Shrink", large) if large.size else ("Enlarge", small)
    scales = weight_scale[off - 1]
    lowest, highest = float(np.min(scales)), float(np.max(scales))
    spread = f"{lowest:.3g}" if highest <= 1.05 * lowest else f"{lowest:.3g} to {highest:.3g}"
    why = ""
    if change == "Shrink" and judgement.verdict == "vanishing" and activation in _SATURATED:
        why = (
            f" The signal vanishes because the weights are too large, not too small: they "
            f"saturate {activation}, where its derivative is nearly 0."
        )
    return (
        f"{change} the initial weights: {_layers(off)} {'has' if off.size == 1 else 'have'} "
        f"σ_w² ≈ {spread} per fan-in, {'above' if change == 'Shrink' else 'below'} the "
        f"recommended {recommended:.3g}; {fix}.{why}"
    )


def _layers(layers: NDArray[np.intp]) -> str:
    """Word layer numbers compactly: ``layer 3``, ``layers 1–4, 7``."""
    runs: list[str] = []
    first = previous = int(layers[0])
    for layer in [*map(int, layers[1:]), None]:
        if layer is not None and layer == previous + 1:
            previous = layer
            continue
        runs.append(str(first) if first == previous else f"{first}–{previous}")
        if layer is not None:
            first = previous = layer
    return f"layer{'s' if layers.size > 1 else ''} {', '.join(runs)}"


def is_symmetric(A: Array) -> bool:
    """Whether every unit (column) of ``A``, shape ``(m, n)``, holds the same values."""
    return A.shape[1] > 1 and bool(np.all(A == A[:, :1]))


def assess(
    layers: Sequence[LayerStatistics],
    *,
    activation: str,
    input_values: Array,
    overflow: tuple[int | None, str],
    symmetric: int | None,
    recommended: float,
    weight_sizes: NDArray[np.intp],
    tolerance: float,
) -> PropagationReport:
    """Judge per-layer statistics of any network and word the verdict and advice.

    This is the single judge of signal propagation: the NumPy MLP's probe and the
    framework probes measure their layers, then call it.

    Parameters
    ----------
    layers : sequence of LayerStatistics
        Layers ``1..L`` in forward order, as :func:`layer_statistics` returns them.
    activation : str
        The hidden activation, for the report and the advice.
    input_values : ndarray
        The probe batch (any shape): its std and second moment are the reference.
    overflow : tuple (layer or None, "forward" or "backward")
        Where infinity or NaN first appeared, and in which pass.
    symmetric : int or None
        The first hidden layer whose units all compute the same value.
    recommended : float
        The weight variance ``σ_w²`` per fan-in recommended for ``activation``
        (:func:`gradprobe.recommend_scale`), for the advice.
    weight_sizes : ndarray of int, shape (L,)
        The number of weights of each layer (how noisy its measured scale is).
    tolerance : float
        The factor a second moment may change over the depth and stay "healthy".

    Returns
    -------
    PropagationReport
    """
    input_moment = moment(input_values)
    if not input_moment > 0:
        raise InvalidArgumentError(
            "X: got a batch of all zeros, expected a probe batch with nonzero entries "
            "(e.g. standard-normal rows)"
        )
    with np.errstate(all="ignore"):
        moments = np.array([layer.preactivation_moment for layer in layers])
        backward = np.array([layer.backward_moment for layer in layers])
        judgement = judge(moments / input_moment, backward / backward[-1], overflow, tolerance)
    weight_scale = np.array([layer.weight_scale for layer in layers])
    return PropagationReport(
        layers=tuple(layers),
        activation=activation,
        input_std=float(np.std(input_values)),
        input_second_moment=input_moment,
        verdict=judgement.verdict,
        trouble_layer=judgement.layer,
        direction=judgement.direction,
        summary=headline(judgement, tolerance, "pre-activations"),
        advice=_advice(judgement, symmetric, activation, weight_scale, weight_sizes, recommended),
        findings=_findings(layers, symmetric, overflow),
        symmetric_layer=symmetric,
        overflow_layer=overflow[0],
        tolerance=tolerance,
    )


def layer_statistics(
    layer: int,
    Z: Array,
    A: Array,
    dZ: Array,
    dW: Array,
    following: Array | None,
    W: Array,
    activation: str,
) -> LayerStatistics:
    """Measure one layer: its pre-activations, activations, gradients and weights.

    Parameters
    ----------
    layer : int
        ``l``, counted from 1.
    Z, A : ndarray of shape (m, n_l)
        Pre-activations and activations on the probe batch (units along axis 1;
        a convolution's channels there, positions folded into the examples).
    dZ : ndarray of shape (m, n_l)
        The backpropagated gradient at ``Z``.
    dW, following : ndarray
        The weight gradient of this layer and of the next (None for the last).
    W : ndarray of shape (n_l, fan_in)
        The weights, flattened to fan-out rows.
    activation : str
        The activation applied to ``Z`` (for saturation).

    Returns
    -------
    LayerStatistics
    """
    norm = rms(dW) * np.sqrt(dW.size)
    after = rms(following) * np.sqrt(following.size) if following is not None else np.nan
    saturation = _SATURATED.get(activation)
    return LayerStatistics(
        layer=layer,
        mean=float(np.mean(A)),
        std=rms(A - np.mean(A)),
        second_moment=moment(A),
        preactivation_moment=moment(Z),
        dead=float(np.mean(np.all(A == 0, axis=0))),
        saturated=float(np.mean(saturation(A))) if saturation is not None else 0.0,
        gradient_norm=float(norm),
        gradient_ratio=float(norm / after) if after > 0 else np.nan,
        backward_moment=moment(dZ),
        weight_scale=float(W.shape[1] * np.mean(W**2)),
    )


def _findings(
    layers: Sequence[LayerStatistics], symmetric: int | None, overflow: tuple[int | None, str]
) -> tuple[str, ...]:
    notes = []
    if overflow[0] is not None:
        where = "activations" if overflow[1] == "forward" else "gradients"
        notes.append(f"overflow: {where} reach infinity or NaN at layer {overflow[0]}")
    if symmetric is not None:
        notes.append(
            f"symmetric: all units of layer {symmetric} compute the same value for every "
            "example, so they receive the same gradient and never become different"
        )
    dead = [layer for layer in layers[:-1] if layer.dead > 0]
    if dead:
        worst = max(dead, key=lambda layer: layer.dead)
        notes.append(
            f"dead units: {len(dead)} hidden layers have units that are 0 for the whole batch "
            f"(most: {worst.dead:.0%} at layer {worst.layer})"
        )
    saturated = [layer for layer in layers[:-1] if layer.saturated > 0.5]
    if saturated:
        notes.append(
            f"saturation: {len(saturated)} hidden layers have over half their values saturated "
            f"(first: layer {saturated[0].layer}), where the derivative is nearly 0"
        )
    return tuple(notes)
