"""The loss as a function of the flat parameter vector θ, and its differences along coordinates.

:class:`LossOnTheta` calls the user's loss on θ, checking and counting every call;
:func:`evaluate_differences` turns the loss at θ with one coordinate moved into
difference quotients, the single routine behind every numerical gradient in gradprobe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._params import ParameterLayout
from gradprobe._validate import unless_interrupt
from gradprobe.errors import InvalidTypeError, LossEvaluationError
from gradprobe.numdiff.progress import Callback, Interrupted, in_chunks
from gradprobe.numdiff.rules import (
    RICHARDSON_LEVELS,
    as_scalar,
    check_eps,
    check_method,
    complex_step,
    default_step,
    richardson,
)

__all__ = ["Differences", "LossOnTheta", "coordinate_steps", "evaluate_differences"]


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
        The step used for each (the largest one, for Richardson).
    forward, backward : ndarray of float64, shape (k,), or None
        The two one-sided slopes at ``steps``, available for ``method="central"`` and
        ``"richardson"`` (used to find kinks).
    center : float
        The loss at θ.
    evaluations : int
        How many times the loss was called.
    upper, lower : ndarray of float64, shape (k, levels), or None
        The moved coordinate's values, ``θᵢ ± steps/2^j`` for level ``j`` (one level but
        for Richardson's four); None for the complex step.
    above, below : ndarray of float64, shape (k, levels), or None
        The loss at those points; NaN on a side the method does not evaluate.
    change : ndarray of float64, shape (k,), or None
        For Richardson, how much the value moved at the last extrapolation order.
    """

    indices: NDArray[np.intp]
    gradient: NDArray[np.float64]
    steps: NDArray[np.float64]
    forward: NDArray[np.float64] | None
    backward: NDArray[np.float64] | None
    center: float
    evaluations: int
    upper: NDArray[np.float64] | None = None
    lower: NDArray[np.float64] | None = None
    above: NDArray[np.float64] | None = None
    below: NDArray[np.float64] | None = None
    change: NDArray[np.float64] | None = None


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
        except BaseException as error:  # noqa: BLE001 - whatever the user's loss raises
            raise LossEvaluationError(
                f"loss raised {type(error).__name__} {self._where(index)}: {error}"
            ) from unless_interrupt(error)
        if self.evaluations == 1 and isinstance(value, (np.generic, np.ndarray)):
            if value.dtype.kind == "f" and value.dtype.itemsize < 8:
                self.value_dtype = value.dtype
        return as_scalar(value, self._where(index), "loss")

    def _where(self, index: int | None) -> str:
        if index is None:
            return "at θ"
        return f"at θ with {self.layout.coordinate_name(index)} moved"

    def complex_slope(self, theta: NDArray[np.float64], index: int, h: float) -> float:
        """Return ``Im loss(θ + ihe_i) / h``, the complex-step slope along coordinate ``index``."""
        point = theta.astype(np.complex128)
        point[index] += 1j * h
        self.evaluations += 1
        return complex_step(
            lambda _: self.loss(self.layout.unflatten(point)), float(theta[index]), h
        )[0]

    def at(self, theta: NDArray[np.float64], index: int, value: float) -> float:
        """Return the loss with ``theta[index] = value``, putting the old value back bit for bit."""
        original = theta[index]
        theta[index] = value
        try:
            return self(theta, index)
        finally:
            theta[index] = original

    def ahead(
        self,
        theta: NDArray[np.float64],
        indices: NDArray[np.intp],
        columns: Sequence[NDArray[np.float64]],
    ) -> None:
        """Hear every point a differentiation will ask :meth:`coordinates` for, before it asks.

        For each column ``c`` and each ``r``, the point is θ with ``theta[indices[r]] =
        columns[c][r]``. :func:`evaluate_differences` tells this before its chunks (which
        follow for progress and Ctrl-C); an evaluator fastest asked for everything at
        once may compute the values here and answer the chunks from them. The default
        does nothing.
        """

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
    step = check_eps(eps)
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
    *,
    progress: Callback | None = None,
    center: float | None = None,
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
    center : float, optional
        The loss at θ when the caller has it already (saves one evaluation).
    progress : callable, optional
        ``progress(done, k)`` after each chunk of coordinates (see
        :mod:`gradprobe.numdiff.progress`).

    Returns
    -------
    Differences

    Raises
    ------
    Interrupted
        On Ctrl-C; its ``partial`` holds the :class:`Differences` of the coordinates
        finished by then, the first ``done`` of ``indices``.
    """
    check_method(method)
    evaluate = loss if isinstance(loss, LossOnTheta) else LossOnTheta(loss, layout)
    start = evaluate.evaluations
    if center is None:
        center = evaluate(theta)
    if steps is None:
        steps = coordinate_steps(method, theta, indices, eps, evaluate.value_dtype)
    count = len(indices)
    spread = getattr(evaluate, "executor", None) is not None
    if method == "complex":
        gradient = np.full(count, np.nan)

        def slopes(part: slice) -> None:
            pairs = zip(indices[part].tolist(), steps[part].tolist(), strict=True)
            for position, (index, h) in enumerate(pairs, start=part.start):
                gradient[position] = evaluate.complex_slope(theta, index, h)

        def complex_steps(done: int) -> Differences:
            return Differences(
                np.asarray(indices[:done], dtype=np.intp), gradient[:done].copy(), steps[:done],
                None, None, center, evaluate.evaluations - start,
            )  # fmt: skip

        try:
            in_chunks(count, slopes, progress, spread=spread)
        except Interrupted as stop:
            stop.partial = complex_steps(stop.done)
            raise
        return complex_steps(count)
    levels = RICHARDSON_LEVELS if method == "richardson" else 1
    original = theta[indices][:, np.newaxis]
    scaled = steps[:, np.newaxis] / 2.0 ** np.arange(levels)
    upper, lower = original + scaled, original - scaled
    above = np.full((count, levels), np.nan)
    below = np.full((count, levels), np.nan)
    sides = {"forward": (above,), "backward": (below,)}.get(method, (above, below))
    wanted = [(side, upper if side is above else lower) for side in sides]
    evaluate.ahead(theta, indices, [points[:, j] for _, points in wanted for j in range(levels)])

    def work(part: slice) -> None:
        # One chunk of coordinates: all its points in one call, as the whole would be.
        repeated = np.repeat(indices[part], levels)
        values = evaluate.coordinates(
            theta,
            np.concatenate([repeated] * len(wanted)),
            np.concatenate([points[part].ravel() for _, points in wanted]),
        )
        rows = len(repeated)
        for k, (side, _) in enumerate(wanted):
            side[part] = values[k * rows : (k + 1) * rows].reshape(-1, levels)

    def quotients(done: int) -> Differences:
        a, b, up, low, at = above[:done], below[:done], upper[:done], lower[:done], original[:done]
        forward = (a[:, 0] - center) / (up[:, 0] - at[:, 0])
        backward = (center - b[:, 0]) / (at[:, 0] - low[:, 0])
        change = None
        if method == "forward":
            gradient = forward
        elif method == "backward":
            gradient = backward
        elif method == "central":
            gradient = (a[:, 0] - b[:, 0]) / (up[:, 0] - low[:, 0])
        else:
            gradient, change = richardson((a - b) / (up - low))
        both = method in ("central", "richardson")
        return Differences(
            indices=np.asarray(indices[:done], dtype=np.intp),
            gradient=gradient,
            steps=steps[:done],
            forward=forward if both else None,
            backward=backward if both else None,
            center=float(center),
            evaluations=evaluate.evaluations - start,
            upper=up,
            lower=low,
            above=a,
            below=b,
            change=change,
        )

    try:
        in_chunks(count, work, progress, spread=spread)
    except Interrupted as stop:
        stop.partial = quotients(stop.done)
        raise
    return quotients(count)
