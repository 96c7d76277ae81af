"""How signals travel through depth: per-layer statistics, verdicts and depth sweeps.

The seed's argument: with linear activations and zero biases, ``ŷ = w^L·x``, so the
output explodes for ``w > 1`` and vanishes for ``w < 1``, and so do the gradients.
:func:`deep_linear` computes exactly that example; :func:`propagation` measures the
same effect in a real network on a probe batch; :func:`depth_sweep` compares
initializations on fresh deep networks.

The gradient comes from a *probe*, not a task loss: a fixed standard-normal matrix
``G`` (drawn from ``seed``) is fed in as ``dZ[L]``, the gradient at the last
pre-activation, and backpropagated through the network's own activation
derivatives. That is the gradient of the probe loss ``J = (1/m)·Σ G ⊙ Z[L]``, so the
statistics depend on the architecture and its weights alone, not on labels or the
output layer. Each weight gradient is then ``dW{l} = dZ[l].T @ A[l-1] / m``.

The verdict compares, layer by layer, the activations' second moment ``E[A[l]²]``
with the input's, and the backpropagated signal's second moment ``E[dZ[l]²]`` with
the probe's. If every ratio stays within ``tolerance`` (default ×100) the network is
"healthy"; otherwise the activations decide between "exploding" and "vanishing"
when they leave the band (the gradients when only they do), and the first layer
beyond the tolerance is where trouble starts (counted from the output for gradients).
Arithmetic overflow is caught and reported ("exploding: overflow at layer 37").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.nn import initializers
from gradprobe.nn.activations import get_activation
from gradprobe.nn.mlp import MLP
from gradprobe.scale import recommend_scale

__all__ = [
    "DEFAULT_INITS",
    "DeepLinearResult",
    "DepthSweep",
    "LayerStatistics",
    "PropagationReport",
    "deep_linear",
    "depth_sweep",
    "propagation",
]

Array = NDArray[np.floating[Any]]

DEFAULT_INITS: dict[str, Callable[..., Array]] = {
    "zeros": initializers.zeros,
    "small": partial(initializers.normal, scale=0.01),
    "large": partial(initializers.normal, scale=10.0),
    "xavier": initializers.xavier,
    "he": initializers.he,
}
"""The initializations :func:`depth_sweep` compares by default: all zeros, ``randn·0.01``,
``randn·10`` (the course's initialization exercise), Xavier and He."""

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
class _Judgement:
    verdict: str
    layer: int | None
    direction: str | None
    factor: float
    overflow: bool


def _judge(
    forward: Array, backward: Array, overflow: tuple[int | None, str], tolerance: float
) -> _Judgement:
    """Decide the verdict from per-layer ratios (index ``l − 1`` for layer ``l``).

    ``forward[l−1] = E[A[l]²] / E[A[0]²]``; ``backward[l−1] = E[dZ[l]²] / E[dZ[L]²]``.
    """
    overflow_layer, overflow_direction = overflow
    if overflow_layer is not None:
        return _Judgement("exploding", overflow_layer, overflow_direction, np.inf, True)
    with np.errstate(divide="ignore"):
        logs = {"forward": np.log10(forward), "backward": np.log10(backward)}
    limit = np.log10(tolerance)
    # The forward pass comes first: when activations leave the band, gradients follow.
    outside = {name: float(np.max(np.abs(values))) > limit for name, values in logs.items()}
    worst = "forward" if outside["forward"] or not outside["backward"] else "backward"
    extreme = logs[worst][np.argmax(np.abs(logs[worst]))]
    if abs(extreme) <= limit:
        return _Judgement("healthy", None, None, float(10.0**extreme), False)
    beyond = np.flatnonzero(logs[worst] > limit if extreme > 0 else logs[worst] < -limit) + 1
    # Signals travel forward from layer 1, gradients backward from layer L.
    layer = int(beyond[0] if worst == "forward" else beyond[-1])
    verdict = "exploding" if extreme > 0 else "vanishing"
    return _Judgement(verdict, layer, worst, float(10.0**extreme), False)


def _headline(judgement: _Judgement, tolerance: float) -> str:
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


def _check_count(value: object, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidTypeError(f"{argument}: got {type(value).__name__}, expected an integer")
    if value < 1:
        raise InvalidArgumentError(f"{argument}: got {value}, expected an integer >= 1")
    return int(value)


def _check_tolerance(tolerance: object) -> float:
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, (int, float, np.integer, np.floating))
        or not 1 < float(tolerance) < np.inf
    ):
        raise InvalidArgumentError(
            f"tolerance: got {tolerance!r}, expected a finite factor > 1 such as 100"
        )
    return float(tolerance)


