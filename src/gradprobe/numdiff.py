"""Numerical derivatives: the difference formulas, their steps and their errors.

The seed compares the one-sided difference ``(f(θ+ε) − f(θ)) / ε``, whose error is
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
from functools import partial
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import NDArray

from gradprobe._params import ParameterLayout, Params
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, LossEvaluationError

__all__ = ["METHODS", "Derivative", "default_step", "derivative", "numerical_gradient"]

Method = Literal["forward", "backward", "central", "complex", "richardson"]
METHODS: tuple[str, ...] = ("forward", "backward", "central", "complex", "richardson")

# Richardson extrapolation: central differences at h / 2**k, k = 0..3.
_RICHARDSON_LEVELS = 4


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


def default_step(method: str, x: float | NDArray[np.floating[Any]], dtype: Any = np.float64) -> Any:
    """Return the step a method uses when ``eps`` is not given.

    Parameters
    ----------
    method : {"forward", "backward", "central", "complex", "richardson"}
        The difference formula.
    x : float or ndarray
        The point(s) of differentiation; the step grows with ``max(1, |x|)``.
    dtype : dtype, default=float64
        The precision the function is computed in.

    Returns
    -------
    float or ndarray
        ``√u·max(1, |x|)`` for one-sided, ``∛u·max(1, |x|)`` for central,
        ``u^(1/9)·max(1, |x|)`` for Richardson (its error is O(ε⁸)) and
        ``1e-20·max(1, |x|)`` for the complex step, with ``u`` the machine epsilon.

    Examples
    --------
    >>> float(default_step("central", 1.0))  # ∛(2.2e-16)
    6.05545445239334e-06
    """
    _check_method(method)
    unit = float(np.finfo(dtype).eps)
    exponent = {"forward": 1 / 2, "backward": 1 / 2, "central": 1 / 3, "richardson": 1 / 9}
    base = 1e-20 if method == "complex" else unit ** exponent[method]
    return base * np.maximum(1.0, np.abs(x))


def _check_method(method: object) -> None:
    if method not in METHODS:
        raise InvalidArgumentError(f"method: got {method!r}, expected one of {', '.join(METHODS)}")


def _check_eps(eps: object) -> float | None:
    if eps is None:
        return None
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)):
        raise InvalidTypeError(f"eps: got {type(eps).__name__}, expected a positive number or None")
    value = float(eps)
    if not np.isfinite(value) or value <= 0:
        raise InvalidArgumentError(
            f"eps: got {value!r}, expected a positive finite step (or None to choose one)"
        )
    return value


def _scalar(value: Any, where: str, argument: str = "the function") -> float:
    """Turn one value of the user's function into a float, or explain why not."""
    if np.ndim(value) != 0:
        raise LossEvaluationError(
            f"{argument} returned an array of shape {np.shape(value)} {where}, expected a "
            "scalar; reduce it with .sum() or .mean()"
        )
    if np.iscomplexobj(value) and np.imag(value) != 0:
        raise LossEvaluationError(
            f"{argument} returned the complex value {complex(value)} {where}, expected a real "
            "scalar (complex inputs are only for method='complex')"
        )
    try:
        number = float(np.real(value))
    except (TypeError, ValueError) as error:
        raise LossEvaluationError(
            f"{argument} returned {type(value).__name__} {where}, expected a real scalar"
        ) from error
    if not np.isfinite(number):
        raise LossEvaluationError(f"{argument} returned {number} {where}, expected a finite value")
    return number


def _richardson(f: Callable[[float], float], x: float, h: float) -> tuple[float, float, int]:
    """Extrapolate central differences at h, h/2, h/4, h/8; return value, error, evaluations.

    The error estimate is the larger of the last extrapolation's change (truncation)
    and the rounding of the finest difference, amplified by the extrapolation weights.
    """
    table = []
    magnitude = 0.0
    for k in range(_RICHARDSON_LEVELS):
        upper, lower = x + h / 2**k, x - h / 2**k
        above, below = f(upper), f(lower)
        magnitude = max(magnitude, abs(above), abs(below))
        table.append((above - below) / (upper - lower))
    previous = table[-1]
    for order in range(1, _RICHARDSON_LEVELS):
        factor = 4.0**order
        previous = table[-1]
        pairs = zip(table[:-1], table[1:], strict=True)
        table = [(factor * fine - coarse) / (factor - 1) for coarse, fine in pairs]
    finest = h / 2 ** (_RICHARDSON_LEVELS - 1)
    rounding = 4 * np.finfo(np.float64).eps * magnitude / finest
    return table[0], max(abs(table[0] - previous), rounding), 2 * _RICHARDSON_LEVELS


def _one_difference(f: Callable[[float], float], x: float, h: float, method: str) -> float:
    if method == "forward":
        upper = x + h
        return (f(upper) - f(x)) / (upper - x)
    if method == "backward":
        lower = x - h
        return (f(x) - f(lower)) / (x - lower)
    upper, lower = x + h, x - h
    return (f(upper) - f(lower)) / (upper - lower)


