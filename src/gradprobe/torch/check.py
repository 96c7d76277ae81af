"""Gradient checks for PyTorch: a module's parameters, any function of tensors, a user's file.

:func:`check_module` and :func:`check_function` copy the checked tensors to float64
on their own device, describe the loss as a :class:`~gradprobe.torch._problem.Problem`
and run it through gradprobe's engine (:mod:`gradprobe.torch._evaluator`); the
caller's module and tensors are left exactly as they were.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call

from gradprobe._validate import check_seed, unless_interrupt
from gradprobe.check.comparison import DEFAULT_THRESHOLDS
from gradprobe.check.report import GradCheckReport
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, LossEvaluationError
from gradprobe.torch._evaluator import check_problem
from gradprobe.torch._problem import (
    Patterns,
    Problem,
    as_inputs,
    float64,
    numel,
    numpy_dtype,
    output_tensors,
    scalar_loss,
    select,
    sum_outputs,
)

__all__ = ["check_function", "check_module", "check_namespace"]


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
        evaluations per wrong value (see :mod:`gradprobe.check.localize`); ``"auto"`` is
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
    arguments = as_inputs(inputs, "inputs")
    notes: list[str] = []
    parameters = dict(module.named_parameters())
    state = {
        **{name: float64(value) for name, value in parameters.items()},
        **{name: float64(value) for name, value in module.named_buffers()},
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
    names = select(candidates, include, exclude)
    base_inputs = tuple(float64(value) for value in arguments)
    base_targets = float64(targets)
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
            return sum_outputs(output).reshape(1)
        if targets is None:
            return scalar_loss(loss(output), "loss_fn")
        return scalar_loss(loss(output, base_targets), "loss_fn")

    problem = Problem(
        base=base,
        dtypes=tuple(numpy_dtype(originals[name], notes) for name in names),
        columns=("loss",),
        values=values,
        notes=notes,
        batch_size=batch_size,
        inputs=numel(base_inputs),
    )
    with _borrowed(module, notes):
        return check_problem(problem, eps, thresholds, sample, seed, mode, started)


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
    names = select(wanted, include, exclude)
    base_inputs = tuple(float64(value) for value in inputs)
    base = {name: base_inputs[int(name[5:])] for name in names}
    notes: list[str] = []
    try:
        with torch.no_grad():
            first = output_tensors(fn(*base_inputs))
    except BaseException as error:  # noqa: BLE001 - whatever the user's function raises
        raise LossEvaluationError(
            f"fn raised {type(error).__name__} at the inputs: {error}"
        ) from unless_interrupt(error)
    outputs = [i for i, t in enumerate(first) if t.is_floating_point()]
    if not outputs:
        raise LossEvaluationError(
            "fn returned no floating-point tensor, expected a tensor or a tuple of tensors"
        )
    rng = np.random.default_rng(check_seed(seed))
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
        results = output_tensors(fn(*args))
        terms = [(projections[i] * results[i].to(torch.float64)).sum() for i in outputs]
        stacked = torch.stack(terms)
        return stacked if per_output else stacked.sum().reshape(1)

    problem = Problem(
        base=base,
        dtypes=tuple(numpy_dtype(floating[name], notes) for name in names),
        columns=tuple(f"output{i}" for i in outputs) if per_output else ("output",),
        values=values,
        notes=notes,
        batch_size=batch_size,
        inputs=numel(base_inputs),
    )
    return check_problem(problem, eps, thresholds, sample, seed, mode, started)


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
