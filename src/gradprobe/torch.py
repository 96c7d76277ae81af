"""Gradient checks for PyTorch: module parameters, custom ``autograd.Function``s, any tensor code.

``torch.autograd.gradcheck`` answers pass or fail and, on failure, prints two
Jacobians without an index; it needs float64 inputs made by hand, fails at kinks
and evaluates one perturbation at a time. This module gives PyTorch code
gradprobe's report instead: the seed's relative difference per named tensor,
the worst entries by PyTorch name (``layer1.weight[3, 7]``), a diagnosis of each
failing tensor and kinks told apart from wrong gradients.

How a check runs:

* every checked tensor is copied to float64 on its own device; the user's module
  and tensors are never modified (a module is switched to eval mode for the check,
  and its training flags, parameters and buffers are restored afterwards);
* the analytic gradient comes from one ``torch.autograd.grad`` call;
* the numerical one from central differences, the perturbed copies of one tensor
  evaluated in batches with ``torch.func.functional_call`` and ``torch.vmap`` (the
  layers before the perturbed tensor run once per batch), or one at a time when
  the code cannot be vectorized (an ``autograd.Function`` without a vmap rule,
  data-dependent control flow);
* the rest is gradprobe's: the noise floor, kink refinement and the report of
  :func:`gradprobe.gradcheck.assemble_report`.

Cost: ``2N`` forward evaluations for ``N`` checked values, in batches; ``sample=K``
checks ``K`` values of each tensor; ``mode="localize"`` finds the wrong values of a
large module by group testing (:mod:`gradprobe.localize`) in far fewer.
"""

from __future__ import annotations

import copy
import fnmatch
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.func import functional_call

from gradprobe._params import ParameterLayout
from gradprobe.batched import ThetaEvaluator
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, LossEvaluationError
from gradprobe.gradcheck import (
    DEFAULT_THRESHOLDS,
    GradCheckReport,
    _check_sample,
    _check_thresholds,
    choose_mode,
    run_check,
)

__all__ = ["check_function", "check_module", "check_namespace"]

Patterns = str | Sequence[str] | None
# Memory one batch of perturbed evaluations may take (small enough to stay in cache on a CPU),
# and the most evaluations per batch.
_BATCH_BYTES = 32 * 2**20
_MAX_BATCH = 512
_NUMPY_DTYPES: dict[torch.dtype, np.dtype[Any]] = {
    torch.float16: np.dtype(np.float16),
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
}


@dataclass
class _Problem:
    """What a check differentiates: float64 tensors and a function of them.

    ``values(overrides)`` returns the losses, shape ``(columns,)``, with the checked
    tensors named in ``overrides`` replaced (the others at their base values).
    """

    base: dict[str, Tensor]
    dtypes: tuple[np.dtype[Any], ...]
    columns: tuple[str, ...]
    values: Callable[[Mapping[str, Tensor]], Tensor]
    notes: list[str] = field(default_factory=list)
    vectorize: bool = True
    batch_size: int | None = None
    inputs: int = 0

    def call(self, overrides: Mapping[str, Tensor], where: str) -> Tensor:
        """Evaluate the losses, turning any failure into a LossEvaluationError."""
        try:
            result = self.values(overrides)
        except LossEvaluationError:
            raise
        except Exception as error:
            raise LossEvaluationError(
                f"the loss raised {type(error).__name__} {where}: {error}"
            ) from error
        return result

    def batch(self, name: str, perturbed: Tensor) -> NDArray[np.float64]:
        """Evaluate the losses for each of a batch of values of tensor ``name``.

        Returns an array of shape ``(batch, columns)``; tries ``torch.vmap`` first and
        falls back, for good, to one evaluation at a time when it fails.
        """
        with torch.no_grad():
            if self.vectorize:
                try:
                    result = torch.vmap(lambda value: self.values({name: value}))(perturbed)
                    return _finite(result, name)
                except LossEvaluationError:
                    raise
                except Exception as error:  # noqa: BLE001 - any failure means "not vmappable"
                    self.vectorize = False
                    reason = f"{type(error).__name__}: {str(error).strip().split('. ')[0][:160]}"
                    if "autograd.Function" in reason:
                        reason = "an autograd.Function in it has no vmap rule; give it "
                        reason += "setup_context and generate_vmap_rule = True"
                    self.notes.append(
                        f"torch.vmap could not batch the evaluations ({reason}); they ran one "
                        "at a time"
                    )
            rows = [
                self.call({name: value}, f"with a value of {name} moved")
                for value in perturbed.unbind(0)
            ]
            return _finite(torch.stack(rows), name)


