"""Run a JAX :class:`~gradprobe.jax._problem.Problem` through gradprobe's engine.

:class:`Evaluator` is the loss on θ for :func:`gradprobe.check.checker.run_check`: a
:class:`~gradprobe.numdiff.batched.ThetaEvaluator` whose batched loss is ``f`` under
``jax.jit(jax.vmap(...))``. The bulk of a check, θ with one coordinate moved for each
of ``2N`` rows, is served leaf by leaf: one compiled function per array takes θ once,
the positions and the new values, and moves the coordinate on the device, so only
the perturbed array carries the batch axis and ``jax.vmap`` computes everything that
does not depend on it once per chunk. Chunks have a fixed size (the last one padded),
so each function compiles once, and later checks of the same function reuse it
(:class:`~gradprobe.jax._compiled.SharedJit`); their size keeps a chunk's arrays
within ``memory``, estimated by XLA's cost analysis of one evaluation. Code that
``jax.jit`` cannot
trace (Python control flow on values) is evaluated one row at a time instead, and
the report says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import NDArray

from gradprobe._validate import check_sample, check_seed, check_thresholds
from gradprobe.check.checker import choose_mode, run_check
from gradprobe.check.report import GradCheckReport
from gradprobe.errors import LossEvaluationError
from gradprobe.jax._compiled import SharedJit
from gradprobe.jax._problem import Problem, forward_gradient
from gradprobe.numdiff.batched import DEFAULT_MEMORY, ThetaEvaluator

__all__ = ["Evaluator", "check_problem", "chunk_rows"]

# The most perturbed evaluations in one chunk, whatever the memory allows.
_MAX_CHUNK = 1024


def chunk_rows(row_bytes: int, count: int, memory: int) -> int:
    """Return the rows of one chunk: what fits in ``memory``, at most ``count``'s next power of 2.

    Examples
    --------
    >>> chunk_rows(8 * 1000, 10_000, 2**20)
    131
    >>> chunk_rows(8, 5, 2**20)
    8
    """
    fits = max(1, memory // max(1, row_bytes))
    wanted = 1 << max(0, int(count) - 1).bit_length()
    return int(min(fits, wanted, _MAX_CHUNK))


class Evaluator(ThetaEvaluator):
    """The loss on θ for gradprobe's engine, evaluated by JAX (see the module docstring).

    Parameters
    ----------
    problem : Problem
        The function and the point.
    memory : int, default=DEFAULT_MEMORY
        Bytes one chunk of perturbed evaluations may take.
    split_above : int, default=2048
        Above this many values θ is served leaf by leaf (what does not depend on the
        moved leaf runs once per chunk); at or below it one compiled function over all
        of θ serves every evaluation, the loss at θ itself included, since for small
        problems compiling costs more than evaluating.
    """

    def __init__(
        self, problem: Problem, memory: int = DEFAULT_MEMORY, split_above: int = 2048
    ) -> None:
        self.problem = problem
        self.compiled = True
        self.split = problem.layout.size > split_above
        rows = SharedJit(jax.vmap(problem.scalar, in_axes=(0, None)))
        super().__init__(self._tree_rows(rows), problem.layout, batched=True, memory=memory)
        self.value_dtype = problem.value_dtype
        self._chunks: dict[tuple[int, int], Callable[..., Any]] = {}
        self._row_bytes: int | None = None

    def _tree_rows(self, rows: Callable[..., Any]) -> Callable[[Any], NDArray[Any]]:
        """Return the batched loss the base class calls: arguments with a batch axis -> values."""

        def loss(chosen: Any) -> NDArray[Any]:
            if self.compiled:
                try:
                    return np.asarray(rows(chosen, self.problem.dynamic))
                except jax.errors.JAXTypeError as error:  # Python control flow on values
                    self._give_up(error)
            count = len(jax.tree_util.tree_leaves(chosen)[0])
            return np.array(
                [
                    self.problem.scalar(
                        jax.tree_util.tree_map(lambda a, r=r: a[r], chosen), self.problem.dynamic
                    )
                    for r in range(count)
                ]
            )

        return loss

    def _give_up(self, error: Exception) -> None:
        self.compiled = False
        reason = str(error).strip().splitlines()[0][:160]
        self.problem.notes.append(
            f"jax.jit could not trace f ({type(error).__name__}: {reason}); the evaluations "
            "ran one at a time, uncompiled"
        )

    def _theta_loss(self, theta: Any, dynamic: Any) -> Any:
        return self.problem.scalar(self.layout.unflatten(theta), dynamic)

    def _span(self, k: int) -> tuple[int, int]:
        """Return the part of θ group ``k`` moves: leaf ``k``, or all of θ for ``k = -1``."""
        if k < 0:
            return 0, self.layout.size
        return self.layout.offsets[k], self.layout.offsets[k + 1]

    def row_bytes(self, k: int) -> int:
        """Estimate the bytes one perturbed evaluation of group ``k`` takes.

        The copy of what moves plus the bytes one evaluation of ``f`` reads and writes, by
        XLA's cost analysis of the lowered (not compiled) function: a bound on its
        temporary buffers; at least eight bytes per value of θ.
        """
        if self._row_bytes is None and self.compiled:
            temporary = 8 * self.layout.size
            try:
                lowered = jax.jit(self._theta_loss).lower(
                    jnp.asarray(self.problem.theta), self.problem.dynamic
                )
                analysis = lowered.cost_analysis() or {}
                temporary = max(temporary, int(analysis.get("bytes accessed", 0)))
            except jax.errors.JAXTypeError as error:
                self._give_up(error)
            self._row_bytes = temporary
        start, stop = self._span(k)
        return 8 * (stop - start) + (self._row_bytes or 8 * self.layout.size)

    def _chunk_function(self, k: int, rows: int) -> Callable[..., Any]:
        """Compiled ``(θ, positions, values, dynamic) -> losses``, a value of group ``k`` moved.

        For a leaf only that leaf is rebuilt from the moved values, so only it carries
        the batch axis: what does not depend on it runs once per chunk.
        """
        key = (k, rows)
        if key not in self._chunks:
            start, stop = self._span(k)

            def one(theta: Any, position: Any, value: Any, dynamic: Any) -> Any:
                segment = jax.lax.dynamic_update_slice(
                    theta[start:stop], jnp.reshape(value, (1,)), (position,)
                )
                if k < 0:
                    return self._theta_loss(segment, dynamic)
                leaves, treedef = jax.tree_util.tree_flatten(self.layout.unflatten(theta))
                leaves[k] = segment.reshape(self.layout.shapes[k])
                return self.problem.scalar(jax.tree_util.tree_unflatten(treedef, leaves), dynamic)

            self._chunks[key] = SharedJit(jax.vmap(one, in_axes=(None, 0, 0, None)))
        return self._chunks[key]

    def __call__(self, theta: NDArray[Any], index: int | None = None) -> float:
        """Return the loss at one point θ; small problems reuse the compiled chunk function."""
        if self.split or not self.compiled:
            return super().__call__(theta, index)
        # Coordinate 0 set to its own value is θ itself.
        moved = None if index is None else np.array([index])
        return float(self._evaluate(theta, np.zeros(1, dtype=np.intp), theta[:1], moved)[0])

    def coordinates(
        self, theta: NDArray[np.float64], indices: NDArray[np.intp], values: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Return the loss at θ with ``theta[indices[r]] = values[r]``, for each ``r``."""
        return self._evaluate(theta, indices, values, indices)

    def _evaluate(
        self,
        theta: NDArray[np.float64],
        indices: NDArray[np.intp],
        values: NDArray[np.float64],
        moved: NDArray[np.intp] | None,
    ) -> NDArray[np.float64]:
        self.row_bytes(-1)  # the estimate lowers f once: code jax.jit cannot trace shows here
        if not self.compiled:
            return super().coordinates(theta, indices, values)
        out = np.empty(len(indices))
        owner = np.searchsorted(self.layout.offsets, indices, side="right") - 1
        if not self.split:
            owner[:] = -1
        device_theta = jnp.asarray(theta)
        dynamic = self.problem.dynamic
        for k in np.unique(owner).tolist():
            positions = np.flatnonzero(owner == k)
            start, stop = self._span(k)
            # A fixed chunk for all of θ (one compilation); by request for a leaf.
            wanted = len(positions) if self.split else 2 * self.layout.size
            rows = chunk_rows(self.row_bytes(k), wanted, self.memory)
            function = self._chunk_function(k, rows)
            local = indices[positions] - start
            for begin in range(0, len(positions), rows):
                chosen = positions[begin : begin + rows]
                pad = rows - len(chosen)
                where = np.pad(local[begin : begin + rows], (0, pad), mode="edge")
                new = np.pad(values[chosen], (0, pad), mode="edge")
                try:
                    result = np.asarray(function(device_theta, where, new, dynamic))
                except jax.errors.JAXTypeError as error:
                    self._give_up(error)
                    return super().coordinates(theta, indices, values)
                out[chosen] = result[: len(chosen)]
        self.evaluations += len(indices)
        if not np.all(np.isfinite(out)):
            row = int(np.flatnonzero(~np.isfinite(out))[0])
            where_ = (
                "at θ"
                if moved is None
                else f"with {self.layout.coordinate_name(int(moved[row]))} moved"
            )
            raise LossEvaluationError(
                f"f returned {out[row]} {where_}, expected finite values near the point of the "
                "check; check at other arguments"
            )
        return out


