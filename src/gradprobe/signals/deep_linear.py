"""The course notes' deep linear network: ``ŷ = w^L·x`` explodes for ``|w| > 1``, vanishes below.

With linear activations, zero biases and every weight matrix ``w·I``, the output
is ``w^L·x`` and the gradient reaching the input ``w^L``. :func:`deep_linear`
computes that example with the same backpropagation and the same verdict as
:func:`gradprobe.propagation` uses for real networks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gradprobe._text import html_card, level_of
from gradprobe._validate import (
    as_real_array,
    check_count,
    check_fits,
    check_real,
    check_tolerance,
)
from gradprobe.errors import InvalidArgumentError
from gradprobe.signals.judge import (
    Array,
    backpropagate,
    first_nonfinite,
    headline,
    judge,
    rms,
)

__all__ = ["DeepLinearResult", "deep_linear"]


@dataclass(frozen=True)
class DeepLinearResult:
    """The course notes' deep linear network: magnitudes of activations and gradients per layer.

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

    def __repr__(self) -> str:
        return (
            f"DeepLinearResult(w={self.w:g}, depth={self.depth}, width={self.width}, "
            f"verdict={self.verdict!r}, output={self.output:.3g})"
        )

    def _repr_html_(self) -> str:
        """Show the result in a notebook: ŷ = w^L·x, the verdict and what to change."""
        return html_card(
            f"deep linear network: w = {self.w:g}, depth {self.depth}",
            level_of(self.verdict),
            [self.summary, f"rms of ŷ: {self.output:.3g}", self.advice],
        )


def deep_linear(
    w: float,
    depth: int,
    *,
    width: int = 1,
    x: Any = None,
    tolerance: float = 100.0,
) -> DeepLinearResult:
    """Run the course notes' example: ``depth`` linear layers ``w·I`` with zero biases.

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
    w = check_real(w, "w")
    depth = check_count(depth, "depth")
    width = check_count(width, "width")
    limit = check_tolerance(tolerance)
    check_fits(
        8 * width * width * (depth + 2), "width", width, f"{depth + 2} {width}x{width} arrays"
    )
    point = np.ones(width) if x is None else as_real_array(x, "x")
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
        dZ, dA0, dW = backpropagate(A, A, dict.fromkeys(range(1, depth + 1), weight), None, probe)
        activation = np.array([rms(A[layer]) for layer in range(depth + 1)])
        gradient = np.array([rms(dA0)] + [rms(dZ[layer]) for layer in range(1, depth + 1)])
        weight_gradient = np.array([rms(dW[layer]) for layer in range(1, depth + 1)])
        judgement = judge(
            (activation[1:] / activation[0]) ** 2,
            (gradient[1:] / gradient[-1]) ** 2,
            (first_nonfinite(A, depth), "forward"),
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
        summary=headline(judgement, limit),
        advice=advice,
    )