def _finite(result: Tensor, name: str) -> NDArray[np.float64]:
    values = result.detach().to("cpu", torch.float64).numpy()
    if not np.all(np.isfinite(values)):
        raise LossEvaluationError(
            f"the loss returned a non-finite value with a value of {name} moved, expected "
            "finite values near the point of the check; check at other parameter values"
        )
    return values.reshape(len(values), -1)


def _as_patterns(patterns: Patterns, argument: str) -> tuple[str, ...]:
    if patterns is None:
        return ()
    if isinstance(patterns, str):
        return (patterns,)
    if isinstance(patterns, Sequence) and all(isinstance(p, str) for p in patterns):
        return tuple(patterns)
    raise InvalidTypeError(
        f"{argument}: got {type(patterns).__name__}, expected a glob pattern such as "
        "'layer1.*' or a list of them"
    )


def _select(names: Sequence[str], include: Patterns, exclude: Patterns) -> list[str]:
    """Return the names matched by ``include`` (all when None) and not by ``exclude``."""
    chosen = list(names)
    for argument, patterns, keep in (("include", include, True), ("exclude", exclude, False)):
        for pattern in _as_patterns(patterns, argument):
            if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
                raise InvalidArgumentError(
                    f"{argument}: pattern {pattern!r} matches no tensor, expected one of "
                    f"{list(names)} (glob patterns such as 'layer1.*')"
                )
        if patterns is not None:
            chosen = [
                name
                for name in chosen
                if any(fnmatch.fnmatchcase(name, p) for p in _as_patterns(patterns, argument))
                == keep
            ]
    if not chosen:
        raise InvalidArgumentError(
            f"include/exclude: got {include!r}/{exclude!r}, which leave no tensor to check; "
            f"expected at least one of {list(names)}"
        )
    return chosen


def _float64(value: Any) -> Any:
    """Return a float64 copy of a floating tensor on its device, anything else as it is."""
    if isinstance(value, Tensor) and value.is_floating_point():
        return value.detach().to(torch.float64, copy=True)
    return value


def _numpy_dtype(tensor: Tensor, notes: list[str]) -> np.dtype[Any]:
    if tensor.dtype not in _NUMPY_DTYPES:
        notes.append(f"{tensor.dtype} tensors promoted to float64 for the check")
        return np.dtype(np.float32)
    return _NUMPY_DTYPES[tensor.dtype]


def _numel(values: Sequence[Any]) -> int:
    return sum(v.numel() for v in values if isinstance(v, Tensor) and v.is_floating_point())


def _as_inputs(inputs: Any, argument: str) -> tuple[Any, ...]:
    if isinstance(inputs, Tensor):
        return (inputs,)
    if isinstance(inputs, (list, tuple)):
        return tuple(inputs)
    raise InvalidTypeError(
        f"{argument}: got {type(inputs).__name__}, expected a tensor or a tuple of tensors"
    )


def _scalar_loss(loss: Any, argument: str) -> Tensor:
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        got = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
        raise LossEvaluationError(
            f"{argument} returned {got}, expected a scalar tensor; reduce it with .sum() or .mean()"
        )
    return loss.reshape(1)


def _sum_outputs(output: Any) -> Tensor:
    """Sum every value of every floating output tensor: the default loss."""
    tensors = [t for t in _output_tensors(output) if t.is_floating_point()]
    if not tensors:
        raise LossEvaluationError(
            f"the module returned {type(output).__name__}, expected a floating tensor or a "
            "tuple of them; pass loss_fn to reduce it to a scalar"
        )
    return torch.stack([t.sum() for t in tensors]).sum()


def _output_tensors(output: Any) -> list[Tensor]:
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in _output_tensors(item)]
    if isinstance(output, Mapping):
        return [t for item in output.values() for t in _output_tensors(item)]
    return []


@contextmanager
def _borrowed(module: nn.Module, notes: list[str]) -> Iterator[None]:
    """Switch ``module`` to eval mode; restore its flags, parameters and buffers on exit."""
    flags = [(sub, sub.training) for sub in module.modules()]
    saved = [
        (tensor, tensor.detach().clone()) for tensor in (*module.parameters(), *module.buffers())
    ]
    if any(flag for _, flag in flags):
        notes.append(
            "checked in eval mode (dropout off, batch norm on its running statistics); the "
            "module's training flags, parameters and buffers were restored afterwards"
        )
    module.eval()
    try:
        yield
    finally:
        for sub, flag in flags:
            sub.training = flag
        with torch.no_grad():
            for tensor, value in saved:
                # Copy back only what changed: an in-place copy bumps the version counter.
                if not torch.equal(tensor, value):
                    tensor.copy_(value)


