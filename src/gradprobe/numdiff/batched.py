"""Evaluate the loss at many parameter vectors at once: batched, in blocks, or in parallel.

A full gradient check needs ``2N`` loss values for ``N`` parameters, each at θ with
one coordinate moved. Called one by one, every call is a matrix-vector sized piece
of work wrapped in Python overhead. :class:`ThetaEvaluator` evaluates them as a
*stack*: with ``batched=True`` the loss receives parameters that carry a leading
batch axis (``W1`` of shape ``(batch, n_1, n_0)``) and returns one value per row,
so the work becomes matrix-matrix. The stack is cut into blocks whose parameter
copies fit a memory budget, and blocks can be handed to any
:class:`concurrent.futures.Executor` (see :mod:`gradprobe.numdiff.parallel`).

:func:`gradprobe.numdiff.perturbation.evaluate_differences` asks an evaluator for those values
through its ``coordinates`` method and turns them into quotients with the same
arithmetic whatever the route, so all routes agree bit for bit whenever the loss
values do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._params import ParameterLayout
from gradprobe._validate import check_memory, unless_interrupt
from gradprobe.errors import LossEvaluationError
from gradprobe.numdiff.parallel import map_coordinates, map_rows
from gradprobe.numdiff.perturbation import LossOnTheta

__all__ = [
    "DEFAULT_MEMORY",
    "ThetaEvaluator",
    "rows_per_block",
    "segment_values",
]

DEFAULT_MEMORY = 256 * 2**20
"""Default memory budget, in bytes, for one block of perturbed parameter vectors."""

# Difference formulas whose loss values can be requested all at once.


def rows_per_block(row_bytes: int, memory: int) -> int:
    """Return how many rows of ``row_bytes`` bytes fit in ``memory`` bytes (at least one).

    Examples
    --------
    >>> rows_per_block(8 * 1000, 256 * 2**20)
    33554
    """
    return max(1, int(memory) // max(1, int(row_bytes)))


def _blocks(count: int, size: int) -> Iterator[slice]:
    for start in range(0, count, size):
        yield slice(start, min(count, start + size))


class ThetaEvaluator(LossOnTheta):
    """A :class:`~gradprobe.numdiff.perturbation.LossOnTheta` evaluating many points of θ at once.

    Parameters
    ----------
    loss : callable
        ``loss(params) -> float``; with ``batched=True``, ``loss(params) -> ndarray of
        shape (batch,)`` where every array of ``params`` carries a leading batch axis.
    layout : ParameterLayout
        How θ maps onto the loss's parameter structure.
    batched : bool, default=False
        Whether the loss takes a batch of parameter vectors.
    executor : concurrent.futures.Executor, optional
        Where blocks of evaluations run; the loss must then be picklable.
    memory : int, default=DEFAULT_MEMORY
        Bytes allowed for one block of perturbed parameter vectors (``8·N`` bytes per
        row). A batched loss allocates its own intermediates per row as well: lower
        the budget when those are much larger than the parameters.

    Attributes
    ----------
    evaluations : int
        Loss evaluations so far, counting every row of a batch as one.
    """

    def __init__(
        self,
        loss: Callable[[Any], Any],
        layout: ParameterLayout,
        *,
        batched: bool = False,
        executor: Executor | None = None,
        memory: int = DEFAULT_MEMORY,
    ) -> None:
        super().__init__(loss, layout)
        self.batched = bool(batched)
        self.executor = executor
        self.memory = check_memory(memory)

    @property
    def stacks(self) -> bool:
        """Whether values are best requested many at a time (batched loss or executor)."""
        return self.batched or self.executor is not None

    @property
    def block_rows(self) -> int:
        """Rows of θ evaluated together in one batched call."""
        return rows_per_block(8 * self.layout.size, self.memory)

    def __call__(self, theta: NDArray[Any], index: int | None = None) -> float:
        """Return the loss at one point ``theta`` of shape ``(size,)``."""
        if not self.batched:
            return super().__call__(theta, index)
        return float(self._batch(theta[np.newaxis, :], index)[0])

    def _batch(self, points: NDArray[np.float64], index: int | None = None) -> NDArray[np.float64]:
        """Call the batched loss once on ``points`` of shape ``(rows, size)``."""
        self.evaluations += len(points)
        try:
            array = np.asarray(self.loss(self.layout.unflatten(points)))
        except BaseException as error:  # noqa: BLE001 - whatever the user's loss raises
            raise LossEvaluationError(
                f"batched loss raised {type(error).__name__} {self._where(index)}: {error}"
            ) from unless_interrupt(error)
        if array.shape != (len(points),):
            raise LossEvaluationError(
                f"batched loss returned shape {array.shape} for a batch of {len(points)} "
                f"parameter vectors, expected ({len(points)},): one value per row of the batch"
            )
        if array.dtype.kind != "f":
            raise LossEvaluationError(
                f"batched loss returned dtype {array.dtype}, expected real floating values"
            )
        if self.evaluations == len(points) and array.dtype.itemsize < 8:
            self.value_dtype = array.dtype
        if not np.all(np.isfinite(array)):
            row = int(np.flatnonzero(~np.isfinite(array))[0])
            raise LossEvaluationError(
                f"batched loss returned {array[row]} in row {row} of a batch, expected finite "
                "values"
            )
        return array.astype(np.float64)

    def rows(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        """Return the loss at every row of ``points``, shape ``(rows, size)`` -> ``(rows,)``."""
        if self.executor is not None:
            result = map_rows(self, points)
            self.evaluations += len(points)
            return result
        if self.batched:
            values = [self._batch(points[block]) for block in _blocks(len(points), self.block_rows)]
            return np.concatenate(values) if values else np.empty(0)
        return np.array([self(point) for point in points], dtype=np.float64)

    def coordinates(
        self, theta: NDArray[np.float64], indices: NDArray[np.intp], values: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Return the loss at θ with one coordinate replaced, for each pair.

        Parameters
        ----------
        theta : ndarray of float64, shape (size,)
            The base point; not modified (it is restored bit for bit when a serial
            evaluation moves a coordinate in place).
        indices : ndarray of int, shape (k,)
            Row ``r`` sets coordinate ``indices[r]`` ...
        values : ndarray of float64, shape (k,)
            ... to ``values[r]``.

        Returns
        -------
        ndarray of float64, shape (k,)
        """
        if self.executor is not None:
            result = map_coordinates(self, theta, indices, values)
            self.evaluations += len(indices)
            return result
        if not self.batched:
            return super().coordinates(theta, indices, values)
        out = np.empty(len(indices))
        for block in _blocks(len(indices), self.block_rows):
            points = np.repeat(theta[np.newaxis, :], block.stop - block.start, axis=0)
            points[np.arange(len(points)), indices[block]] = values[block]
            out[block] = self._batch(points)
        return out

    def serial(self) -> ThetaEvaluator:
        """Return an evaluator of the same loss that runs here, without the executor."""
        return ThetaEvaluator(self.loss, self.layout, batched=self.batched, memory=self.memory)