# -- the seed's deep linear example ----------------------------------------------------


@dataclass(frozen=True)
class DeepLinearResult:
    """The seed's deep linear network: magnitudes of activations and gradients per layer.

    Attributes
    ----------
    w : float
        The weight: every layer is ``w·I``.
    depth, width : int
        ``L`` layers of ``width`` units.
    activation : ndarray of shape (depth + 1,)
        The root-mean-square of ``a[l]`` for ``l = 0..L`` (``a[0] = x``): ``|w|^l·rms(x)``.
    gradient : ndarray of shape (depth + 1,)
        The root-mean-square of ``∂ŷ/∂a[l]`` for ``l = 0..L``, with ``∂ŷ/∂ŷ = 1``:
        ``|w|^(L−l)``, largest at the input when ``|w| > 1``.
    weight_gradient : ndarray of shape (depth,)
        The root-mean-square of ``∂ŷ/∂W{l}`` (probe ``1`` at the output) for
        ``l = 1..L``: ``|w|^(L−1)·rms(x)``, the same for every layer.
    verdict : str
        "exploding", "vanishing" or "healthy".
    summary : str
        The verdict with where the trouble starts.
    advice : str
        One sentence on what to change.
    """

    w: float
    depth: int
    width: int
    activation: Array
    gradient: Array
    weight_gradient: Array
    verdict: str
    trouble_layer: int | None
    summary: str
    advice: str

    @property
    def output(self) -> float:
        """The root-mean-square of the output ``ŷ = a[L]``."""
        return float(self.activation[-1])

    @property
    def rows(self) -> list[dict[str, float]]:
        """One row per layer ``l = 0..L``: ``layer``, ``activation``, ``gradient``."""
        return [
            {"layer": layer, "activation": float(a), "gradient": float(g)}
            for layer, (a, g) in enumerate(zip(self.activation, self.gradient, strict=True))
        ]

    def to_dict(self) -> dict[str, Any]:
        """Return everything as plain Python objects (lists, floats, strings)."""
        return {
            "w": self.w,
            "depth": self.depth,
            "width": self.width,
            "activation": self.activation.tolist(),
            "gradient": self.gradient.tolist(),
            "weight_gradient": self.weight_gradient.tolist(),
            "verdict": self.verdict,
            "trouble_layer": self.trouble_layer,
            "summary": self.summary,
            "advice": self.advice,
        }

    def __str__(self) -> str:
        shown = sorted(
            {0, 1, self.depth // 2, self.depth - 1, self.depth} & set(range(self.depth + 1))
        )
        lines = [
            f"deep linear network: w = {self.w:g}, depth {self.depth}, width {self.width}",
            self.summary,
            f"{'layer':>6} {'|a[l]|':>12} {'|dŷ/da[l]|':>12}",
        ]
        lines += [
            f"{layer:>6} {self.activation[layer]:>12.4g} {self.gradient[layer]:>12.4g}"
            for layer in shown
        ]
        return "\n".join([*lines, self.advice])


def deep_linear(
    w: float,
    depth: int,
    *,
    width: int = 1,
    x: Any = None,
    tolerance: float = 100.0,
) -> DeepLinearResult:
    """Run the seed's example: ``depth`` linear layers ``w·I`` with zero biases.

    The forward pass ``a[l] = W{l} a[l−1]`` and the backward pass of ``∂ŷ/∂ŷ = 1`` are
    computed with the same routine as :func:`propagation`, in float64; overflow
    to infinity is reported, not raised.

    Parameters
    ----------
    w : float
        Every weight matrix is ``w·I`` (the scalar ``w`` when ``width=1``).
    depth : int
        ``L``, the number of layers, ``>= 1``.
    width : int, default=1
        The number of units per layer.
    x : array_like of shape (width,), optional
        The input; default all ones.
    tolerance : float, default=100.0
        The factor by which a second moment may change over the depth and still be
        "healthy".

    Returns
    -------
    DeepLinearResult

    Examples
    --------
    >>> result = deep_linear(1.5, 50)
    >>> f"{result.output:.4g}", f"{result.gradient[0]:.4g}", result.verdict
    ('6.376e+08', '6.376e+08', 'exploding')
    >>> deep_linear(0.5, 50).verdict
    'vanishing'
    """
    if isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating)):
        raise InvalidTypeError(f"w: got {type(w).__name__}, expected a real number")
    if not np.isfinite(w):
        raise InvalidArgumentError(f"w: got {w!r}, expected a finite number")
    depth = _check_count(depth, "depth")
    width = _check_count(width, "width")
    limit = _check_tolerance(tolerance)
    point = np.ones(width) if x is None else np.array(x, dtype=np.float64)
    if point.shape != (width,) or not np.all(np.isfinite(point)) or not np.any(point):
        raise InvalidArgumentError(
            f"x: got shape {point.shape}, expected a finite, nonzero vector of shape ({width},)"
        )
    weight = float(w) * np.eye(width)
    with np.errstate(all="ignore"):
        A = {0: point[None, :]}
        for layer in range(1, depth + 1):
            A[layer] = A[layer - 1] @ weight.T
        probe = np.ones((1, width))
        dZ, dA0, dW = _backpropagate(A, A, dict.fromkeys(range(1, depth + 1), weight), None, probe)
        activation = np.array([_rms(A[layer]) for layer in range(depth + 1)])
        gradient = np.array([_rms(dA0)] + [_rms(dZ[layer]) for layer in range(1, depth + 1)])
        weight_gradient = np.array([_rms(dW[layer]) for layer in range(1, depth + 1)])
        judgement = _judge(
            (activation[1:] / activation[0]) ** 2,
            (gradient[1:] / gradient[-1]) ** 2,
            (_first_nonfinite(A, depth), "forward"),
            limit,
        )
    if judgement.verdict == "healthy":
        advice = f"Nothing to change: |w| = {abs(w):g} keeps signals within ×{limit:g}."
    else:
        advice = (
            f"Scale w toward 1: the output is |w|^{depth} = {activation[-1] / activation[0]:.3g} "
            "times the input; in a wide random network the same holds for σ_w², so draw weights "
            "with the variance gradprobe.recommend_scale gives (1/fan_in for linear layers)."
        )
    return DeepLinearResult(
        w=float(w),
        depth=depth,
        width=width,
        activation=activation,
        gradient=gradient,
        weight_gradient=weight_gradient,
        verdict=judgement.verdict,
        trouble_layer=judgement.layer,
        summary=_headline(judgement, limit),
        advice=advice,
    )