def check_module(
    module: nn.Module,
    inputs: Tensor | Sequence[Any],
    loss_fn: Callable[..., Tensor] | None = None,
    targets: Any = None,
    *,
    include: Patterns = None,
    exclude: Patterns = None,
    check_inputs: bool = False,
    eps: float | None = None,
    thresholds: tuple[float, float] = DEFAULT_THRESHOLDS,
    sample: int | None = None,
    seed: int | np.random.Generator = 0,
    mode: str = "auto",
    batch_size: int | None = None,
) -> GradCheckReport:
    """Check the gradients of a module's parameters (and optionally its inputs).

    The loss is ``loss_fn(module(*inputs), targets)`` (``loss_fn(module(*inputs))``
    without targets, the sum of the output without ``loss_fn``), computed in float64.

    Parameters
    ----------
    module : torch.nn.Module
        The model; it is switched to eval mode for the check (dropout off, batch norm
        on its running statistics) and left exactly as it was.
    inputs : Tensor or sequence
        The positional arguments of ``module``, such as ``X`` of shape ``(m, n_features)``.
    loss_fn : callable, optional
        Reduces the output to a scalar tensor, such as ``torch.nn.functional.cross_entropy``.
    targets : Tensor or object, optional
        Passed to ``loss_fn`` after the output (floating tensors in float64).
    include, exclude : str or sequence of str, optional
        Glob patterns on the names of ``named_parameters()`` (and ``input0, input1, …``)
        choosing what is checked, such as ``"layer1.*"`` or ``"*.bias"``. By default
        every parameter with ``requires_grad``.
    check_inputs : bool, default=False
        Also check the gradients of the floating inputs, named ``input0, input1, …``.
    eps : float, optional
        The step; by default ``∛u·max(1, |θᵢ|)`` for each value.
    thresholds : tuple of float, default=(1e-6, 1e-4)
        The verdict bands, as for :func:`gradprobe.check_gradients`.
    sample : int, optional
        Check this many seeded random values of each tensor; by default all of them.
    seed : int or numpy.random.Generator, default=0
        Seeds the choice of sampled values.
    mode : {"auto", "full", "localize"}, default="auto"
        ``"full"`` differentiates every value (or the sample), 2 evaluations each;
        ``"localize"`` finds the wrong values by group testing in about ``4·log2(N)``
        evaluations per wrong value (see :mod:`gradprobe.localize`); ``"auto"`` is
        ``"localize"`` for more than 100,000 values unless ``sample`` is given.
    batch_size : int, optional
        Perturbed evaluations per ``torch.vmap`` call; by default sized to about 32 MiB.

    Returns
    -------
    GradCheckReport
        As :func:`gradprobe.check_gradients` returns it, with names such as
        ``"layer1.weight[3, 7]"``.

    Raises
    ------
    NondeterministicLossError
        When the loss differs between evaluations at the same parameters.
    LossEvaluationError
        When the module or ``loss_fn`` raises or returns something that is not a scalar.
    InvalidArgumentError, InvalidTypeError
        For bad arguments; the message names the argument and what was expected.

    Examples
    --------
    >>> import torch
    >>> layer = torch.nn.Linear(3, 2)
    >>> report = check_module(layer, torch.randn(4, 3), sample=3)
    >>> report.verdict, [row.name for row in report.parameters]
    ('ok', ['weight', 'bias'])
    """
    started = time.perf_counter()
    if not isinstance(module, nn.Module):
        raise InvalidTypeError(
            f"module: got {type(module).__name__}, expected a torch.nn.Module; for a plain "
            "function of tensors use gradprobe.torch.check_function"
        )
    arguments = _as_inputs(inputs, "inputs")
    notes: list[str] = []
    parameters = dict(module.named_parameters())
    state = {
        **{name: _float64(value) for name, value in parameters.items()},
        **{name: _float64(value) for name, value in module.named_buffers()},
    }
    candidates = [name for name, value in parameters.items() if value.requires_grad]
    originals: dict[str, Tensor] = dict(parameters)
    if check_inputs:
        for i, value in enumerate(arguments):
            if isinstance(value, Tensor) and value.is_floating_point():
                candidates.append(f"input{i}")
                originals[f"input{i}"] = value
    if not candidates:
        raise InvalidArgumentError(
            "module: got a module without trainable parameters, expected at least one "
            "parameter with requires_grad (or pass check_inputs=True)"
        )
    names = _select(candidates, include, exclude)
    base_inputs = tuple(_float64(value) for value in arguments)
    base_targets = _float64(targets)
    loss = loss_fn
    if isinstance(loss_fn, nn.Module):
        # A float64 copy of a loss module's class weights; the user's module stays as it is.
        loss = copy.deepcopy(loss_fn).to(torch.float64) if _low_precision(loss_fn) else loss_fn
    base = {name: state[name] if name in state else base_inputs[int(name[5:])] for name in names}

    def values(overrides: Mapping[str, Tensor]) -> Tensor:
        tensors = {**state, **{n: v for n, v in overrides.items() if n in state}}
        args = tuple(overrides.get(f"input{i}", value) for i, value in enumerate(base_inputs))
        output = functional_call(module, tensors, args)
        if loss is None:
            return _sum_outputs(output).reshape(1)
        if targets is None:
            return _scalar_loss(loss(output), "loss_fn")
        return _scalar_loss(loss(output, base_targets), "loss_fn")

    problem = _Problem(
        base=base,
        dtypes=tuple(_numpy_dtype(originals[name], notes) for name in names),
        columns=("loss",),
        values=values,
        notes=notes,
        batch_size=batch_size,
        inputs=_numel(base_inputs),
    )
    with _borrowed(module, notes):
        return _check(problem, eps, thresholds, sample, seed, mode, started)


