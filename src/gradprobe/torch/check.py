"""Gradient checks for PyTorch: a module's parameters, any function of tensors.

:func:`check_module` and :func:`check_function` copy the checked tensors to float64
on their own device, describe the loss as a :class:`~gradprobe.torch._problem.Problem`
and run it through gradprobe's engine (:mod:`gradprobe.torch._evaluator`); the
caller's module and tensors are left exactly as they were. Both take the options of
:class:`~gradprobe.torch._options.CheckOptions`, documented and validated there once.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from gradprobe.check.report import GradCheckReport
from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.torch._evaluator import check_problem
from gradprobe.torch._function import function_problem
from gradprobe.torch._graph import graph_for
from gradprobe.torch._mlp import replica_evaluator, replica_for
from gradprobe.torch._namespace import recognize
from gradprobe.torch._options import CheckOptions, settings, threads
from gradprobe.torch._problem import (
    Argument,
    Patterns,
    Problem,
    as_inputs,
    numel,
    numpy_dtype,
    prepare_arguments,
    scalar_loss,
    select,
    sum_outputs,
)
from gradprobe.torch._state import kept
from gradprobe.torch._trace import attention_slow_path

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["check_function", "check_module", "check_namespace"]


@contextmanager
def _borrowed(module: nn.Module, notes: list[str], train_mode: bool) -> Iterator[None]:
    """Switch ``module`` to eval (or train) mode; restore its flags, parameters and buffers."""
    training = any(sub.training for sub in module.modules())
    # The tensor objects themselves too: what is put back is what was there.
    owned = [(sub, dict(sub._parameters), dict(sub._buffers)) for sub in module.modules()]  # noqa: SLF001
    if train_mode:
        notes.append(
            "checked in training mode: layers that use batch statistics (batch norm) make each "
            "example's loss depend on the whole batch, so the gradient checked is that of this "
            "batch's loss; the module's flags, parameters and buffers were restored afterwards"
        )
    elif training:
        notes.append(
            "checked in eval mode (dropout off, batch norm on its running statistics); the "
            "module's training flags, parameters and buffers were restored afterwards"
        )
    with kept(module):
        module.train(train_mode)
        try:
            yield
        finally:
            for sub, parameters, buffers in owned:
                sub._parameters.update(parameters)  # noqa: SLF001
                sub._buffers.update(buffers)  # noqa: SLF001


def _module_inputs(inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Split a module's inputs into positional and keyword arguments."""
    if isinstance(inputs, Mapping):
        if not all(isinstance(key, str) for key in inputs):
            raise InvalidTypeError(
                f"inputs: got a mapping with keys {list(inputs)!r}, expected str keys naming "
                "the module's keyword arguments"
            )
        return (), dict(inputs)
    return as_inputs(inputs, "inputs"), {}


