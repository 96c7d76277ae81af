"""The weight scale that keeps signals steady through depth, for any activation.

Draw every weight of a layer from a distribution with variance ``σ_w² / fan_in``.
In a wide network the pre-activations of a layer are then Gaussian (mean-field
limit), and two numbers decide whether signals survive many layers. With
``z ~ N(0, 1)``:

* **forward**: a layer maps the second moment ``q`` of its pre-activations to
  ``σ_w²·E[φ(√q·z)²]``. The scale that makes ``q = 1`` a fixed point, so
  unit-variance pre-activations stay unit-variance layer after layer, is
  ``σ_w² = 1 / E[φ(z)²]``. It is 2 for ReLU (He), 1 for linear layers and
  ≈ 2.54 for tanh (PyTorch's hand-picked tanh gain is (5/3)² ≈ 2.78). It uses the
  *second moment* E[φ²], not the variance: that is what the next layer's weights
  multiply, and it is what gives He's 2 (the variance would give ≈ 2.93).
* **backward**: each layer multiplies the squared gradient by
  ``σ_w²·E[φ'(z)²]``, so ``σ_w² = 1 / E[φ'(z)²]`` keeps gradients steady. It is 2
  for ReLU, 1 for linear layers and ≈ 2.15 for tanh.

Only for (piecewise) linear activations through zero, ReLU and its leaky variants,
do the two coincide; otherwise no single scale holds both exactly, and the result
says how far apart they are.

Expectations are Gauss–Hermite quadratures split at 0: each half-line has its own
Gauss rule for the weight e^(−z²/2) on [0, ∞), so an activation with a kink at 0
(ReLU, leaky ReLU, ELU) is integrated as fast as a smooth one, and ReLU comes out
exact to rounding. There is no sampling noise. Derivatives of a user's callable come
from central differences with the step of :func:`gradprobe.numdiff.rules.default_step`;
a PyTorch activation (a module such as ``nn.GELU()`` or a function such as ``F.mish``) is
evaluated by PyTorch in float64 and differentiated by autograd, exactly. torch is imported
only when such an activation is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._text import html_card
from gradprobe._validate import check_fraction, unless_interrupt
from gradprobe.errors import (
    GradprobeError,
    InvalidArgumentError,
    InvalidTypeError,
    LossEvaluationError,
    NonFiniteError,
    ShapeMismatchError,
)
from gradprobe.nn._torch_activation import (
    is_torch,
    takes_only_tensors,
    torch_functions,
    torch_label,
)
from gradprobe.nn.activations import Activation, get_activation
from gradprobe.numdiff.rules import default_step

__all__ = ["ScaleRecommendation", "activation_name", "gaussian_expectation", "recommend_scale"]

Array = NDArray[np.float64]
ActivationLike = str | Activation | Callable[[Any], Any]

# Nodes per half-line: tanh, GELU, SiLU, ELU and softplus agree with 64 nodes to 1e-14.
_NODES = 40
# The discretization the half-line Gauss rule is built from: Gauss–Legendre on [0, 40]
# (e^(−40²/2) is far below rounding), fine enough for the recurrence of 40 nodes.
_PANEL_NODES = 600
_PANEL_END = 40.0


@dataclass(frozen=True)
class ScaleRecommendation:
    """The weight variance scale ``σ_w²`` (per ``fan_in``) that suits an activation.

    Attributes
    ----------
    activation : str
        The activation's name (a callable's ``__name__``).
    forward : float
        ``1 / E[φ(z)²]``: keeps the second moment of unit-variance pre-activations
        fixed from layer to layer.
    backward : float
        ``1 / E[φ'(z)²]``: keeps the size of the backpropagated gradient fixed.
    mean : float
        ``E[φ(z)]``; far from 0 (sigmoid, softplus) the next layer's input is not centred.
    rtol : float
        The relative difference up to which ``forward`` and ``backward`` count as agreeing.

    Examples
    --------
    >>> scale = recommend_scale("relu")
    >>> round(scale.forward, 10), round(scale.backward, 10), scale.agree
    (2.0, 2.0, True)
    """

    activation: str
    forward: float
    backward: float
    mean: float
    rtol: float = 0.05

    @property
    def value(self) -> float:
        """The scale to use, ``forward`` (the one ``init="auto"`` uses)."""
        return self.forward

    @property
    def std(self) -> Callable[[int], float]:
        """``std(fan_in)``: the weight standard deviation ``√(σ_w² / fan_in)``."""
        return lambda fan_in: float(np.sqrt(self.forward / fan_in))

    @property
    def disagreement(self) -> float:
        """``|forward − backward| / min(forward, backward)``."""
        return abs(self.forward - self.backward) / min(self.forward, self.backward)

    @property
    def agree(self) -> bool:
        """Whether the two scales lie within ``rtol`` of each other."""
        return self.disagreement <= self.rtol

    @property
    def advice(self) -> str:
        """One sentence on which scale to use."""
        if self.agree:
            return (
                f"Use σ_w² = {self.forward:.4g} (weights ~ N(0, {self.forward:.4g}/fan_in)): "
                "it keeps both activations and gradients steady."
            )
        per_layer = self.forward / self.backward
        return (
            f"No single scale keeps both: σ_w² = {self.forward:.4g} keeps activations steady "
            f"but changes squared gradients by ×{per_layer:.3g} per layer "
            f"(σ_w² = {self.backward:.4g} keeps gradients); prefer the forward value and "
            "watch the gradient ratio with gradprobe.propagation, or add normalization."
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the fields and derived values as plain Python objects."""
        return {
            "activation": self.activation,
            "forward": self.forward,
            "backward": self.backward,
            "mean": self.mean,
            "agree": self.agree,
            "disagreement": self.disagreement,
            "advice": self.advice,
        }

    def __str__(self) -> str:
        return (
            f"recommended weight scale for {self.activation}: "
            f"forward σ_w² = {self.forward:.6g}, backward σ_w² = {self.backward:.6g}\n"
            f"{self.advice}"
        )

    def __repr__(self) -> str:
        return (
            f"ScaleRecommendation(activation={self.activation!r}, forward={self.forward:.4g}, "
            f"backward={self.backward:.4g}, agree={self.agree})"
        )

    def _repr_html_(self) -> str:
        """Show the recommendation in a notebook."""
        return html_card(
            f"weight scale for {self.activation}",
            "ok" if self.agree else "warn",
            [
                f"Var(W) = {self.forward:.4g}/fan_in (forward), {self.backward:.4g}/fan_in "
                "(backward)",
                self.advice,
            ],
        )


@lru_cache(maxsize=4)
def _half_line_rule(nodes: int) -> tuple[Array, Array]:
    """Return the Gauss rule ``(z, w)`` for the weight e^(−z²/2) on [0, ∞).

    The weight is not a classical one, so its three-term recurrence is computed by the
    Stieltjes procedure on a fine Gauss–Legendre discretization of [0, 40], and the
    nodes and weights by Golub–Welsch (eigen-decomposition of the Jacobi matrix).
    """
    legendre_nodes, legendre_weights = np.polynomial.legendre.leggauss(_PANEL_NODES)
    points = (legendre_nodes + 1.0) * (_PANEL_END / 2)
    mass = legendre_weights * (_PANEL_END / 2) * np.exp(-(points**2) / 2)
    alpha = np.zeros(nodes)
    beta = np.zeros(nodes)
    beta[0] = np.sqrt(np.pi / 2)  # ∫₀^∞ e^(−z²/2) dz, exactly
    previous, current = np.zeros_like(points), np.ones_like(points)
    norm = beta[0]
    for k in range(nodes):
        alpha[k] = float(np.sum(mass * points * current**2)) / norm
        following = (points - alpha[k]) * current - (beta[k] if k else 0.0) * previous
        following_norm = float(np.sum(mass * following**2))
        if k + 1 < nodes:
            beta[k + 1] = following_norm / norm
        # Rescale so the polynomials neither overflow nor underflow; ratios are unchanged.
        size = np.sqrt(following_norm)
        previous, current, norm = current / size, following / size, 1.0
    off_diagonal = np.sqrt(beta[1:])
    jacobi = np.diag(alpha) + np.diag(off_diagonal, 1) + np.diag(off_diagonal, -1)
    z, vectors = np.linalg.eigh(jacobi)
    return z, beta[0] * vectors[0] ** 2


def _call(function: Callable[[Any], Any], z: Array, label: str) -> Array:
    """Evaluate a user's elementwise function on ``z``: vectorized, else one value at a time."""
    try:
        raw = function(z.copy())
        vectorized = True
    except GradprobeError:
        raise
    except BaseException as error:  # noqa: BLE001 - scalar-only (math.exp, if/else) is fine
        unless_interrupt(error)
        vectorized = False
    if vectorized:
        values = np.asarray(raw)
        if values.shape != z.shape:
            raise ShapeMismatchError(
                f"activation: {label} returned shape {values.shape} for an input of shape "
                f"{z.shape}, expected an elementwise function returning the same shape"
            )
    else:
        items = []
        for point in z:
            try:
                item = function(float(point))
            except BaseException as error:  # noqa: BLE001 - whatever the user's function raises
                raise LossEvaluationError(
                    f"activation: {label} raised {type(error).__name__} at z = {point:.6g}: {error}"
                ) from unless_interrupt(error)
            if np.ndim(item) != 0:
                raise ShapeMismatchError(
                    f"activation: {label} returned shape {np.shape(item)} for the scalar "
                    f"z = {point:.6g}, expected a scalar"
                )
            items.append(item)
        values = np.asarray(items)
    if values.dtype.kind not in "biuf":
        raise InvalidTypeError(
            f"activation: {label} returned dtype {values.dtype}, expected real numbers"
        )
    values = values.astype(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        where = float(z[np.argmax(bad)])
        raise NonFiniteError(
            f"activation: {label} returned {values[np.argmax(bad)]} at z = {where:.6g}, "
            "expected finite values for every real input"
        )
    return values


def _numerical_derivative(function: Callable[[Any], Any], label: str) -> Callable[[Array], Array]:
    """Return ``φ'`` by central differences, vectorized when ``function`` accepts arrays."""

    def slope(z: Array) -> Array:
        step = np.asarray(default_step("central", z), dtype=np.float64)
        # The step is the difference of the points evaluated, as in gradprobe.numdiff.derivative.
        upper, lower = z + step, z - step
        return (_call(function, upper, label) - _call(function, lower, label)) / (upper - lower)

    return slope


def activation_name(activation: ActivationLike) -> str:
    """Name an activation as reports show it.

    A name stays itself; a PyTorch module is named by what it computes (``relu`` for
    ``nn.ReLU()``, ``gelu (erf)`` for PyTorch's default GELU, ``leaky_relu(0.2)``, a user's
    module by its class); a function by its ``__name__``.

    Examples
    --------
    >>> activation_name("tanh"), activation_name(np.tanh)
    ('tanh', 'tanh')
    """
    if isinstance(activation, str):
        return activation
    if isinstance(activation, Activation):
        return activation.name
    if not is_torch(activation):
        return str(getattr(activation, "__name__", None) or type(activation).__name__)
    return torch_label(activation)


def _resolve(activation: ActivationLike) -> tuple[str, Callable[[Any], Any], Callable[[Any], Any]]:
    if isinstance(activation, Activation):
        return activation.name, activation.function, activation.derivative
    if isinstance(activation, str):
        row = get_activation(activation)
        return row.name, row.function, row.derivative
    if is_torch(activation) or (callable(activation) and takes_only_tensors(activation)):
        label = activation_name(activation)
        return (label, *torch_functions(activation, label))
    if callable(activation):
        label = getattr(activation, "__name__", type(activation).__name__)
        return label, activation, _numerical_derivative(activation, label)
    raise InvalidTypeError(
        f"activation: got {type(activation).__name__}, expected a name such as 'relu' or a "
        "callable φ(z) acting elementwise"
    )


def gaussian_expectation(function: Callable[[Any], Any], nodes: int = _NODES) -> float:
    """Return ``E[f(z)]`` for ``z ~ N(0, 1)`` by Gauss–Hermite quadrature split at 0.

    Parameters
    ----------
    function : callable
        ``f(z)``, elementwise on an array of shape ``(k,)`` or on floats.
    nodes : int, default=40
        Quadrature nodes per half-line; exact for polynomials of degree ``2·nodes − 1``
        on each side of 0.

    Returns
    -------
    float

    Examples
    --------
    >>> round(gaussian_expectation(lambda z: z**4), 12)
    3.0
    """
    if isinstance(nodes, bool) or not isinstance(nodes, (int, np.integer)) or nodes < 2:
        raise InvalidArgumentError(f"nodes: got {nodes!r}, expected an integer >= 2")
    points, weights = _gaussian_rule(int(nodes))
    return float(weights @ _call(function, points, getattr(function, "__name__", "the function")))


def _gaussian_rule(nodes: int) -> tuple[Array, Array]:
    """Return points and weights with ``Σ wᵢ f(zᵢ) ≈ E[f(z)]``, ``z ~ N(0, 1)``, split at 0."""
    z, weights = _half_line_rule(nodes)
    half = weights / np.sqrt(2 * np.pi)
    return np.concatenate([z, -z]), np.concatenate([half, half])


def recommend_scale(activation: ActivationLike, *, rtol: float = 0.05) -> ScaleRecommendation:
    """Compute the weight variance scale ``σ_w²`` that keeps signals steady for an activation.

    Parameters
    ----------
    activation : str, Activation, callable or torch.nn.Module
        A name from :data:`gradprobe.nn.activations.ACTIVATIONS` (its tabulated
        derivative is used), any elementwise function φ such as GELU, SiLU, softplus
        or ELU (its derivative is taken numerically; functions that only accept floats
        are called one value at a time), or a PyTorch activation: a module such as
        ``nn.GELU()``, ``nn.Mish()`` or a user's own ``nn.Module``, or a function such as
        ``F.mish`` or ``torch.tanh``; these are evaluated by PyTorch in float64 and
        differentiated exactly by autograd.
    rtol : float, default=0.05
        The relative difference up to which the forward and backward scales agree.

    Returns
    -------
    ScaleRecommendation
        ``.forward = 1 / E[φ(z)²]`` and ``.backward = 1 / E[φ'(z)²]``, ``z ~ N(0, 1)``.

    Raises
    ------
    InvalidArgumentError
        For an unknown name, or an activation that is zero (or has zero derivative)
        almost everywhere.
    ShapeMismatchError
        When the callable does not return one value per input.
    NonFiniteError
        When the callable returns NaN or infinity, or grows so fast that ``E[φ(z)²]``
        or ``E[φ'(z)²]`` overflows.

    Examples
    --------
    >>> round(recommend_scale("tanh").forward, 4), round(recommend_scale("tanh").backward, 4)
    (2.5362, 2.1533)
    >>> import torch
    >>> relu, selu = recommend_scale(torch.nn.ReLU()), recommend_scale(torch.nn.SELU())
    >>> round(relu.forward, 10), selu.activation, round(selu.forward, 3)
    (2.0, 'selu', 1.0)
    >>> leaky = lambda z: np.where(z > 0, z, 0.2 * z)
    >>> round(recommend_scale(leaky).forward, 8), round(2 / (1 + 0.2**2), 8)
    (1.92307692, 1.92307692)
    """
    rtol = check_fraction(rtol, "rtol", np.inf)
    name, function, slope = _resolve(activation)
    points, weights = _gaussian_rule(_NODES)
    values = _call(function, points, name)
    slopes = _call(slope, points, f"the derivative of {name}")
    with np.errstate(over="ignore", divide="ignore"):
        second_moment, slope_moment = weights @ values**2, weights @ slopes**2
        scales = float(1.0 / second_moment), float(1.0 / slope_moment)
    for moment, scale, what in zip(
        (second_moment, slope_moment), scales, ("E[φ(z)²]", "E[φ'(z)²]"), strict=True
    ):
        if not moment > 0:
            raise InvalidArgumentError(
                f"activation: got {name} with {what} = {moment:.3g}, expected a function "
                "that is not zero (or constant) for Gaussian inputs"
            )
        # Past the float range the scale would come out as a silent 0 (or infinity).
        if not np.isfinite(moment):
            raise NonFiniteError(
                f"activation: got {name} with {what} = {moment:.3g}, beyond the float range; "
                "expected a function that grows slowly enough for a finite Gaussian second "
                "moment: scale its input down or clip it"
            )
        if not np.isfinite(scale):
            raise NonFiniteError(
                f"activation: got {name} with {what} = {moment:.3g}, so small that 1/{what} "
                "is beyond the float range; expected a function of ordinary size: multiply "
                "it by a constant"
            )
    return ScaleRecommendation(
        activation=name,
        forward=scales[0],
        backward=scales[1],
        mean=float(weights @ values),
        rtol=float(rtol),
    )