def _rms(values: Array) -> float:
    """Return the root mean square without squaring huge values into infinity."""
    largest = float(np.max(np.abs(values)))
    if not 0 < largest < np.inf:
        return largest  # 0, inf or NaN
    return largest * float(np.sqrt(np.mean((values / largest) ** 2)))


def _moment(values: Array) -> float:
    """Return the second moment ``E[x²]``; infinity when it exceeds the float range."""
    return float(np.square(np.float64(_rms(values))))


def _first_nonfinite(arrays: Mapping[int, Array], depth: int) -> int | None:
    for layer in range(1, depth + 1):
        if not np.all(np.isfinite(arrays[layer])):
            return layer
    return None


def _backpropagate(
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


# -- a real network on a probe batch ---------------------------------------------------


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
        The first layer beyond the tolerance (for gradients, counted from the output),
        or the layer that overflowed; None when healthy.
    direction : str or None
        "forward" (activations) or "backward" (gradients): which pass decided.
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
        >>> from gradprobe.nn.mlp import MLP
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
            f"{'layer':>5} {'mean':>10} {'std':>10} {'E[A²]':>10} {'dead':>6} {'satur.':>6} "
            f"{'‖dW‖':>10} {'ratio':>8} {'σ_w²':>7}",
            f"{'input':>5} {'':>10} {self.input_std:>10.3g} {self.input_second_moment:>10.3g}",
        ]
        for row in self.layers:
            lines.append(
                f"{row.layer:>5} {row.mean:>10.3g} {row.std:>10.3g} {row.second_moment:>10.3g} "
                f"{row.dead:>6.0%} {row.saturated:>6.0%} {row.gradient_norm:>10.3g} "
                f"{row.gradient_ratio:>8.3g} {row.weight_scale:>7.3g}"
            )
        lines += [f"- {finding}" for finding in self.findings]
        return "\n".join([*lines, self.advice])


