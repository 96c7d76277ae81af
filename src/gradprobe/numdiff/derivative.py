"""Numerical derivatives: the difference formulas, their steps and their errors.

The course notes compare the one-sided difference ``(f(θ+ε) − f(θ)) / ε``, whose error is
O(ε), with the two-sided ``(f(θ+ε) − f(θ−ε)) / 2ε``, whose error is O(ε²). Both also
carry a rounding error of order ``u·|f|/ε`` (``u`` the machine epsilon), so the
best step balances the two: about ``√u`` for one-sided and ``∛u`` for two-sided
differences, scaled by ``max(1, |θ|)``. Two methods go further:

* ``"complex"``: the complex step ``Im f(θ + iε) / ε`` subtracts nothing, so ε can be
  tiny and the result is exact to rounding, for any ``f`` that is analytic and
  written with operations that accept complex numbers;
* ``"richardson"``: central differences at ε, ε/2, ε/4, ε/8 combined so the ε², ε⁴
  and ε⁶ error terms cancel.

Every step is taken as the difference of the two arguments actually evaluated,
``(θ + ε) − (θ − ε)``, so the rounding of ``θ + ε`` does not bias the quotient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import NDArray

from gradprobe._params import ParameterLayout, Params
from gradprobe._validate import check_real, check_steps, unless_interrupt
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, LossEvaluationError
from gradprobe.numdiff.noise import (
    DEVIATIONS,
    POINTS,
    TRUNCATION_SAFETY,
    complex_bound,
    noise_level,
    scalar_noise,
    value_noise,
)
from gradprobe.numdiff.perturbation import evaluate_differences
from gradprobe.numdiff.rules import (
    METHODS,
    RICHARDSON_LEVELS,
    as_scalar,
    check_eps,
    check_method,
    complex_step,
    default_step,
    one_difference,
    richardson,
    richardson_weights,
)

__all__ = ["METHODS", "Derivative", "default_step", "derivative", "numerical_gradient"]


# A default step whose probes leave the function's domain is divided by this, _SHRINKS times
# at most.
_SHRINK = 10.0
_SHRINKS = 3


@dataclass(frozen=True)
class Derivative:
    """A numerical derivative with an error bound.

    Attributes
    ----------
    value : float
        The estimate of f'(x).
    error : float
        A bound of ``|value − f'(x)|``: ``TRUNCATION_SAFETY`` (2) times the leading-order
        estimate of the truncation error, from a second step (the change when the step
        halves, scaled to the error of the returned value: ×4/3 for central, ×2 for
        one-sided differences; the last extrapolation's change for Richardson), plus
        ``DEVIATIONS`` (4) standard deviations of the rounding error, from the
        function's noise measured at ``x`` (:func:`~gradprobe.numdiff.noise.scalar_noise`).
        For the complex step, :func:`~gradprobe.numdiff.noise.complex_bound`: 8 units
        in the last place of the value and of ``|f(x)|/max(1, |x|)``, plus the noise of
        the real part passed on to the derivative.
    step : float
        The step ε used.
    method : str
        The difference formula.
    evaluations : int
        How many times ``f`` was called, the error estimate included.
    noise : float
        The measured standard deviation of the noise in one value of ``f`` (0 when not
        measured: the complex step).
    """

    value: float
    error: float
    step: float
    method: str
    evaluations: int
    noise: float = 0.0


@overload
def derivative(
    f: Callable[[Any], Any],
    x: float,
    eps: float | None = ...,
    method: str = ...,
    full_output: Literal[False] = ...,
) -> float: ...


@overload
def derivative(
    f: Callable[[Any], Any],
    x: float,
    eps: float | None = ...,
    method: str = ...,
    *,
    full_output: Literal[True],
) -> Derivative: ...


def derivative(
    f: Callable[[Any], Any],
    x: float,
    eps: float | None = None,
    method: str = "central",
    full_output: bool = False,
) -> float | Derivative:
    """Differentiate a scalar function of a scalar numerically.

    Parameters
    ----------
    f : callable
        ``f(x) -> float``. For ``method="complex"`` it must accept complex input.
    x : float
        The point of differentiation.
    eps : float, optional
        The step ε, used exactly as given; by default :func:`default_step` chooses it
        (when ``f`` cannot be evaluated at ``x ± ε`` although it can at ``x``, a point near
        the edge of its domain, the step is made relative to ``|x|``, then divided by 10,
        up to three tries in all).
    method : {"central", "forward", "backward", "complex", "richardson"}, default="central"
        ``"forward"`` is ``(f(x+ε) − f(x)) / ε``, error O(ε); ``"backward"`` its mirror;
        ``"central"`` is ``(f(x+ε) − f(x−ε)) / 2ε``, error O(ε²); ``"complex"`` is
        ``Im f(x+iε) / ε``, exact to rounding; ``"richardson"`` extrapolates central
        differences at four steps, error O(ε⁸).
    full_output : bool, default=False
        Return a :class:`Derivative` with an error bound instead of a float. The bound
        costs a second step and a noise measurement (about 25 calls of ``f`` in all);
        without it the one- and two-sided rules call ``f`` twice, Richardson 8 times and
        the complex step once.

    Returns
    -------
    float or Derivative

    Raises
    ------
    InvalidArgumentError
        For an unknown method or a step that is not positive.
    LossEvaluationError
        When ``f`` raises or returns something that is not a finite scalar.

    Examples
    --------
    The course notes' example, f(θ) = θ³ at θ = 1 with ε = 0.01:

    >>> cube = lambda t: t**3
    >>> round(derivative(cube, 1.0, eps=0.01, method="forward"), 10)
    3.0301
    >>> round(derivative(cube, 1.0, eps=0.01, method="central"), 10)
    3.0001
    >>> result = derivative(cube, 1.0, eps=0.01, method="forward", full_output=True)
    >>> bool(result.error >= abs(result.value - 3.0))
    True
    """
    check_steps(check_real(x, "x", "a finite real number"), eps, method)
    check_method(method)
    step = check_eps(eps)
    try:
        point = float(x)
    except (TypeError, ValueError) as error:
        raise InvalidTypeError(f"x: got {type(x).__name__}, expected a real number") from error
    if not np.isfinite(point):
        raise InvalidArgumentError(f"x: got {point}, expected a finite number")
    calls = [0]

    def real_f(t: float) -> float:
        calls[0] += 1
        try:
            value = f(t)
        except LossEvaluationError:
            raise
        except BaseException as error:  # noqa: BLE001 - whatever the user's function raises
            raise LossEvaluationError(
                f"the function raised {type(error).__name__} at x = {t!r}: {error}"
            ) from unless_interrupt(error)
        return as_scalar(value, f"at x = {t!r}", "f")

    if method == "complex":
        h = float(default_step(method, point)) if step is None else step
        value, magnitude = complex_step(f, point, h)
        if not full_output:
            return value
        # Exact to rounding, and to the noise of the real part: a value computed with
        # cancellation (σ ≫ u·|f|) passes its relative error on to the derivative.
        sigma = _noise(real_f, point, magnitude, None)
        unit = float(np.finfo(np.float64).eps)
        scale = magnitude / max(1.0, abs(point))
        error_estimate = complex_bound(np.array([value]), np.zeros(1), sigma, unit, scale)[0]
        return Derivative(value, float(error_estimate), h, method, 1 + calls[0], sigma)
    h = float(default_step(method, point)) if step is None else step
    for attempt in range(_SHRINKS + 1):
        try:
            return _difference(real_f, point, h, method, full_output, calls)
        except LossEvaluationError:
            # Shrink a default step that left the domain; a given one is used as given.
            if step is not None or attempt == _SHRINKS:
                raise
            real_f(point)  # raises when x itself is outside the domain
            # Near the edge of a domain (x > 0, say) the scale is |x| itself: first a step
            # relative to it, then smaller ones.
            relative = float(default_step(method, 1.0)) * abs(point)
            h = relative if 0 < relative < h else h / _SHRINK
    raise AssertionError("unreachable")  # pragma: no cover


def _difference(
    real_f: Callable[[float], float],
    x: float,
    h: float,
    method: str,
    full_output: bool,
    calls: list[int],
) -> float | Derivative:
    """Return the quotient of ``method`` at step ``h``, with its bound when asked."""
    start = calls[0]
    if method == "richardson":
        levels = h / 2.0 ** np.arange(RICHARDSON_LEVELS)
        upper, lower = x + levels, x - levels
        above = np.array([real_f(float(a)) for a in upper])
        below = np.array([real_f(float(b)) for b in lower])
        values, changes = richardson(((above - below) / (upper - lower))[np.newaxis, :])
        value, truncation = float(values[0]), float(changes[0])
        if not full_output:
            return value
        # The rounding of D(h/2^k) is σ/(√2·h_k); Richardson's weights combine them.
        spread = float(np.sqrt(2 * np.sum((richardson_weights() / (upper - lower)) ** 2)))
        center = real_f(x)
        sigma = _noise(real_f, x, center, None)
        table = np.concatenate([above, below])
    elif not full_output:
        return one_difference(real_f, x, h, method)
    else:
        # Nine equally spaced values reaching x ± h: the quotients at h and h/2, and a
        # noise table at the scale of the step itself (Moré & Wild), which sees noise on
        # that scale (a sawtooth of rounding, say) a finer table may miss.
        if method == "central":
            points = x + (np.arange(POINTS) - POINTS // 2) * (h / 4)
            far, near, middle = (0, POINTS - 1), (2, POINTS - 3), POINTS // 2
        else:
            sign = 1.0 if method == "forward" else -1.0
            points = x + sign * np.arange(POINTS) * (h / 8)
            far, near, middle = (0, POINTS - 1), (0, POINTS // 2), 0
            if method == "backward":
                far, near = far[::-1], near[::-1]
        table = np.array([real_f(float(t)) for t in points])
        center = float(table[middle])

        def quotient(ends: tuple[int, int]) -> float:
            return float((table[ends[1]] - table[ends[0]]) / (points[ends[1]] - points[ends[0]]))

        value, halved = quotient(far), quotient(near)
        # error(h) − error(h/2) is 3/4 of error(h) for central, 1/2 for one-sided differences.
        truncation = abs(value - halved) * (4 / 3 if method == "central" else 2.0)
        # The quotient's rounding: two values of noise σ over the width 2h (or h).
        spread = np.sqrt(2) / (2 * h if method == "central" else h)
        sigma = _noise(real_f, x, center, table)
    # The noise measured at x, grown with the values at the points used (see value_noise).
    noise = float(value_noise(sigma, float(np.finfo(np.float64).eps), center, table).max())
    rounding = DEVIATIONS * noise
    error = TRUNCATION_SAFETY * truncation + rounding * spread
    return Derivative(value, float(error), h, method, calls[0] - start, sigma)


def _noise(
    real_f: Callable[[float], float],
    x: float,
    center: float,
    table: NDArray[np.float64] | None,
) -> float:
    """Return the noise of ``f`` near ``x``: ``table``'s level or finer tables', the larger."""
    sigma = 0.0
    if table is not None:
        level, _, status = noise_level(table)
        sigma = level if status == "measured" else 0.0
    try:
        return max(sigma, scalar_noise(real_f, x, center).sigma)
    except LossEvaluationError:  # a table reached outside the domain: keep what was seen
        return sigma


def numerical_gradient(
    loss: Callable[[Any], Any],
    params: Params,
    eps: float | None = None,
    method: str = "central",
) -> Any:
    """Differentiate a scalar loss with respect to every parameter value, one at a time.

    This is the course notes' ``dθ_approx``: for each coordinate ``i`` of θ, the loss is
    evaluated with ``θᵢ`` moved by ±ε and all else fixed. It costs ``2N`` loss
    evaluations for ``N`` values with central differences; see
    :func:`gradprobe.check_gradients` to compare the result with analytic gradients.

    Parameters
    ----------
    loss : callable
        ``loss(params) -> float``, called with a structure like ``params`` holding
        float64 arrays. It must not keep or modify the arrays it is given.
    params : dict of str to ndarray, list or tuple of ndarray, or ndarray
        The point of differentiation; never modified.
    eps : float, optional
        The step, used exactly as given for every coordinate; by default
        :func:`default_step` for float64, which grows with ``max(1, |θᵢ|)``.
    method : {"central", "forward", "backward", "complex", "richardson"}, default="central"
        The difference formula, as in :func:`derivative`.

    Returns
    -------
    dict, list, tuple or ndarray
        The gradient in the same structure as ``params``, as float64 arrays.

    Examples
    --------
    >>> import numpy as np
    >>> square = lambda p: float(np.sum(p["w"] ** 2))
    >>> grad = numerical_gradient(square, {"w": np.array([1.0, -2.0])})
    >>> np.round(grad["w"], 6)
    array([ 2., -4.])
    """
    layout = ParameterLayout.from_params(params)
    theta = layout.flatten(params)
    check_steps(theta, eps, method, "θᵢ")
    values = evaluate_differences(loss, layout, theta, np.arange(layout.size), eps, method)
    dtheta = np.zeros(layout.size)
    dtheta[:] = values.gradient
    return layout.unflatten(dtheta)