def check_module(
    module: nn.Module,
    inputs: Tensor | Sequence[Any] | Mapping[str, Any],
    loss_fn: Callable[..., Tensor] | None = None,
    targets: Any = None,
    *,
    include: Patterns = None,
    exclude: Patterns = None,
    check_inputs: bool = False,
    train_mode: bool = False,
    **options: Unpack[CheckOptions],
) -> GradCheckReport:
    """Check the gradients of a module's parameters (and optionally its inputs).

    The loss is ``loss_fn(module(*inputs), targets)`` (``loss_fn(module(*inputs))``
    without targets, the sum of the output without ``loss_fn``), computed in float64.
    Where ``torch.fx`` can trace the module (an ``nn.Sequential`` always), a perturbed
    tensor's evaluations reuse everything upstream of it and run only the layers after
    it, batched; a Linear or Conv weight moves one column or channel of the layer's
    output (see :mod:`gradprobe.torch._graph`).

    Parameters
    ----------
    module : torch.nn.Module
        The model; switched to eval mode for the check (dropout off, batch norm on its
        running statistics) unless ``train_mode``, and left exactly as it was.
    inputs : Tensor, sequence or mapping
        The module's arguments: a tensor such as ``X`` of shape ``(m, n_features)``, a
        tuple or list of positional arguments, or a dict of keyword arguments.
    loss_fn : callable, optional
        Reduces the output to a scalar tensor, such as ``torch.nn.functional.cross_entropy``.
    targets : Tensor or object, optional
        Passed to ``loss_fn`` after the output (floating tensors in float64).
    include, exclude : str or sequence of str, optional
        Glob patterns on the names of ``named_parameters()`` (and the inputs' names)
        choosing what is checked, such as ``"layer1.*"`` or ``"*.bias"``. By default
        every parameter with ``requires_grad``.
    check_inputs : bool, default=False
        Also check the gradients of the floating inputs, named ``input0, input1, …``
        (keyword inputs by their keys).
    train_mode : bool, default=False
        Check in training mode (for a layer that only exists with batch statistics);
        the report states that the loss then depends on the whole batch. Dropout must
        be off (``p=0``): a random loss is refused.
    **options
        ``eps``, ``thresholds``, ``sample``, ``seed``, ``mode``, ``batch_size``,
        ``nondet_tol``, ``workers``: see :class:`~gradprobe.torch._options.CheckOptions`.

    Returns
    -------
    GradCheckReport
        As :func:`gradprobe.check_gradients` returns it, with names such as
        ``"layer1.weight[3, 7]"``.

    Raises
    ------
    NondeterministicLossError
        When the loss differs between evaluations at the same parameters, or two
        backward passes differ by more than ``nondet_tol``.
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
    config = settings(options)
    if not isinstance(module, nn.Module):
        raise InvalidTypeError(
            f"module: got {type(module).__name__}, expected a torch.nn.Module; for a plain "
            "function of tensors use gradprobe.torch.check_function"
        )
    notes: list[str] = []
    positional, keywords = _module_inputs(inputs)
    arguments = prepare_arguments(positional, keywords, notes if check_inputs else [])
    parameters = dict(module.named_parameters())
    state = {name: _copy(value) for name, value in (*parameters.items(), *module.named_buffers())}
    candidates = [name for name, value in parameters.items() if value.requires_grad]
    originals: dict[str, Tensor] = {name: parameters[name] for name in candidates}
    parts: dict[str, Argument] = {}
    if check_inputs:
        for argument in arguments:
            for part in argument.parts:
                candidates.append(part)
                parts[part] = argument
    if not candidates:
        raise InvalidArgumentError(
            "module: got a module without trainable parameters, expected at least one "
            "parameter with requires_grad (or pass check_inputs=True)"
        )
    names = select(candidates, include, exclude)
    complex_ = [name for name in names if name in parameters and parameters[name].is_complex()]
    if complex_:
        raise InvalidTypeError(
            f"module: parameter {complex_[0]} is complex, expected real parameters; exclude it "
            "(exclude=...) or check the layer with check_function, which checks a complex "
            "tensor as its real and imaginary parts"
        )
    loss = _loss_in_float64(loss_fn)
    base_targets = _copy(targets)
    base = {name: state[name] if name in state else parts[name].parts[name] for name in names}

    # Every name a shared tensor goes by, each given the same value: functional_call with
    # tie_weights=False then moves a tied weight everywhere, and (unlike the default) leaves
    # a module used twice exactly as it was.
    aliases = _aliases(module)

    def values(overrides: Mapping[str, Tensor]) -> Tensor:
        moved = {**state, **{n: v for n, v in overrides.items() if n in state}}
        tensors = {alias: moved[name] for alias, name in aliases.items()}
        args = tuple(a.rebuild(overrides) for a in arguments[: len(positional)])
        kwargs = {a.name: a.rebuild(overrides) for a in arguments[len(positional) :]}
        output = functional_call(module, tensors, args, kwargs, tie_weights=False)
        return _reduce(loss, output, targets is not None, base_targets)

    rebuilt = [a.rebuild({}) for a in arguments]
    problem = Problem(
        base=base,
        dtypes=tuple(
            parts[n].dtype(notes) if n in parts else numpy_dtype(originals[n], notes) for n in names
        ),
        columns=("loss",),
        values=values,
        notes=notes,
        batch_size=config.batch_size,
        inputs=numel(rebuilt),
        blame="module (with loss_fn, on inputs)",
    )
    # A plain Linear/activation stack takes gradprobe's MLP evaluator, anything else the graph.
    built = (
        replica_for(module, rebuilt, loss, base_targets, train_mode) if not check_inputs else None
    )

    def replica(layout: Any, theta: Any) -> Any:
        return None if built is None else replica_evaluator(problem, layout, theta, built, values)

    with threads(config.workers), _borrowed(module, notes, train_mode), attention_slow_path():
        problem.graph = graph_for(
            module,
            rebuilt[: len(positional)],
            {a.name: rebuilt[i] for i, a in enumerate(arguments) if i >= len(positional)},
            lambda output: _reduce(loss, output, targets is not None, base_targets),
            names,
            values,
            notes,
            train_mode,
        )
        return check_problem(problem, config, started, replica)


def _aliases(module: nn.Module) -> dict[str, str]:
    """Map every name of every parameter and buffer to its first name (tied ones share it)."""
    first: dict[int, str] = {}
    names = {}
    for group in (module.named_parameters, module.named_buffers):
        for name, tensor in group(remove_duplicate=False):
            names[name] = first.setdefault(id(tensor), name)
    return names


def _reduce(loss: Any, output: Any, has_targets: bool, targets: Any) -> Tensor:
    """Return the scalar loss of a module's output, shape ``(1,)``."""
    if loss is None:
        return sum_outputs(output).reshape(1)
    if not has_targets:
        return scalar_loss(loss(output), "loss_fn")
    return scalar_loss(loss(output, targets), "loss_fn")


def _copy(value: Any) -> Any:
    """Return a float64 copy of a floating tensor, a clone of another, anything else as is."""
    if isinstance(value, Tensor):
        if value.is_floating_point():
            return value.detach().to(torch.float64, copy=True)
        return value.detach().clone()
    return value