def _advice(
    judgement: _Judgement, report_symmetric: int | None, activation: str, weight_scale: Array
) -> str:
    recommended = recommend_scale(activation)
    fix = (
        f"draw every W ~ N(0, {recommended.forward:.3g}/fan_in), the scale "
        f"gradprobe.recommend_scale gives for {activation} (init='auto')"
    )
    if report_symmetric is not None:
        return (
            f"Break the symmetry: every unit of layer {report_symmetric} computes the same "
            f"value, so initialize the weights randomly: {fix}."
        )
    if judgement.verdict == "healthy":
        return "Nothing to change: activations and gradients keep their scale through depth."
    layer = judgement.layer if judgement.layer is not None else 1
    actual = float(weight_scale[layer - 1])
    if np.isfinite(actual) and abs(actual / recommended.forward - 1) < 0.2:
        return (
            f"The weights already have the recommended scale (σ_w² ≈ {actual:.3g}), so "
            f"{activation} itself {'shrinks' if judgement.verdict == 'vanishing' else 'grows'} "
            "the signal: use a non-saturating activation such as relu, add normalization "
            "layers, or use fewer layers."
        )
    change = "Shrink" if judgement.verdict == "exploding" else "Enlarge"
    return f"{change} the initial weights: layer {layer} has σ_w² ≈ {actual:.3g} per fan-in; {fix}."


def _is_symmetric(A: Array) -> bool:
    return A.shape[1] > 1 and bool(np.all(A == A[:, :1]))


def propagation(
    net: MLP, X: Any, *, seed: int | np.random.Generator = 0, tolerance: float = 100.0
) -> PropagationReport:
    """Run one forward and one backward pass of a network on a probe batch and judge it.

    The forward pass is the network's own (in evaluation mode: no dropout). The backward
    pass feeds a standard-normal probe ``G`` of shape ``(m, n_L)`` in as the gradient at
    the last pre-activation and backpropagates it with the network's activation
    derivative (see the module notes), so the result does not depend on labels.

    Parameters
    ----------
    net : MLP
        The network; neither it nor its parameters are changed.
    X : array_like of shape (m, n_0)
        The probe batch, e.g. standard-normal rows or real (normalized) inputs.
    seed : int or numpy.random.Generator, default=0
        Source of the probe gradient ``G``.
    tolerance : float, default=100.0
        The factor by which a second moment may change over the depth and still be
        "healthy".

    Returns
    -------
    PropagationReport

    Examples
    --------
    >>> import numpy as np
    >>> from gradprobe.nn.mlp import MLP
    >>> X = np.random.default_rng(0).standard_normal((128, 64))
    >>> propagation(MLP([64] * 21, init="he", output="linear"), X).verdict
    'healthy'
    >>> report = propagation(MLP([64] * 21, init="zeros", output="linear"), X)
    >>> report.verdict, report.trouble_layer, report.symmetric_layer
    ('vanishing', 1, 1)
    """
    if not isinstance(net, MLP):
        raise InvalidTypeError(f"net: got {type(net).__name__}, expected a gradprobe MLP")
    limit = _check_tolerance(tolerance)
    rng = np.random.default_rng(seed) if not isinstance(seed, np.random.Generator) else seed
    depth = net.n_layers
    was_training = net.training
    net.eval()
    try:
        with np.errstate(all="ignore"):
            _, cache = net.forward(X)
    finally:
        net.training = was_training
    A0 = np.asarray(cache.A[0], dtype=np.float64)
    input_moment = float(np.mean(A0**2))
    if not input_moment > 0:
        raise InvalidArgumentError(
            "X: got a batch of all zeros, expected a probe batch with nonzero entries "
            "(e.g. standard-normal rows)"
        )
    probe = rng.standard_normal(cache.Z[depth].shape)
    weights = {layer: cache.params[f"W{layer}"] for layer in range(1, depth + 1)}
    hidden = get_activation(net.activation)
    with np.errstate(all="ignore"):
        dZ, _, dW = _backpropagate(cache.Z, cache.A, weights, hidden.derivative, probe, cache.masks)
        layers = tuple(
            _statistics(
                layer,
                cache.A[layer],
                dZ[layer],
                dW,
                weights[layer],
                net.activation if layer < depth else net.output,
            )
            for layer in range(1, depth + 1)
        )
        forward_overflow = _first_nonfinite(cache.A, depth)
        backward_bad = [
            layer for layer in range(1, depth + 1) if not np.all(np.isfinite(dW[layer]))
        ]
        overflow = (
            (forward_overflow, "forward")
            if forward_overflow is not None
            else (max(backward_bad) if backward_bad else None, "backward")
        )
        moments = np.array([layer.second_moment for layer in layers])
        backward = np.array([layer.backward_moment for layer in layers])
        judgement = _judge(moments / input_moment, backward / backward[-1], overflow, limit)
    symmetric = next((layer for layer in range(1, depth) if _is_symmetric(cache.A[layer])), None)
    findings = _findings(layers, symmetric, overflow)
    weight_scale = np.array([layer.weight_scale for layer in layers])
    return PropagationReport(
        layers=layers,
        activation=net.activation,
        input_std=float(np.std(A0)),
        input_second_moment=input_moment,
        verdict=judgement.verdict,
        trouble_layer=judgement.layer,
        direction=judgement.direction,
        summary=_headline(judgement, limit),
        advice=_advice(judgement, symmetric, net.activation, weight_scale),
        findings=findings,
        symmetric_layer=symmetric,
        overflow_layer=overflow[0],
        tolerance=limit,
    )