def _low_precision(module: nn.Module) -> bool:
    """Tell whether a loss module holds lower-precision tensors (a class weight, say)."""
    tensors = (*module.parameters(), *module.buffers())
    return any(t.is_floating_point() and t.dtype != torch.float64 for t in tensors)


def check_function(
    fn: Callable[..., Any],
    *inputs: Any,
    include: Patterns = None,
    exclude: Patterns = None,
    per_output: bool = False,
    eps: float | None = None,
    thresholds: tuple[float, float] = DEFAULT_THRESHOLDS,
    sample: int | None = None,
    seed: int | np.random.Generator = 0,
    mode: str = "auto",
    batch_size: int | None = None,
) -> GradCheckReport:
    """Check the gradients of any function of tensors, such as ``MyFunction.apply``.

    A non-scalar output ``y`` is reduced to the scalar ``Σ v·y`` with a fixed random
    ``v`` (seeded by ``seed``), whose gradient is the vector-Jacobian product that
    backward computes; a tuple of outputs is reduced to the sum of such terms.

    Parameters
    ----------
    fn : callable
        ``fn(*inputs)`` returning a tensor or a tuple of tensors.
    *inputs : Tensor or object
        The arguments, named ``input0, input1, …`` in order. The floating tensors with
        ``requires_grad`` are checked (all floating tensors when none requires grad);
        each is copied to float64, so the caller's tensors are never modified.
    include, exclude : str or sequence of str, optional
        Glob patterns on those names choosing what is checked.
    per_output : bool, default=False
        Check each output tensor on its own; the report then names entries
        ``"output1/input0[2, 3]"`` (output 1 differentiated by ``input0[2, 3]``).
    eps, thresholds, sample, seed, mode, batch_size
        As for :func:`check_module`; ``seed`` also seeds the projection.

    Returns
    -------
    GradCheckReport

    Raises
    ------
    NondeterministicLossError, LossEvaluationError, InvalidArgumentError, InvalidTypeError
        As for :func:`check_module`.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    >>> check_function(torch.sin, x).verdict
    'ok'
    """
    started = time.perf_counter()
    if not callable(fn):
        raise InvalidTypeError(f"fn: got {type(fn).__name__}, expected a callable")
    floating = {
        f"input{i}": value
        for i, value in enumerate(inputs)
        if isinstance(value, Tensor) and value.is_floating_point()
    }
    if not floating:
        raise InvalidArgumentError(
            f"inputs: got {[type(v).__name__ for v in inputs]}, expected at least one "
            "floating-point tensor to differentiate by"
        )
    wanted = [name for name, value in floating.items() if value.requires_grad] or list(floating)
    names = _select(wanted, include, exclude)
    base_inputs = tuple(_float64(value) for value in inputs)
    base = {name: base_inputs[int(name[5:])] for name in names}
    notes: list[str] = []
    try:
        with torch.no_grad():
            first = _output_tensors(fn(*base_inputs))
    except Exception as error:
        raise LossEvaluationError(
            f"fn raised {type(error).__name__} at the inputs: {error}"
        ) from error
    outputs = [i for i, t in enumerate(first) if t.is_floating_point()]
    if not outputs:
        raise LossEvaluationError(
            "fn returned no floating-point tensor, expected a tensor or a tuple of tensors"
        )
    rng = np.random.default_rng(seed)
    projections = {
        i: torch.ones((), dtype=torch.float64, device=first[i].device)
        if first[i].dim() == 0
        else torch.as_tensor(rng.standard_normal(tuple(first[i].shape)), device=first[i].device)
        for i in outputs
    }
    if any(first[i].dim() > 0 for i in outputs):
        notes.append(
            "non-scalar outputs were reduced to Σ v·output with a fixed random v "
            f"(seed {seed if isinstance(seed, int) else 'from the generator'})"
        )

    def values(overrides: Mapping[str, Tensor]) -> Tensor:
        args = tuple(overrides.get(f"input{i}", value) for i, value in enumerate(base_inputs))
        results = _output_tensors(fn(*args))
        terms = [(projections[i] * results[i].to(torch.float64)).sum() for i in outputs]
        stacked = torch.stack(terms)
        return stacked if per_output else stacked.sum().reshape(1)

    problem = _Problem(
        base=base,
        dtypes=tuple(_numpy_dtype(floating[name], notes) for name in names),
        columns=tuple(f"output{i}" for i in outputs) if per_output else ("output",),
        values=values,
        notes=notes,
        batch_size=batch_size,
        inputs=_numel(base_inputs),
    )
    return _check(problem, eps, thresholds, sample, seed, mode, started)