def segment_values(
    evaluate: LossOnTheta,
    theta: NDArray[np.float64],
    span: slice,
    values: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Return the loss at θ with ``theta[span]`` replaced by each row of ``values``.

    A stacking :class:`ThetaEvaluator` gets whole rows in memory-sized blocks; any
    other evaluator moves the segment in place and puts it back bit for bit, so
    each value costs O(segment) here instead of a copy of θ.

    Parameters
    ----------
    evaluate : LossOnTheta
        The loss on θ.
    theta : ndarray of float64, shape (size,)
        The base point; unchanged on return.
    span : slice
        The segment of θ to replace.
    values : ndarray of float64, shape (rows, segment length)
        The replacement values, one row per evaluation.

    Returns
    -------
    ndarray of float64, shape (rows,)
    """
    if isinstance(evaluate, ThetaEvaluator) and evaluate.stacks:
        out = np.empty(len(values))
        for block in _blocks(len(values), evaluate.block_rows):
            points = np.repeat(theta[np.newaxis, :], block.stop - block.start, axis=0)
            points[:, span] = values[block]
            out[block] = evaluate.rows(points)
        return out
    original = theta[span].copy()
    out = np.empty(len(values))
    try:
        for row, segment in enumerate(values):
            theta[span] = segment
            out[row] = evaluate(theta)
    finally:
        theta[span] = original
    return out