def _statistics(
    layer: int, A: Array, dZ: Array, dW: Mapping[int, Array], W: Array, activation: str
) -> LayerStatistics:
    norm = _rms(dW[layer]) * np.sqrt(dW[layer].size)
    following = _rms(dW[layer + 1]) * np.sqrt(dW[layer + 1].size) if layer + 1 in dW else np.nan
    saturation = _SATURATED.get(activation)
    return LayerStatistics(
        layer=layer,
        mean=float(np.mean(A)),
        std=_rms(A - np.mean(A)),
        second_moment=_moment(A),
        dead=float(np.mean(np.all(A == 0, axis=0))),
        saturated=float(np.mean(saturation(A))) if saturation is not None else 0.0,
        gradient_norm=float(norm),
        gradient_ratio=float(norm / following) if following > 0 else np.nan,
        backward_moment=_moment(dZ),
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


# -- fresh networks under several initializations --------------------------------------


@dataclass(frozen=True)
class DepthSweep:
    """Propagation reports of fresh networks, one per initialization.

    Attributes
    ----------
    depth, width : int
        Every network has ``depth`` layers of ``width`` units (input included).
    activation : str
        The hidden activation.
    reports : dict of str to PropagationReport
        By initialization name, in the order given.
    """

    depth: int
    width: int
    activation: str
    reports: dict[str, PropagationReport]

    @property
    def rows(self) -> list[dict[str, Any]]:
        """One row per initialization.

        Keys: ``init``, ``verdict``, ``trouble_layer``, ``first_std`` and ``last_std``
        (activation std at layers 1 and L) and ``gradient_ratio`` (``‖dW1‖ / ‖dWL‖``).
        """
        rows = []
        for name, report in self.reports.items():
            first, last = report.layers[0], report.layers[-1]
            with np.errstate(all="ignore"):
                ratio = (
                    first.gradient_norm / last.gradient_norm if last.gradient_norm > 0 else np.nan
                )
            rows.append(
                {
                    "init": name,
                    "verdict": report.verdict,
                    "trouble_layer": report.trouble_layer,
                    "first_std": first.std,
                    "last_std": last.std,
                    "gradient_ratio": float(ratio),
                }
            )
        return rows

    @property
    def data(self) -> dict[str, dict[str, list[float]]]:
        """The per-layer series for plots, by initialization.

        Keys: ``layer``, ``activation_std``, ``second_moment``, ``gradient_norm``, each a
        list over layers ``1..L``.
        """
        return {
            name: {
                "layer": list(range(1, report.depth + 1)),
                "activation_std": report.column("std").tolist(),
                "second_moment": report.column("second_moment").tolist(),
                "gradient_norm": report.column("gradient_norm").tolist(),
            }
            for name, report in self.reports.items()
        }

    def to_dict(self) -> dict[str, Any]:
        """Return everything as plain Python objects."""
        return {
            "depth": self.depth,
            "width": self.width,
            "activation": self.activation,
            "rows": self.rows,
            "reports": {name: report.to_dict() for name, report in self.reports.items()},
        }

    def __str__(self) -> str:
        lines = [
            f"depth sweep: {self.depth} layers of {self.width} units, {self.activation}",
            f"{'init':<12} {'verdict':<10} {'from':>5} {'std layer 1':>12} "
            f"{'std layer L':>12} {'‖dW1‖/‖dWL‖':>12}",
        ]
        for row in self.rows:
            start = "" if row["trouble_layer"] is None else row["trouble_layer"]
            lines.append(
                f"{row['init'][:12]:<12} {row['verdict']:<10} {start:>5} {row['first_std']:>12.3g} "
                f"{row['last_std']:>12.3g} {row['gradient_ratio']:>12.3g}"
            )
        return "\n".join(lines)


def _initializers(inits: Any) -> dict[str, Callable[..., Any]]:
    if inits is None:
        return dict(DEFAULT_INITS)
    if isinstance(inits, str):
        inits = [inits]
    if isinstance(inits, Mapping):
        items = list(inits.items())
    elif isinstance(inits, Sequence):
        items = [(name, name) for name in inits]
    else:
        raise InvalidTypeError(
            f"inits: got {type(inits).__name__}, expected None, a list of names or a dict of "
            "name -> initializer"
        )
    if not items:
        raise InvalidArgumentError("inits: got none, expected at least one initialization")
    resolved: dict[str, Callable[..., Any]] = {}
    for name, init in items:
        if callable(init):
            resolved[str(name)] = init
        elif init in DEFAULT_INITS:
            resolved[str(name)] = DEFAULT_INITS[init]
        elif init == "auto":
            resolved[str(name)] = "auto"  # type: ignore[assignment]
        elif isinstance(init, str) and init in initializers.INITIALIZERS:
            resolved[str(name)] = initializers.get(init)
        else:
            raise InvalidArgumentError(
                f"inits: got {init!r}, expected a callable (shape, rng) -> array or one of "
                f"{', '.join([*DEFAULT_INITS, 'auto', *initializers.INITIALIZERS])}"
            )
    return resolved


def depth_sweep(
    depth: int,
    width: int,
    activation: str = "relu",
    inits: Sequence[str] | Mapping[str, Any] | None = None,
    seed: int = 0,
    *,
    batch_size: int = 256,
    tolerance: float = 100.0,
) -> DepthSweep:
    """Measure signal propagation in fresh networks under several initializations.

    Each network is ``MLP([width] * (depth + 1), activation, output="linear")``: ``depth``
    weight layers of ``width`` units, the activation after every layer but the last.
    All share one standard-normal probe batch ``X`` of shape ``(batch_size, width)``
    and one probe gradient, both drawn from ``seed``, as are the weights.

    Parameters
    ----------
    depth, width : int
        The number of weight layers and of units per layer, each ``>= 1``.
    activation : str, default="relu"
        A hidden activation of :data:`gradprobe.nn.activations.ACTIVATIONS`.
    inits : list of str or dict of str to initializer, optional
        Initializations to compare; names may be those of :data:`DEFAULT_INITS`,
        ``"auto"`` or any of :mod:`gradprobe.init`. Default: :data:`DEFAULT_INITS`
        (zeros, small ×0.01, large ×10, Xavier, He).
    seed : int, default=0
        The seed of the probe batch, the probe gradient and the weights.
    batch_size : int, default=256
        The number of probe examples.
    tolerance : float, default=100.0
        As in :func:`propagation`.

    Returns
    -------
    DepthSweep

    Examples
    --------
    >>> sweep = depth_sweep(20, 64, "relu", inits=["xavier", "he"])
    >>> [row["verdict"] for row in sweep.rows]
    ['vanishing', 'healthy']
    """
    depth = _check_count(depth, "depth")
    width = _check_count(width, "width")
    batch_size = _check_count(batch_size, "batch_size")
    name = get_activation(activation).name
    chosen = _initializers(inits)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch_size, width))
    probe_seed, weight_seed = (int(value) for value in rng.integers(0, 2**63, size=2))
    reports = {}
    for label, init in chosen.items():
        net = MLP(
            [width] * (depth + 1), activation=name, output="linear", init=init, seed=weight_seed
        )
        reports[label] = propagation(net, X, seed=probe_seed, tolerance=tolerance)
    return DepthSweep(depth=depth, width=width, activation=name, reports=reports)