def _analytic(problem: _Problem, layout: ParameterLayout) -> list[NDArray[np.float64]]:
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
            except Exception as error:
                raise LossEvaluationError(
                    f"backward raised {type(error).__name__}: {error}"
                ) from error
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


def _block(problem: _Problem, size: int) -> int:
    """Return the evaluations per batch: ``batch_size``, or what fits in about 32 MiB.

    One evaluation holds its copy of the perturbed tensor and, as a guess, activations
    worth eight times the floating inputs.
    """
    if problem.batch_size is not None:
        if isinstance(problem.batch_size, bool) or not isinstance(problem.batch_size, int):
            raise InvalidTypeError(
                f"batch_size: got {type(problem.batch_size).__name__}, expected a positive int"
            )
        if problem.batch_size < 1:
            raise InvalidArgumentError(f"batch_size: got {problem.batch_size}, expected >= 1")
        return max(2, problem.batch_size)
    return int(np.clip(_BATCH_BYTES // (8 * (size + 8 * problem.inputs)), 2, _MAX_BATCH))


class _Evaluator(ThetaEvaluator):
    """The loss on θ for gradprobe's engine, evaluated by PyTorch.

    θ holds one copy of the checked tensors per loss column (one column unless
    outputs are checked one by one), and the loss is the sum of the columns, column
    ``j`` evaluated on copy ``j``: its derivative by a value of copy ``j`` is column
    ``j``'s. Coordinates are perturbed tensor by tensor in ``torch.vmap`` batches.
    """

    def __init__(self, problem: _Problem, layout: ParameterLayout) -> None:
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


def _check(
    problem: _Problem,
    eps: float | None,
    thresholds: tuple[float, float],
    sample: int | None,
    seed: int | np.random.Generator,
    mode: str,
    started: float,
) -> GradCheckReport:
    """Differentiate ``problem`` both ways with gradprobe's engine and build the report."""
    thresholds = _check_thresholds(thresholds)
    count = _check_sample(sample)
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
    analytic = np.concatenate(_analytic(problem, single))
    return run_check(
        _Evaluator(problem, layout),
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


def check_namespace(namespace: Mapping[str, Any], **options: Any) -> GradCheckReport:
    """Check the module a user's file defines, for ``gradprobe check FILE.py``.

    Parameters
    ----------
    namespace : mapping
        The file's globals: ``module`` (a ``torch.nn.Module``) and ``inputs``, optionally
        ``loss_fn`` and ``targets``.
    **options
        Passed to :func:`check_module` (``eps``, ``sample``, ``thresholds``, …); a
        ``method`` other than ``"central"`` is refused.

    Returns
    -------
    GradCheckReport

    Raises
    ------
    InvalidArgumentError
        When ``module`` or ``inputs`` is missing, or for another ``method``.
    """
    method = options.pop("method", "central")
    if method != "central":
        raise InvalidArgumentError(
            f"method: got {method!r}, expected 'central', the formula gradprobe.torch uses "
            "(it also tells kinks from wrong gradients)"
        )
    missing = [name for name in ("module", "inputs") if name not in namespace]
    if missing:
        raise InvalidArgumentError(
            f"the file defines no {' and no '.join(missing)}, expected module = a "
            "torch.nn.Module and inputs = a tensor or tuple of tensors (optionally loss_fn "
            "and targets)"
        )
    return check_module(
        namespace["module"],
        namespace["inputs"],
        namespace.get("loss_fn"),
        namespace.get("targets"),
        **options,
    )
