"""Run blocks of loss evaluations on any :class:`concurrent.futures.Executor`.

A gradient check's loss values are independent of each other, so they can be
computed anywhere. gradprobe cuts them into a few blocks per worker and submits
each block as one task, ``(serial evaluator, θ, which coordinates, which values)``;
the worker runs the evaluator (the plain, batched or structure-aware one, without
the executor) and returns the block's values. Any executor works: ``workers=N``
makes a local process pool, and a cluster engine's executor (Ray's, or
``dask.distributed.Client.get_executor()``) runs the same tasks with no extra
code. The loss must be picklable: a module-level function, a
:func:`functools.partial` of one, or an object with a ``__call__``.

How many blocks: a few per slot of the executor, its capacity read from the
executor itself (:func:`executor_capacity`): a process or thread pool's workers,
a Dask cluster's total threads over all its workers, read again at every call so
a cluster that grows is used. Only an executor that tells nothing falls back to
this machine's CPU count.

Each value is computed by the same code as in the serial path, so the results
are the same numbers.
"""

from __future__ import annotations

import os
import pickle
import signal
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from gradprobe.errors import InvalidArgumentError, InvalidTypeError


class Distributable(Protocol):
    """An evaluator that runs on an executor, such as a ``ThetaEvaluator``."""

    loss: Callable[[Any], Any]
    executor: Executor | None

    def serial(self) -> Distributable:
        """Return the same evaluator without its executor, to run on a worker."""
        ...

    def coordinates(
        self, theta: NDArray[np.float64], indices: NDArray[np.intp], values: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Return the loss at θ with coordinate ``indices[r]`` set to ``values[r]``."""
        ...

    def rows(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        """Return the loss at every row of ``points``."""
        ...


__all__ = [
    "executor_capacity",
    "map_coordinates",
    "map_rows",
    "resolve_executor",
    "stop_pool",
    "task_count",
]

# Tasks per worker: enough to balance uneven workers, few enough to keep θ transfers cheap.
_TASKS_PER_WORKER = 4
# How long a stopped pool's workers get to exit after being told to terminate.
_JOIN_SECONDS = 1.0
# The process pools made here for ``workers=N``: on Ctrl-C they are stopped at once.
_OWNED: weakref.WeakSet[ProcessPoolExecutor] = weakref.WeakSet()


def _leave_interrupts_to_the_parent() -> None:
    # Ctrl-C reaches the whole process group; a worker that took it would print a
    # traceback and break the pool. The parent cancels the work and ends the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel a process pool's pending work and end its workers now, not when they finish.

    ``shutdown(wait=True)``, what ``with ProcessPoolExecutor()`` does on the way out,
    waits for every queued task; after Ctrl-C that can be minutes.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(_JOIN_SECONDS)


@contextmanager
def resolve_executor(executor: object, workers: object) -> Iterator[Executor | None]:
    """Yield the executor to use: the caller's, a local process pool, or None for serial.

    Parameters
    ----------
    executor : concurrent.futures.Executor or None
        Used as given and left running.
    workers : int or None
        A shortcut for ``ProcessPoolExecutor(workers)``, shut down on exit.

    Raises
    ------
    InvalidArgumentError
        For both at once, or a worker count below 1.
    InvalidTypeError
        For an executor that is not a :class:`concurrent.futures.Executor`.
    """
    if executor is not None and workers is not None:
        raise InvalidArgumentError(
            f"workers: got {workers!r} together with an executor, expected one of the two"
        )
    if executor is not None:
        if not isinstance(executor, Executor):
            raise InvalidTypeError(
                f"executor: got {type(executor).__name__}, expected a concurrent.futures.Executor "
                "(a ProcessPoolExecutor, or a cluster's, such as dask's Client.get_executor())"
            )
        yield executor
        return
    if workers is None:
        yield None
        return
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise InvalidArgumentError(f"workers: got {workers!r}, expected a positive int or None")
    pool = ProcessPoolExecutor(
        max_workers=int(workers), initializer=_leave_interrupts_to_the_parent
    )
    _OWNED.add(pool)
    try:
        yield pool
    except BaseException:
        stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def check_picklable(loss: Callable[[Any], Any]) -> None:
    """Raise a clear error when ``loss`` cannot be sent to another process."""
    try:
        pickle.dumps(loss)
    except Exception as error:
        raise InvalidArgumentError(
            f"loss: got {getattr(loss, '__qualname__', type(loss).__name__)!r}, which cannot be "
            f"pickled ({type(error).__name__}: {error}); expected a picklable loss for an "
            "executor: a module-level function, a functools.partial of one or an object with "
            "__call__, not a lambda or a closure; or run without executor/workers"
        ) from error


def executor_capacity(executor: Executor) -> int:
    """Return how many tasks ``executor`` runs at once.

    A ``dask.distributed`` executor (``Client.get_executor()``) answers with the total
    threads of the cluster's workers, a process or thread pool with its workers; any
    other executor with this machine's CPU count.

    Parameters
    ----------
    executor : concurrent.futures.Executor
        The executor the tasks go to.

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with ThreadPoolExecutor(3) as pool:
    ...     executor_capacity(pool)
    3
    """
    client = getattr(executor, "_client", None)
    threads = getattr(client, "nthreads", None)
    if callable(threads):
        try:
            total = sum(int(count) for count in threads().values())
        except Exception:  # noqa: BLE001 - a cluster that cannot answer: use the fallbacks
            total = 0
        if total > 0:
            return total
    workers = getattr(executor, "_max_workers", None)
    if isinstance(workers, int) and workers > 0:
        return workers
    return os.cpu_count() or 1


def task_count(executor: Executor, count: int) -> int:
    """Return how many tasks ``count`` evaluations are cut into on ``executor``.

    :data:`_TASKS_PER_WORKER` per slot of :func:`executor_capacity`, never more than
    ``count`` and at least 1.
    """
    return max(1, min(count, _TASKS_PER_WORKER * executor_capacity(executor)))


def _evaluate_coordinates(
    evaluate: Distributable,
    theta: NDArray[np.float64],
    indices: NDArray[np.intp],
    values: NDArray[np.float64],
) -> NDArray[np.float64]:
    return evaluate.coordinates(theta.copy(), indices, values)


def _evaluate_rows(evaluate: Distributable, points: NDArray[np.float64]) -> NDArray[np.float64]:
    return evaluate.rows(points)


def _scatter(
    evaluate: Distributable,
    task: Callable[..., NDArray[np.float64]],
    shared: tuple[Any, ...],
    split: tuple[NDArray[Any], ...],
) -> NDArray[np.float64]:
    """Submit ``task(serial evaluator, *shared, *parts of split)`` per block, in order."""
    assert evaluate.executor is not None
    check_picklable(evaluate.loss)
    worker = evaluate.serial()
    count = len(split[0])
    parts = np.array_split(np.arange(count), task_count(evaluate.executor, count))
    futures = []
    try:
        for part in parts:
            if len(part):
                arguments = (array[part] for array in split)
                futures.append(evaluate.executor.submit(task, worker, *shared, *arguments))
        results = [np.asarray(future.result(), dtype=np.float64) for future in futures]
    except BaseException:
        # Ctrl-C or a failed task: nothing more of this block is wanted.
        for future in futures:
            future.cancel()
        if evaluate.executor in _OWNED:
            stop_pool(evaluate.executor)  # type: ignore[arg-type]
        raise
    return np.concatenate(results) if results else np.empty(0)


def map_coordinates(
    evaluate: Distributable,
    theta: NDArray[np.float64],
    indices: NDArray[np.intp],
    values: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Evaluate ``evaluate.coordinates(theta, indices, values)`` on its executor, in order.

    Returns
    -------
    ndarray of float64, shape (k,)
    """
    return _scatter(evaluate, _evaluate_coordinates, (theta,), (indices, values))


def map_rows(evaluate: Distributable, points: NDArray[np.float64]) -> NDArray[np.float64]:
    """Evaluate ``evaluate.rows(points)`` on its executor, in order.

    Returns
    -------
    ndarray of float64, shape (rows,)
    """
    return _scatter(evaluate, _evaluate_rows, (), (points,))
