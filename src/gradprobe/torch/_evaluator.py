"""Run a PyTorch :class:`~gradprobe.torch._problem.Problem` through gradprobe's engine.

The analytic gradient comes from one ``torch.autograd.grad`` call per loss column;
the numerical one from :class:`Evaluator`, a :class:`~gradprobe.numdiff.batched.ThetaEvaluator`
that perturbs the checked tensors coordinate by coordinate in ``torch.vmap``
batches on their own device. :func:`check_problem` lays both out on θ and hands
them to :func:`gradprobe.check.checker.run_check`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from gradprobe._params import ParameterLayout
from gradprobe._validate import (
    check_count,
    check_sample,
    check_seed,
    check_thresholds,
    unless_interrupt,
)
from gradprobe.check.checker import choose_mode, run_check
from gradprobe.check.report import GradCheckReport
from gradprobe.errors import InvalidArgumentError, LossEvaluationError
from gradprobe.numdiff.batched import ThetaEvaluator
from gradprobe.torch._problem import Problem

__all__ = ["Evaluator", "analytic_gradients", "check_problem"]

# Memory one batch of perturbed evaluations may take (small enough to stay in cache on a CPU),
# and the most evaluations per batch.
_BATCH_BYTES = 32 * 2**20
_MAX_BATCH = 512


def analytic_gradients(problem: Problem, layout: ParameterLayout) -> list[NDArray[np.float64]]:
    """Return dθ of every loss column from ``torch.autograd.grad``, each of shape ``(size,)``."""
    leaves = {name: value.clone().requires_grad_(True) for name, value in problem.base.items()}
    losses = problem.call(leaves, "at θ while computing the analytic gradient")
    result = []
    for j in range(len(problem.columns)):
        grads: Sequence[Tensor | None] = [None] * len(leaves)
        if losses.requires_grad:
            try:
                grads = torch.autograd.grad(
                    losses[j], list(leaves.values()), retain_graph=True, allow_unused=True
                )
            except BaseException as error:  # noqa: BLE001 - whatever the user's backward raises
                raise LossEvaluationError(
                    f"backward raised {type(error).__name__}: {error}"
                ) from unless_interrupt(error)
        dtheta = np.zeros(layout.size)
        for k, grad in enumerate(grads):
            if grad is not None:
                span = slice(layout.offsets[k], layout.offsets[k + 1])
                dtheta[span] = grad.detach().to("cpu", torch.float64).numpy().ravel()
        if not np.all(np.isfinite(dtheta)):
            where = layout.coordinate_name(int(np.flatnonzero(~np.isfinite(dtheta))[0]))
            raise LossEvaluationError(
                f"backward returned a non-finite gradient at {where}, expected finite values"
            )
        result.append(dtheta)
    return result


def _block(problem: Problem, size: int) -> int:
    """Return the evaluations per batch: ``batch_size``, or what fits in about 32 MiB.

    One evaluation holds its copy of the perturbed tensor and, as a guess, activations
    worth eight times the floating inputs.
    """
    if problem.batch_size is not None:
        return max(2, check_count(problem.batch_size, "batch_size"))
    return int(np.clip(_BATCH_BYTES // (8 * (size + 8 * problem.inputs)), 2, _MAX_BATCH))


class Evaluator(ThetaEvaluator):
    """The loss on θ for gradprobe's engine, evaluated by PyTorch.

    θ holds one copy of the checked tensors per loss column (one column unless
    outputs are checked one by one), and the loss is the sum of the columns, column
    ``j`` evaluated on copy ``j``: its derivative by a value of copy ``j`` is column
    ``j``'s. Coordinates are perturbed tensor by tensor in ``torch.vmap`` batches.
    """

    def __init__(self, problem: Problem, layout: ParameterLayout) -> None:
        super().__init__(self._rows, layout, batched=True)
        self.problem = problem
        self.names = tuple(problem.base)
        self.device = next(iter(problem.base.values())).device

    def _tensors(self, arrays: Sequence[NDArray[Any]], column: int) -> dict[str, Tensor]:
        """Return the tensors of copy ``column`` from arrays in θ's order."""
        copy_ = arrays[column * len(self.names) : (column + 1) * len(self.names)]
        return {
            name: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float64, device=self.device)
            for name, a in zip(self.names, copy_, strict=True)
        }

    def _columns(self, arrays: Sequence[NDArray[Any]]) -> NDArray[np.float64]:
        """Return column ``j`` of the losses at copy ``j``, for every ``j``."""
        with torch.no_grad():
            return np.array(
                [
                    float(self.problem.call(self._tensors(arrays, j), "at θ")[j])
                    for j in range(len(self.problem.columns))
                ]
            )

    def _rows(self, params: Sequence[NDArray[Any]]) -> NDArray[np.float64]:
        """Evaluate the batched loss: arrays with a leading axis of rows -> one value per row."""
        rows = len(params[0])
        return np.array([self._columns([a[r] for a in params]).sum() for r in range(rows)])

    def coordinates(
        self, theta: NDArray[np.float64], indices: NDArray[np.intp], values: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Return the loss at θ with ``theta[indices[r]] = values[r]``, for each ``r``."""
        self.evaluations += len(indices)
        columns = len(self.problem.columns)
        at_theta = self._columns(self.layout.unflatten(theta)) if columns > 1 else None
        out = np.empty(len(indices))
        owner = np.searchsorted(self.layout.offsets, indices, side="right") - 1
        for k in np.unique(owner).tolist():
            column, tensor = divmod(k, len(self.names))
            name = self.names[tensor]
            positions = np.flatnonzero(owner == k)
            segment = torch.as_tensor(theta[self.layout.span(self.layout.names[k])])
            base = segment.to(self.device).reshape(1, -1)
            block = _block(self.problem, base.shape[1])
            for start in range(0, len(positions), block):
                chosen = positions[start : start + block]
                perturbed = base.repeat(len(chosen), 1)
                local = torch.as_tensor(indices[chosen] - self.layout.offsets[k])
                perturbed[torch.arange(len(chosen)), local.to(self.device)] = torch.as_tensor(
                    values[chosen], dtype=torch.float64, device=self.device
                )
                shape = (len(chosen), *self.layout.shapes[k])
                losses = self.problem.batch(name, perturbed.reshape(shape))[:, column]
                if at_theta is None:
                    out[chosen] = losses
                    continue
                # The other columns at θ, added in the same order as in _rows.
                for row, value in zip(chosen.tolist(), losses.tolist(), strict=True):
                    out[row] = np.concatenate(
                        [at_theta[:column], [value], at_theta[column + 1 :]]
                    ).sum()
        return out


def check_problem(
    problem: Problem,
    eps: float | None,
    thresholds: tuple[float, float],
    sample: int | None,
    seed: int | np.random.Generator,
    mode: str,
    started: float,
) -> GradCheckReport:
    """Differentiate ``problem`` both ways with gradprobe's engine and build the report."""
    thresholds = check_thresholds(thresholds)
    count = check_sample(sample)
    seed = check_seed(seed)
    names = tuple(problem.base)
    shapes = tuple(tuple(int(s) for s in problem.base[name].shape) for name in names)
    sizes = [int(np.prod(shape)) for shape in shapes] * len(problem.columns)
    offsets = tuple(int(o) for o in np.cumsum([0, *sizes]))
    labels = names
    if len(problem.columns) > 1:
        labels = tuple(f"{column}/{name}" for column in problem.columns for name in names)
    # kind "list": names are PyTorch's, never matched as dict keys ("b" and "db" may both exist).
    copies = len(problem.columns)
    layout = ParameterLayout("list", labels, shapes * copies, problem.dtypes * copies, offsets)
    if layout.size == 0:
        raise InvalidArgumentError(
            f"inputs: the tensors chosen ({list(names)}) are all empty, expected values to check"
        )
    chosen = choose_mode(mode, layout.size, count)
    single = ParameterLayout("list", names, shapes, problem.dtypes, offsets[: len(names) + 1])
    copy_ = np.concatenate([problem.base[n].detach().cpu().numpy().ravel() for n in names])
    analytic = np.concatenate(analytic_gradients(problem, single))
    return run_check(
        Evaluator(problem, layout),
        np.tile(copy_, len(problem.columns)),
        layout.unflatten(analytic),
        eps=eps,
        method="central",
        thresholds=thresholds,
        sample=count,
        seed=seed,
        mode=chosen,
        notes=problem.notes,
        started=started,
    )
