"""A function of tensors as a :class:`~gradprobe.torch._problem.Problem`: its outputs projected.

:func:`~gradprobe.torch.check_function` and the ``gradcheck`` drop-ins describe the
function the same way, through :func:`function_problem`: the arguments become checked
real float64 tensors (:func:`~gradprobe.torch._problem.prepare_arguments`), a
second-order check first turns the function into its vector-Jacobian product
(:mod:`gradprobe.torch._second`), and the outputs are reduced to real scalars
``Σ v·y`` with fixed seeded ``v`` (:class:`Projection`), whose gradients are exactly
what backward computes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gradprobe._validate import unless_interrupt
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, LossEvaluationError
from gradprobe.torch._problem import (
    Patterns,
    Problem,
    numel,
    output_tensors,
    prepare_arguments,
    select,
)
from gradprobe.torch._second import second_order

__all__ = ["Projection", "function_problem"]


class Projection:
    """Reduce a function's outputs to real scalars ``Σ v·y`` with fixed seeded ``v``.

    One scalar per *column*: a real output is one column (``"output0"``), a complex one
    two, its real and imaginary parts (``"output1.real"``, ``"output1.imag"``), as
    ``torch.autograd.gradcheck`` checks them.

    Parameters
    ----------
    first : list of Tensor
        The outputs at the inputs, to size ``v``.
    outputs : sequence of int
        Which of them to keep (floating or complex ones).
    seed : int or numpy.random.Generator
        Seeds ``v``; a scalar real output gets ``v = 1``.
    """

    def __init__(
        self, first: list[Tensor], outputs: Sequence[int], seed: int | np.random.Generator
    ) -> None:
        rng = np.random.default_rng(seed)
        self.outputs = list(outputs)
        self.columns: list[tuple[str, int, str | None, Tensor]] = []
        for i in self.outputs:
            shape, device = tuple(first[i].shape), first[i].device
            parts: tuple[str | None, ...] = ("real", "imag") if first[i].is_complex() else (None,)
            for part in parts:
                weight = torch.as_tensor(rng.standard_normal(shape), device=device)
                if first[i].dim() == 0 and part is None:
                    weight = torch.ones((), dtype=torch.float64, device=device)
                name = f"output{i}" if part is None else f"output{i}.{part}"
                self.columns.append((name, i, part, weight))

    @property
    def names(self) -> list[str]:
        """The columns' names, in order."""
        return [name for name, *_ in self.columns]

    def __call__(self, results: list[Tensor]) -> list[Tensor]:
        """Return one real scalar per column."""
        terms = []
        for _, i, part, weight in self.columns:
            y = results[i]
            if tuple(y.shape) != tuple(weight.shape):
                raise LossEvaluationError(
                    f"fn returned output{i} of shape {tuple(y.shape)} at perturbed inputs, "
                    f"expected {tuple(weight.shape)}: fn must return outputs with the same "
                    "shape when inputs are perturbed"
                )
            if part is not None:
                wide = y.to(torch.complex128)
                y = wide.real if part == "real" else wide.imag
            terms.append((weight * y.to(torch.float64)).sum())
        return terms


def _keywords(kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping) or not all(isinstance(key, str) for key in kwargs):
        raise InvalidTypeError(
            f"kwargs: got {type(kwargs).__name__}, expected a dict of keyword arguments of fn"
        )
    return dict(kwargs)


def _first_outputs(
    call: Callable[[Mapping[str, Tensor]], list[Tensor]],
    base: Mapping[str, Tensor],
    grad_mode: bool,
    notes: list[str],
) -> tuple[list[Tensor], bool]:
    """Call ``fn`` at the inputs: without autograd if it can, else with it (hooks need it).

    With autograd, the checked tensors are leaves that require grad, as they are in every
    later evaluation of a ``grad_mode`` problem.
    """
    if not grad_mode:
        try:
            with torch.no_grad():
                return call({}), False
        except BaseException as error:  # noqa: BLE001 - retried with autograd on, it may need it
            unless_interrupt(error)
    try:
        leaves = {name: value.detach().requires_grad_(True) for name, value in base.items()}
        with torch.enable_grad():
            first = [t.detach() for t in call(leaves)]
    except BaseException as error:  # noqa: BLE001 - whatever the user's code raises
        raise LossEvaluationError(
            f"fn raised {type(error).__name__} at the inputs: {error}"
        ) from unless_interrupt(error)
    if not grad_mode:
        notes.append(
            "fn needs autograd on (it registers hooks or calls autograd itself): it was "
            "evaluated with grad enabled, one value at a time"
        )
    return first, True