def check_problem(
    problem: Problem,
    *,
    eps: float | None,
    thresholds: object,
    sample: object,
    seed: object,
    mode: object,
    memory: int,
    started: float | None = None,
    forward: bool = False,
    progress: Any = None,
    evaluator: Callable[[Problem, int], Evaluator] = Evaluator,
) -> GradCheckReport:
    """Differentiate ``problem`` both ways with gradprobe's engine and build the report.

    The analytic side is ``jax.vjp`` (reverse mode), or ``jax.jvp`` along every
    coordinate with ``forward=True``; the numerical side is that of
    ``evaluator(problem, memory)``, by default :class:`Evaluator`'s.
    """
    started = time.perf_counter() if started is None else started
    bands = check_thresholds(thresholds)
    count = check_sample(sample)
    generator = check_seed(seed)
    chosen = choose_mode(mode, problem.layout.size, count)
    numerical = evaluator(problem, memory)
    if forward:
        analytic = forward_gradient(
            problem, chunk_rows(16 * problem.layout.size, problem.layout.size, memory)
        )
    else:
        analytic = problem.gradient()
    return run_check(
        numerical,
        problem.theta.copy(),
        problem.layout.unflatten(analytic),
        eps=eps,
        method="central",
        thresholds=bands,
        sample=count,
        seed=generator,
        mode=chosen,
        notes=problem.notes,
        started=started,
        progress=progress,
    )
