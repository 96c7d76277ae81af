"""Run a PyTorch :class:`~gradprobe.torch._problem.Problem` through gradprobe's engine.

The analytic gradient comes from ``torch.autograd.grad`` (twice, to measure the
spread of a nondeterministic backward); the numerical one from :class:`Evaluator`,
a :class:`~gradprobe.numdiff.batched.ThetaEvaluator` that asks the problem for the
losses at many perturbations of one tensor at a time, on the tensor's own device.
:func:`check_problem` lays both out on θ and hands them to
:func:`gradprobe.check.checker.run_check`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torch.autograd import forward_ad as _forward_ad

from gradprobe._params import ParameterLayout
from gradprobe._validate import check_finite_gradient, unless_interrupt
from gradprobe.check.checker import choose_mode, run_check
from gradprobe.check.report import GradCheckReport
from gradprobe.errors import InvalidArgumentError, LossEvaluationError, NondeterministicLossError
from gradprobe.numdiff.batched import ThetaEvaluator
from gradprobe.torch._options import Settings
from gradprobe.torch._problem import Problem

__all__ = ["Evaluator", "analytic_gradients", "check_problem"]

forward_ad: Any = _forward_ad  # untyped in torch
# Backward passes that differ by more than this fraction of the largest gradient are random
# (dropout), not a nondeterministic kernel's rounding (atomic adds differ in the last digits).
_RANDOM = 1e-6


def _forward_gradients(problem: Problem, layout: ParameterLayout) -> list[NDArray[np.float64]]:
    """Return dθ of every loss column from forward-mode AD, one tangent per value."""
    result = [np.zeros(layout.size) for _ in problem.columns]
    for k, (name, base) in enumerate(problem.base.items()):
        for i in range(base.numel()):
            tangent = torch.zeros_like(base)
            tangent.view(-1)[i] = 1.0
            try:
                with forward_ad.dual_level():
                    dual = forward_ad.make_dual(base, tangent)
                    derivative = forward_ad.unpack_dual(problem.values({name: dual})).tangent
            except BaseException as error:  # noqa: BLE001 - whatever the user's code raises
                raise LossEvaluationError(
                    f"forward-mode AD raised {type(error).__name__}: {error}"
                ) from unless_interrupt(error)
            for j, column in enumerate(result):
                column[layout.offsets[k] + i] = 0.0 if derivative is None else float(derivative[j])
    return result


def _gradients(problem: Problem, layout: ParameterLayout) -> list[NDArray[np.float64]]:
    """Return dθ of every loss column from one ``torch.autograd.grad`` pass each."""
    leaves = {name: value.clone().requires_grad_(True) for name, value in problem.base.items()}
    losses = problem.call(leaves, "at θ while computing the analytic gradient", graph=True)
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
        check_finite_gradient(
            dtheta, layout.coordinate_name, f"the backward of {problem.blame}", "the inputs",
            "the function",
        )  # fmt: skip
        result.append(dtheta)
    return result


def analytic_gradients(
    problem: Problem, layout: ParameterLayout, nondet_tol: float = 0.0
) -> list[NDArray[np.float64]]:
    """Return dθ of every loss column, each of shape ``(size,)``, from two backward passes.

    The two passes must agree within ``nondet_tol`` per entry (exactly, by default, as
    ``torch.autograd.gradcheck`` requires); their mean is returned and a spread within
    the tolerance is noted in the report.

    Raises
    ------
    NondeterministicLossError
        When the passes differ by more than ``nondet_tol``.
    """
    if problem.forward_ad:
        return _forward_gradients(problem, layout)
    first, second = _gradients(problem, layout), _gradients(problem, layout)
    spreads = [np.abs(a - b) for a, b in zip(first, second, strict=True)]
    column = int(np.argmax([float(s.max(initial=0.0)) for s in spreads]))
    spread = float(spreads[column].max(initial=0.0))
    if spread > nondet_tol:
        where = layout.coordinate_name(int(np.argmax(spreads[column])))
        scale = max(float(np.max(np.abs(first[column]), initial=0.0)), np.finfo(float).tiny)
        if spread > _RANDOM * scale:
            raise NondeterministicLossError(
                f"the backward of {problem.blame}: two passes at the same parameters differ by "
                f"up to {spread:.3g} (at "
                f"{where}), expected the same gradient every time. A gradient check cannot work "
                "with a random loss: switch dropout off (net.eval()), or fix the random seed "
                "inside the loss"
            )
        raise NondeterministicLossError(
            f"backward: two identical backward passes differ by up to {spread:.3g} (at {where}), "
            f"expected at most nondet_tol={nondet_tol:g}; a nondeterministic kernel (atomic adds "
            f"on a GPU) does this: pass nondet_tol={_round_up(spread):g} or more to check within "
            "that spread, or call torch.use_deterministic_algorithms(True)"
        )
    if spread > 0:
        problem.notes.append(
            f"identical backward passes differ by up to {spread:.2g} per entry (within "
            f"nondet_tol={nondet_tol:g}); their mean is the analytic value checked"
        )
    return [(a + b) / 2 for a, b in zip(first, second, strict=True)]


def _round_up(value: float) -> float:
    """Return ``value`` rounded up to one significant digit, for a tolerance to suggest."""
    power = 10.0 ** np.floor(np.log10(value))
    return float(np.ceil(value / power) * power)


class Evaluator(ThetaEvaluator):
    """The loss on θ for gradprobe's engine, evaluated by PyTorch.

    θ holds one copy of the checked tensors per loss column (one column unless
    outputs are checked one by one), and the loss is the sum of the columns, column
    ``j`` evaluated on copy ``j``: its derivative by a value of copy ``j`` is column
    ``j``'s. Coordinates are perturbed tensor by tensor, in batches.
    """

    def __init__(self, problem: Problem, layout: ParameterLayout, theta: NDArray[Any]) -> None:
        super().__init__(self._rows, layout, batched=True)
        self.problem = problem
        self.names = tuple(problem.base)
        self.device = next(iter(problem.base.values())).device
        self.theta = theta.copy()

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

    def _combine(self, column: int, losses: NDArray[np.float64]) -> NDArray[np.float64]:
        """Add the other columns at θ to column ``column``'s losses, in the order of _rows."""
        if len(self.problem.columns) == 1:
            return losses
        at_theta = self._columns(self.layout.unflatten(self.theta))
        return np.array(
            [np.concatenate([at_theta[:column], [v], at_theta[column + 1 :]]).sum() for v in losses]
        )

    def coordinates(
        self, theta: NDArray[np.float64], indices: NDArray[np.intp], values: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Return the loss at θ with ``theta[indices[r]] = values[r]``, for each ``r``."""
        if not np.array_equal(theta, self.theta):
            return super().coordinates(theta, indices, values)
        self.evaluations += len(indices)
        out = np.empty(len(indices))
        owner = np.searchsorted(self.layout.offsets, indices, side="right") - 1
        for k in np.unique(owner).tolist():
            column, tensor = divmod(k, len(self.names))
            positions = np.flatnonzero(owner == k)
            local = torch.as_tensor(indices[positions] - self.layout.offsets[k], device=self.device)
            moved = torch.as_tensor(values[positions], dtype=torch.float64, device=self.device)
            losses = self.problem.coordinates(self.names[tensor], local, moved)[:, column]
            out[positions] = self._combine(column, losses)
        return out

    def rows(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        """Return the loss at every row of ``points``, shape ``(rows, size)`` -> ``(rows,)``.

        Rows that move one tensor only (a localization's group tests) are evaluated as one
        batch of that tensor; any others one at a time.
        """
        moved = np.flatnonzero(np.any(points != self.theta, axis=0))
        owners = np.unique(np.searchsorted(self.layout.offsets, moved, side="right") - 1)
        if len(owners) != 1 or len(points) < 2:
            return super().rows(points)
        k = int(owners[0])
        column, tensor = divmod(k, len(self.names))
        name = self.names[tensor]
        segment = points[:, self.layout.offsets[k] : self.layout.offsets[k + 1]]
        shape = (len(points), *self.problem.base[name].shape)
        perturbed = torch.as_tensor(segment, dtype=torch.float64, device=self.device)
        self.evaluations += len(points)
        losses = self.problem.batch(name, perturbed.reshape(shape))[:, column]
        return self._combine(column, losses)


def _forward_spread(problem: Problem) -> None:
    """Note how much identical forward passes differ (the engine refuses more than nondet_tol)."""
    with torch.no_grad():
        values = [float(problem.call({}, "at θ").sum()) for _ in range(3)]
    spread = max(values) - min(values)
    if spread > 0:
        problem.notes.append(
            f"identical forward passes differ by up to {spread:.2g} in the loss; the check "
            "accepts a spread up to nondet_tol and the differences carry it as noise"
        )


def check_problem(
    problem: Problem,
    options: Settings,
    started: float,
    evaluator: Callable[[ParameterLayout, NDArray[np.float64]], Evaluator | None] | None = None,
) -> GradCheckReport:
    """Differentiate ``problem`` both ways with gradprobe's engine and build the report.

    ``evaluator(layout, theta)`` may supply a faster evaluator of the same losses (None
    to decline); by default, and when it declines, :class:`Evaluator` is used.
    """
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
    chosen = choose_mode(options.mode, layout.size, options.sample)
    single = ParameterLayout("list", names, shapes, problem.dtypes, offsets[: len(names) + 1])
    copy_ = np.concatenate([problem.base[n].detach().cpu().numpy().ravel() for n in names])
    analytic = np.concatenate(analytic_gradients(problem, single, options.nondet_tol))
    if options.nondet_tol > 0:
        _forward_spread(problem)
    theta = np.tile(copy_, len(problem.columns))
    chosen_evaluator = None if evaluator is None else evaluator(layout, theta)
    return run_check(
        chosen_evaluator or Evaluator(problem, layout, theta),
        theta,
        layout.unflatten(analytic),
        eps=options.eps,
        method="central",
        thresholds=options.thresholds,
        sample=options.sample,
        seed=options.seed,
        mode=chosen,
        notes=problem.notes,
        started=started,
        nondet_tol=options.nondet_tol,
        progress=options.progress,
    )