def _complex_step(function: Callable[[Any], Any], x: float, h: float) -> float:
    try:
        value = function(complex(x, h))
    except Exception as error:  # noqa: BLE001 - any failure means complex input is unsupported
        raise LossEvaluationError(
            "method='complex' needs a function written with operations that accept complex "
            f"numbers (it raised {type(error).__name__}: {error}); use method='central' or "
            "'richardson' instead"
        ) from error
    if np.ndim(value) != 0:
        raise LossEvaluationError(
            f"the function returned an array of shape {np.shape(value)}, expected a scalar"
        )
    if not np.iscomplexobj(value) or not np.isfinite(value):
        raise LossEvaluationError(
            "method='complex' needs a function that keeps the imaginary part (it returned "
            f"{value.item() if hasattr(value, 'item') else value}; abs, comparisons and "
            "float() drop it); use method='central' instead"
        )
    return float(np.imag(value)) / h


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
    The seed's example, f(θ) = θ³ at θ = 1 with ε = 0.01:

    >>> cube = lambda t: t**3
    >>> round(derivative(cube, 1.0, eps=0.01, method="forward"), 10)
    3.0301
    >>> round(derivative(cube, 1.0, eps=0.01, method="central"), 10)
    3.0001
    """
    _check_method(method)
    step = _check_eps(eps)
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
        except Exception as error:
            raise LossEvaluationError(
                f"the function raised {type(error).__name__} at x = {t!r}: {error}"
            ) from error
        return _scalar(value, f"at x = {t!r}", "f")

    if method == "complex":
        value = _complex_step(f, point, h)
        error_estimate = 4 * np.finfo(np.float64).eps * max(abs(value), 1e-300)
        evaluations = 1
    elif method == "richardson":
        value, error_estimate, evaluations = _richardson(real_f, point, h)
    else:
        value = _one_difference(real_f, point, h, method)
        # Truncation: the change when the step halves; rounding: u·|f| / h.
        truncation = abs(value - _one_difference(real_f, point, h / 2, method))
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

    This is the seed's ``dθ_approx``: for each coordinate ``i`` of θ, the loss is
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
    values = evaluate_differences(loss, layout, theta, np.arange(layout.size), eps, method)
    dtheta = np.zeros(layout.size)
    dtheta[:] = values.gradient
    return layout.unflatten(dtheta)


@dataclass
class Differences:
    """The raw material of a numerical gradient over some coordinates of θ.

    Attributes
    ----------
    indices : ndarray of int, shape (k,)
        The coordinates of θ that were differentiated.
    gradient : ndarray of float64, shape (k,)
        The numerical derivative of each.
    steps : ndarray of float64, shape (k,)
        The step used for each.
    forward, backward : ndarray of float64, shape (k,), or None
        The two one-sided slopes, available for ``method="central"`` (used to find kinks).
    center : float
        The loss at θ.
    evaluations : int
        How many times the loss was called.
    """

    indices: NDArray[np.intp]
    gradient: NDArray[np.float64]
    steps: NDArray[np.float64]
    forward: NDArray[np.float64] | None
    backward: NDArray[np.float64] | None
    center: float
    evaluations: int


class LossOnTheta:
    """Call a user's loss on a flat vector θ, checking and counting every call.

    Parameters
    ----------
    loss : callable
        ``loss(params) -> float`` in the user's structure.
    layout : ParameterLayout
        How θ maps back onto that structure.

    Attributes
    ----------
    evaluations : int
        How many times the loss has been called.
    value_dtype : numpy.dtype
        The precision of the loss's first value: float64 unless the loss computes
        in lower precision (it returned a float32 or float16 scalar).
    """

    def __init__(self, loss: Callable[[Any], Any], layout: ParameterLayout) -> None:
        if not callable(loss):
            raise InvalidTypeError(f"loss: got {type(loss).__name__}, expected a callable")
        self.loss = loss
        self.layout = layout
        self.evaluations = 0
        self.value_dtype: np.dtype[Any] = np.dtype(np.float64)

    def __call__(self, theta: NDArray[Any], index: int | None = None) -> float:
        """Return the loss at ``theta`` (shape ``(size,)``) as a float.

        ``index`` names the coordinate being moved, for error messages only.
        """
        self.evaluations += 1
        try:
            value = self.loss(self.layout.unflatten(theta))
        except Exception as error:
            raise LossEvaluationError(
                f"loss raised {type(error).__name__} {self._where(index)}: {error}"
            ) from error
        if self.evaluations == 1 and isinstance(value, (np.generic, np.ndarray)):
            if value.dtype.kind == "f" and value.dtype.itemsize < 8:
                self.value_dtype = value.dtype
        return _scalar(value, self._where(index), "loss")

    def _where(self, index: int | None) -> str:
        if index is None:
            return "at θ"
        return f"at θ with {self.layout.coordinate_name(index)} moved"

    def complex_slope(self, theta: NDArray[np.float64], index: int, h: float) -> float:
        """Return ``Im loss(θ + ihe_i) / h``, the complex-step slope along coordinate ``index``."""
        point = theta.astype(np.complex128)
        point[index] += 1j * h
        self.evaluations += 1
        return _complex_step(
            lambda _: self.loss(self.layout.unflatten(point)), float(theta[index]), h
        )

    def at(self, theta: NDArray[np.float64], index: int, value: float) -> float:
        """Return the loss with ``theta[index] = value``, putting the old value back bit for bit."""
        original = theta[index]
        theta[index] = value
        try:
            return self(theta, index)
        finally:
            theta[index] = original

    def coordinates(
        self, theta: NDArray[np.float64], indices: NDArray[np.intp], values: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Return the loss at θ with one coordinate replaced, for each pair, one at a time.

        Row ``r`` sets coordinate ``indices[r]`` to ``values[r]``; ``theta`` is restored
        bit for bit after each. Evaluators that can do better (a batched loss, an
        executor, a layered model) override this.
        """
        pairs = zip(indices.tolist(), values.tolist(), strict=True)
        return np.array([self.at(theta, i, v) for i, v in pairs], dtype=np.float64)


