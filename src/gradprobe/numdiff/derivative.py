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

from gradprobe._params import ParameterLayout, Params
from gradprobe._validate import check_real, check_steps, unless_interrupt
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, LossEvaluationError
from gradprobe.numdiff.perturbation import evaluate_differences
from gradprobe.numdiff.rules import (
    METHODS,
    as_scalar,
    check_eps,
    check_method,
    complex_step,
    default_step,
    one_difference,
    richardson,
)

__all__ = ["METHODS", "Derivative", "default_step", "derivative", "numerical_gradient"]


@dataclass(frozen=True)
class Derivative:
    """A numerical derivative with its own error estimate.

    Attributes
    ----------
    value : float
        The estimate of f'(x).
    error : float
        An estimate of ``|value − f'(x)|``: the change of the estimate when the
        step is halved (for ``"complex"``, the rounding level of the result).
    step : float
        The step ε used.
    method : str
        The difference formula.
    evaluations : int
        How many times ``f`` was called, the error estimate included.
    """

    value: float
    error: float
    step: float
    method: str
    evaluations: int


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
        The step ε, used exactly as given; by default :func:`default_step` chooses it.
    method : {"central", "forward", "backward", "complex", "richardson"}, default="central"
        ``"forward"`` is ``(f(x+ε) − f(x)) / ε``, error O(ε); ``"backward"`` its mirror;
        ``"central"`` is ``(f(x+ε) − f(x−ε)) / 2ε``, error O(ε²); ``"complex"`` is
        ``Im f(x+iε) / ε``, exact to rounding; ``"richardson"`` extrapolates central
        differences at four steps, error O(ε⁸).
    full_output : bool, default=False
        Return a :class:`Derivative` with an error estimate instead of a float.

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
    h = float(default_step(method, point)) if step is None else step

    def real_f(t: float) -> float:
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
        value = complex_step(f, point, h)
        error_estimate = 4 * np.finfo(np.float64).eps * max(abs(value), 1e-300)
        evaluations = 1
    elif method == "richardson":
        value, error_estimate, evaluations = richardson(real_f, point, h)
    else:
        value = one_difference(real_f, point, h, method)
        # Truncation: the change when the step halves; rounding: u·|f| / h.
        truncation = abs(value - one_difference(real_f, point, h / 2, method))
        rounding = 2 * np.finfo(np.float64).eps * abs(real_f(point)) / h
        error_estimate = max(truncation, rounding)
        evaluations = 5 if method == "central" else 4
    if not full_output:
        return value
    return Derivative(value, float(error_estimate), h, method, evaluations)


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