def function_problem(
    fn: Callable[..., Any],
    positional: Sequence[Any],
    kwargs: Mapping[str, Any] | None,
    *,
    include: Patterns = None,
    exclude: Patterns = None,
    per_output: bool = False,
    order: int = 1,
    grad_outputs: Tensor | Sequence[Tensor] | None = None,
    seed: int | np.random.Generator = 0,
    batch_size: int | None = None,
    outputs: Sequence[int] | None = None,
) -> Problem:
    """Describe ``fn(*positional, **kwargs)`` for a check, as ``check_function`` documents it.

    ``outputs`` chooses the outputs to project (by position among the tensors ``fn``
    returns); by default every floating or complex one.
    """
    if not callable(fn):
        raise InvalidTypeError(f"fn: got {type(fn).__name__}, expected a callable")
    keywords = _keywords(kwargs)
    notes: list[str] = []
    grad_mode = False
    if order == 2:
        fn, positional, keywords = second_order(fn, positional, keywords, grad_outputs, seed, notes)
        grad_mode = True
    elif order != 1:
        raise InvalidArgumentError(f"order: got {order!r}, expected 1 or 2")
    elif grad_outputs is not None:
        raise InvalidArgumentError(
            "grad_outputs: got tensors with order=1, expected None; they are the vectors of "
            "a second-order check (order=2)"
        )
    arguments = prepare_arguments(positional, keywords, notes)
    wanted = [part for a in arguments if a.wanted for part in a.parts]
    if not wanted:
        raise InvalidArgumentError(
            f"inputs: got {[type(a.value).__name__ for a in arguments]}, expected at least one "
            "floating-point or complex tensor to differentiate by"
        )
    names = select(wanted, include, exclude)
    owner = {part: a for a in arguments for part in a.parts}

    def call(overrides: Mapping[str, Tensor]) -> list[Tensor]:
        args = [a.rebuild(overrides) for a in arguments[: len(positional)]]
        kw = {a.name: a.rebuild(overrides) for a in arguments[len(positional) :]}
        return output_tensors(fn(*args, **kw))

    base = {name: owner[name].parts[name] for name in names}
    first, grad_mode = _first_outputs(call, base, grad_mode, notes)
    floating = [i for i, t in enumerate(first) if t.is_floating_point() or t.is_complex()]
    kept = floating if outputs is None else [i for i in outputs if i in floating]
    if not kept:
        raise LossEvaluationError(
            "fn returned no floating-point or complex tensor, expected a tensor or a tuple of "
            "tensors"
        )
    skipped = [f"output{i} ({first[i].dtype})" for i in range(len(first)) if i not in kept]
    if skipped:
        notes.append(f"{', '.join(skipped)}: not differentiable, so not checked")
    if any(first[i].dim() > 0 or first[i].is_complex() for i in kept):
        origin = seed if isinstance(seed, int) else "from the generator"
        notes.append(
            "non-scalar outputs were reduced to Σ v·output with a fixed random v (complex ones "
            f"to Σ v·Re output + w·Im output; seed {origin})"
        )
    reduce = Projection(first, kept, seed)

    def values(overrides: Mapping[str, Tensor]) -> Tensor:
        stacked = torch.stack(reduce(call(overrides)))
        return stacked if per_output else stacked.sum().reshape(1)

    return Problem(
        base=base,
        dtypes=tuple(owner[name].dtype(notes) for name in names),
        columns=tuple(reduce.names) if per_output else ("output",),
        values=values,
        notes=notes,
        batch_size=batch_size,
        inputs=numel([a.rebuild({}) for a in arguments]),
        grad_mode=grad_mode,
    )