def coordinate_steps(
    method: str,
    theta: NDArray[np.float64],
    indices: NDArray[np.intp],
    eps: float | None,
    dtype: Any = np.float64,
) -> NDArray[np.float64]:
    """Return the step for each coordinate: ``eps`` itself, or :func:`default_step`."""
    step = _check_eps(eps)
    if step is not None:
        return np.full(len(indices), step)
    return np.asarray(default_step(method, theta[indices], dtype), dtype=np.float64)


def evaluate_differences(
    loss: Callable[[Any], Any] | LossOnTheta,
    layout: ParameterLayout,
    theta: NDArray[np.float64],
    indices: NDArray[np.intp],
    eps: float | None,
    method: str,
    steps: NDArray[np.float64] | None = None,
) -> Differences:
    """Differentiate the loss along the coordinates ``indices`` of θ.

    The single routine behind :func:`numerical_gradient` and every gradient check.
    The perturbed loss values come from ``evaluate.coordinates``: one at a time for a
    plain loss (``theta`` moved in place and restored bit for bit), in stacks for a
    batched loss or an executor, by layer-aware updates for gradprobe's MLP.

    Parameters
    ----------
    loss : callable or LossOnTheta
        The loss in the user's structure, or one already wrapped.
    layout : ParameterLayout
        The layout of θ.
    theta : ndarray of float64, shape (size,)
        The point; restored before returning.
    indices : ndarray of int, shape (k,)
        Which coordinates to differentiate.
    eps : float or None
        The step, or None for :func:`default_step` of each coordinate.
    method : str
        One of :data:`METHODS`.
    steps : ndarray of float64, shape (k,), optional
        The steps to use, overriding ``eps`` (as :func:`coordinate_steps` returns them).

    Returns
    -------
    Differences
    """
    _check_method(method)
    evaluate = loss if isinstance(loss, LossOnTheta) else LossOnTheta(loss, layout)
    start = evaluate.evaluations
    center = evaluate(theta)
    if steps is None:
        steps = coordinate_steps(method, theta, indices, eps, evaluate.value_dtype)
    forward: NDArray[np.float64] | None = None
    backward: NDArray[np.float64] | None = None
    original = theta[indices]
    upper, lower = original + steps, original - steps
    if method == "central":
        both = evaluate.coordinates(
            theta, np.concatenate([indices, indices]), np.concatenate([upper, lower])
        )
        above, below = both[: len(indices)], both[len(indices) :]
        gradient = (above - below) / (upper - lower)
        forward = (above - center) / (upper - original)
        backward = (center - below) / (original - lower)
    elif method == "forward":
        gradient = (evaluate.coordinates(theta, indices, upper) - center) / (upper - original)
    elif method == "backward":
        gradient = (center - evaluate.coordinates(theta, indices, lower)) / (original - lower)
    else:  # complex and richardson take several points per coordinate
        gradient = np.empty(len(indices))
        pairs = zip(indices.tolist(), steps.tolist(), strict=True)
        for position, (index, h) in enumerate(pairs):
            if method == "complex":
                gradient[position] = evaluate.complex_slope(theta, index, h)
            else:
                at = partial(evaluate.at, theta, index)
                gradient[position] = _richardson(at, float(theta[index]), h)[0]
    return Differences(
        indices=np.asarray(indices, dtype=np.intp),
        gradient=gradient,
        steps=steps,
        forward=forward,
        backward=backward,
        center=center,
        evaluations=evaluate.evaluations - start,
    )