def _loss_in_float64(loss_fn: Any) -> Any:
    """Return the loss, copied to float64 where it holds lower-precision class weights."""
    if isinstance(loss_fn, nn.Module):
        tensors = (*loss_fn.parameters(), *loss_fn.buffers())
        if any(t.is_floating_point() and t.dtype != torch.float64 for t in tensors):
            return copy.deepcopy(loss_fn).to(torch.float64)
    return loss_fn


def check_function(
    fn: Callable[..., Any],
    *inputs: Any,
    kwargs: Mapping[str, Any] | None = None,
    include: Patterns = None,
    exclude: Patterns = None,
    per_output: bool = False,
    order: int = 1,
    grad_outputs: Tensor | Sequence[Tensor] | None = None,
    **options: Unpack[CheckOptions],
) -> GradCheckReport:
    """Check the gradients of any function of tensors, such as ``MyFunction.apply``.

    A non-scalar output ``y`` is reduced to the scalar ``Σ v·y`` with a fixed random
    ``v`` (seeded by ``seed``), whose gradient is the vector-Jacobian product that
    backward computes; a complex output to ``Σ v·Re y + w·Im y``; a tuple of outputs
    to the sum of such terms.

    Parameters
    ----------
    fn : callable
        ``fn(*inputs, **kwargs)`` returning a tensor or a tuple of tensors.
    *inputs : Tensor or object
        The arguments, named ``input0, input1, …``; a single tuple or list is unpacked,
        as ``torch.autograd.gradcheck`` does. The floating and complex tensors with
        ``requires_grad`` are checked (all of them when none requires grad), each as a
        float64 copy, so the caller's tensors are never modified. A complex tensor is
        checked as its real and imaginary parts (``input0.real``, ``input0.imag``), a
        sparse COO tensor by its specified values (``input0.values``).
    kwargs : mapping of str to object, optional
        Keyword arguments of ``fn``; their tensors are named by their keys.
    include, exclude : str or sequence of str, optional
        Glob patterns on those names choosing what is checked.
    per_output : bool, default=False
        Check each output tensor on its own; the report then names entries
        ``"output1/input0[2, 3]"`` (output 1 differentiated by ``input0[2, 3]``).
    order : {1, 2}, default=1
        2 checks the backward of the backward: the vector-Jacobian product
        ``autograd.grad(fn(x), x, v)`` differentiated by ``x`` and by ``v`` (named
        ``grad_output0, …``), as ``torch.autograd.gradgradcheck`` does.
    grad_outputs : Tensor or sequence of Tensor, optional
        With ``order=2``, the vectors ``v``, one per differentiable output; by default
        seeded random ones.
    **options
        ``eps``, ``thresholds``, ``sample``, ``seed``, ``mode``, ``batch_size``,
        ``nondet_tol``, ``workers``: see :class:`~gradprobe.torch._options.CheckOptions`;
        ``seed`` also seeds the projections.

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
    config = settings(options)
    positional = inputs[0] if len(inputs) == 1 and isinstance(inputs[0], (tuple, list)) else inputs
    problem = function_problem(
        fn,
        positional,
        kwargs,
        include=include,
        exclude=exclude,
        per_output=per_output,
        order=order,
        grad_outputs=grad_outputs,
        seed=config.seed,
        batch_size=config.batch_size,
    )
    with threads(config.workers):
        return check_problem(problem, config, started)


def check_namespace(
    namespace: Mapping[str, Any],
    *,
    module: str | None = None,
    loss: str | None = None,
    inputs: str | None = None,
    targets: str | None = None,
    include: str | list[str] | None = None,
    train_mode: bool = False,
    method: str = "central",
    **options: Unpack[CheckOptions],
) -> GradCheckReport:
    """Check the module a user's file defines, for ``gradprobe check FILE.py``.

    Parameters
    ----------
    namespace : mapping
        The file's globals (see :func:`~gradprobe.torch._namespace.recognize` for the names).
    module, loss, inputs, targets : str, optional
        The names to take instead of the conventional ones.
    include : str or list of str, optional
        Glob patterns on the parameters to check.
    train_mode : bool, default=False
        As for :func:`check_module`.
    method : str, default="central"
        Anything else is refused: central differences are what tell kinks from bugs.
    **options
        As for :func:`check_module`.

    Returns
    -------
    GradCheckReport
        Its first note says which names were taken.

    Raises
    ------
    InvalidArgumentError
        When a role cannot be filled, or for another ``method``.
    """
    if method != "central":
        raise InvalidArgumentError(
            f"method: got {method!r}, expected 'central', the formula gradprobe.torch uses "
            "(it also tells kinks from wrong gradients)"
        )
    found = recognize(namespace, module=module, loss=loss, inputs=inputs, targets=targets)
    report = check_module(
        found.module,
        found.inputs,
        found.loss,
        found.targets,
        include=include,
        train_mode=train_mode,
        **options,
    )
    return replace(report, notes=(found.summary, *report.notes))
