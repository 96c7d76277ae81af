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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe.errors import InvalidArgumentError
from gradprobe.signals._cards import propagation_card, propagation_repr
from gradprobe.signals.advice import NumpyWording, Wording, advise
from gradprobe.signals.judge import Array, headline, judge, moment, rms

__all__ = [
    "SATURATION_BOUNDS",
    "LayerStatistics",
    "PropagationReport",
    "assess",
    "is_symmetric",
    "layer_statistics",
]

SATURATION_BOUNDS: dict[str, tuple[float, float]] = {
    "tanh": (-0.99, 0.99),
    "sigmoid": (0.01, 0.99),
}
"""Activation -> the open interval outside which its values count as saturated (there its
derivative is nearly 0): ``|tanh| > 0.99``, sigmoid below 0.01 or above 0.99."""


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
    name : str or None, default=None
        The layer's name in its framework (a PyTorch module path such as ``features.7``).
    activation : str or None, default=None
        The activation that follows the layer, when it differs from layer to layer.
    input_moment : float or None, default=None
        ``E[X²]`` of the signal entering the layer.
    input_gradient : float or None, default=None
        ``E[dX²]``, the second moment of the gradient reaching the layer's input.
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
    name: str | None = None
    activation: str | None = None
    input_moment: float | None = None
    input_gradient: float | None = None

    @property
    def label(self) -> str:
        """The name when there is one, else the layer number."""
        return self.name if self.name is not None else str(self.layer)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a plain dictionary (optional fields only when set)."""
        return {key: value for key, value in self.__dict__.items() if value is not None}


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
    notes : tuple of str
        How the probe ran (precision, mode, what was judged), for frameworks' probes.
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
    notes: tuple[str, ...] = field(default=())
    __repr__ = propagation_repr  # a short line, and a card in a notebook
    _repr_html_ = propagation_card

    @property
    def depth(self) -> int:
        """L, the number of weight layers."""
        return len(self.layers)

    @property
    def trouble_name(self) -> str | None:
        """The name (or number) of :attr:`trouble_layer`; None when healthy."""
        if self.trouble_layer is None:
            return None
        return self.layers[self.trouble_layer - 1].label

    @property
    def names(self) -> list[str]:
        """Every layer's name, or its number where it has none."""
        return [layer.label for layer in self.layers]

    @property
    def rows(self) -> list[dict[str, Any]]:
        """One dictionary per layer (the fields of :class:`LayerStatistics`)."""
        return [layer.to_dict() for layer in self.layers]

    def column(self, name: str) -> Array:
        """Return one numeric statistic for layers ``1..L`` as an array of shape ``(L,)``.

        Examples
        --------
        >>> import numpy as np
        >>> from gradprobe import MLP, propagation
        >>> report = propagation(MLP([4, 8, 8, 2], output="linear"), np.ones((16, 4)))
        >>> report.column("std").shape
        (3,)
        """
        fields = LayerStatistics.__dataclass_fields__
        numeric = [key for key in fields if key not in {"name", "activation", "layer"}]
        if name not in [*numeric, "layer"]:
            raise InvalidArgumentError(f"name: got {name!r}, expected one of {', '.join(numeric)}")
        values = [getattr(layer, name) for layer in self.layers]
        return np.array([np.nan if value is None else value for value in values], dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """Return everything as plain Python objects (lists, floats, strings)."""
        return {
            "activation": self.activation,
            "input_std": self.input_std,
            "input_second_moment": self.input_second_moment,
            "verdict": self.verdict,
            "trouble_layer": self.trouble_layer,
            "trouble_name": self.trouble_name,
            "direction": self.direction,
            "summary": self.summary,
            "advice": self.advice,
            "findings": list(self.findings),
            "notes": list(self.notes),
            "symmetric_layer": self.symmetric_layer,
            "overflow_layer": self.overflow_layer,
            "tolerance": self.tolerance,
            "layers": self.rows,
        }

    def __str__(self) -> str:
        named = any(layer.name is not None for layer in self.layers)
        width = max([5, *(len(layer.label) for layer in self.layers)]) if named else 5
        lines = [
            f"signal propagation through {self.depth} layers ({self.activation}): {self.summary}",
            f"{'layer':>{width}} {'mean':>10} {'std':>10} {'E[A²]':>10} {'E[Z²]':>10} "
            f"{'dead':>6} {'satur.':>6} {'‖dW‖':>10} {'ratio':>8} {'σ_w²':>7}"
            + (f" {'E[X²]':>10} {'E[dX²]':>10} activation" if named else ""),
            f"{'input':>{width}} {'':>10} {self.input_std:>10.3g} "
            f"{self.input_second_moment:>10.3g}",
        ]
        for row in self.layers:
            line = (
                f"{row.label:>{width}} {row.mean:>10.3g} {row.std:>10.3g} "
                f"{row.second_moment:>10.3g} {row.preactivation_moment:>10.3g} {row.dead:>6.0%} "
                f"{row.saturated:>6.0%} {row.gradient_norm:>10.3g} {row.gradient_ratio:>8.3g} "
                f"{row.weight_scale:>7.3g}"
            )
            if named:
                extra = [row.input_moment, row.input_gradient]
                line += (
                    "".join(f" {np.nan if value is None else value:>10.3g}" for value in extra)
                    + f" {row.activation or ''}"
                )
            lines.append(line)
        lines += [f"- {finding}" for finding in self.findings]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join([*lines, self.advice])


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
    recommended: float | Array,
    weight_sizes: NDArray[np.intp],
    tolerance: float,
    forward: Array | None = None,
    backward: Array | None = None,
    wording: Wording | None = None,
    advised: NDArray[np.bool_] | None = None,
    notes: Sequence[str] = (),
    argument: str = "X",
    references: tuple[str, str] = ("input", "output"),
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
    recommended : float or ndarray of shape (L,)
        The weight variance ``σ_w²`` per fan-in recommended for the activation after
        each layer (:func:`gradprobe.recommend_scale`), for the advice.
    weight_sizes : ndarray of int, shape (L,)
        The number of weights of each layer (how noisy its measured scale is).
    tolerance : float
        The factor a second moment may change over the depth and stay "healthy".
    forward, backward : ndarray of shape (L,), optional
        The signals to judge, as ratios to their reference (NaN: not judged at that
        layer). By default ``E[Z[l]²] / E[X²]`` and ``E[dZ[l]²] / E[dZ[L]²]``, the right
        signals for a plain stack of layers; a framework probe passes the signals that
        stay meaningful across residual and normalization layers.
    wording : Wording, optional
        How the advice names layers and remedies; by default gradprobe's MLP words.
    advised : ndarray of bool, shape (L,), optional
        The layers whose weight scale the advice may name (default all): not those whose
        output a normalization layer rescales anyway.
    notes : sequence of str
        How the probe ran, for the report.
    argument : str, default="X"
        The name of the probe batch in error messages.
    references : tuple of str, default=("input", "output")
        What the forward and the backward ratios are relative to, for the summary.

    Returns
    -------
    PropagationReport
    """
    input_moment = moment(input_values)
    if not input_moment > 0:
        raise InvalidArgumentError(
            f"{argument}: got a batch of all zeros, expected a probe batch with nonzero entries "
            "(e.g. standard-normal rows)"
        )
    signal = "pre-activations" if forward is None else "signals"
    with np.errstate(all="ignore"):
        if forward is None:
            forward = np.array([layer.preactivation_moment for layer in layers]) / input_moment
        if backward is None:
            moments = np.array([layer.backward_moment for layer in layers])
            backward = moments / moments[-1]
        judgement = judge(forward, backward, overflow, tolerance)
    names = [layer.label for layer in layers] if any(layer.name for layer in layers) else None
    weight_scale = np.array([layer.weight_scale for layer in layers])
    scales = np.broadcast_to(np.asarray(recommended, dtype=np.float64), weight_scale.shape)
    dead = next((layer.layer for layer in layers[:-1] if layer.dead == 1.0), None)
    activations = [layer.activation or activation for layer in layers]
    return PropagationReport(
        layers=tuple(layers),
        activation=activation,
        input_std=float(np.std(input_values)),
        input_second_moment=input_moment,
        verdict=judgement.verdict,
        trouble_layer=judgement.layer,
        direction=judgement.direction,
        summary=headline(judgement, tolerance, signal, names, references),
        advice=advise(
            judgement,
            symmetric=symmetric,
            dead=dead if symmetric is None else None,
            activations=activations,
            weight_scale=weight_scale
            if advised is None
            else np.where(advised, weight_scale, np.nan),
            weight_size=weight_sizes,
            recommended=scales,
            wording=wording or NumpyWording(activation, float(scales[0])),
        ),
        findings=_findings(layers, symmetric, overflow),
        symmetric_layer=symmetric,
        overflow_layer=overflow[0],
        tolerance=tolerance,
        notes=tuple(notes),
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
    bounds = SATURATION_BOUNDS.get(activation)
    return LayerStatistics(
        layer=layer,
        mean=float(np.mean(A)),
        std=rms(A - np.mean(A)),
        second_moment=moment(A),
        preactivation_moment=moment(Z),
        dead=float(np.mean(np.all(A == 0, axis=0))),
        saturated=float(np.mean((A < bounds[0]) | (A > bounds[1]))) if bounds else 0.0,
        gradient_norm=float(norm),
        gradient_ratio=float(norm / after) if after > 0 else np.nan,
        backward_moment=moment(dZ),
        weight_scale=float(W.shape[1] * np.mean(W**2)),
    )


def _findings(
    layers: Sequence[LayerStatistics], symmetric: int | None, overflow: tuple[int | None, str]
) -> tuple[str, ...]:
    label = {layer.layer: layer.label for layer in layers}
    notes = []
    if overflow[0] is not None:
        where = "activations" if overflow[1] == "forward" else "gradients"
        at = label.get(overflow[0], str(overflow[0]))
        notes.append(f"overflow: {where} reach infinity or NaN at layer {at}")
    if symmetric is not None:
        notes.append(
            f"symmetric: all units of layer {label[symmetric]} compute the same value for every "
            "example, so they receive the same gradient and never become different"
        )
    dead = [layer for layer in layers[:-1] if layer.dead > 0]
    if dead:
        worst = max(dead, key=lambda layer: layer.dead)
        notes.append(
            f"dead units: {len(dead)} hidden layers have units that are 0 for the whole batch "
            f"(most: {worst.dead:.0%} at layer {worst.label})"
        )
    saturated = [layer for layer in layers[:-1] if layer.saturated > 0.5]
    if saturated:
        notes.append(
            f"saturation: {len(saturated)} hidden layers have over half their values saturated "
            f"(first: layer {saturated[0].label}), where the derivative is nearly 0"
        )
    return tuple(notes)
