"""Second-order checks: the backward of the backward, as ``torch.autograd.gradgradcheck`` does.

A first-order check compares the vector-Jacobian product ``vᵀ·∂f/∂x`` with numerical
differences of ``vᵀ·f``. The second order checks the function that computes that
product, ``g(x, v) = autograd.grad(f(x), x, v, create_graph=True)``, the same way:
its own vector-Jacobian products need the double backward of every operation in
``f``, and its numerical differences need only ``g`` itself. :func:`second_order`
turns ``f`` and its arguments into ``g`` and the vectors ``v`` (keyword arguments
``grad_output0, grad_output1, …``), which the first-order machinery then checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gradprobe._validate import unless_interrupt
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, LossEvaluationError
from gradprobe.torch._problem import as_inputs, output_tensors

__all__ = ["second_order"]


def _differentiable(value: Any) -> bool:
    return isinstance(value, Tensor) and (value.is_floating_point() or value.is_complex())


def second_order(
    fn: Callable[..., Any],
    positional: Sequence[Any],
    keywords: Mapping[str, Any],
    grad_outputs: Tensor | Sequence[Tensor] | None,
    seed: int | np.random.Generator,
    notes: list[str],
) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    """Return ``g`` and its arguments: ``positional``, and ``keywords`` plus the vectors ``v``.

    ``g(*positional, **keywords, grad_output0=v0, …)`` returns the gradients of
    ``Σ vₖ·outputₖ`` by the differentiable arguments (those with ``requires_grad``, or
    all floating and complex tensors when none requires grad), zeros where unused. The
    returned arguments mark exactly those, and the vectors (unless given without
    ``requires_grad``), as requiring grad, so that the first-order check takes them.

    Raises
    ------
    InvalidArgumentError
        When ``grad_outputs`` does not match the outputs, or ``fn`` has none to check.
    """
    arguments = [*positional, *keywords.values()]
    candidates = [i for i, value in enumerate(arguments) if _differentiable(value)]
    chosen = [i for i in candidates if arguments[i].requires_grad] or candidates
    if not chosen:
        raise InvalidArgumentError(
            "inputs: got no floating-point or complex tensor, expected at least one to "
            "differentiate by"
        )
    count = len(positional)
    names = list(keywords)

    def outputs(args: Sequence[Any]) -> list[Tensor]:
        result = fn(*args[:count], **dict(zip(names, args[count:], strict=True)))
        return [t for t in output_tensors(result) if t.requires_grad]

    probe = [
        v.detach().to(_wide(v.dtype)).requires_grad_(True) if i in chosen else v
        for i, v in enumerate(arguments)
    ]
    try:
        with torch.enable_grad():
            first = outputs(probe)
    except BaseException as error:  # noqa: BLE001 - whatever the user's code raises
        raise LossEvaluationError(
            f"fn raised {type(error).__name__} at the inputs: {error}"
        ) from unless_interrupt(error)
    if not first:
        raise LossEvaluationError(
            "fn returned no output that depends on the inputs, expected at least one to "
            "differentiate twice"
        )
    vectors = _vectors(first, grad_outputs, seed, notes)

    def vector_jacobian(*args: Any, **kwargs: Any) -> tuple[Tensor, ...]:
        given = [*args, *(kwargs[name] for name in names)]
        leaves = [
            v if i not in chosen or v.requires_grad else v.detach().requires_grad_(True)
            for i, v in enumerate(given)
        ]
        v = [kwargs[f"grad_output{k}"] for k in range(len(vectors))]
        with torch.enable_grad():
            results = outputs(leaves)
            grads = torch.autograd.grad(
                results, [leaves[i] for i in chosen], v, create_graph=True, allow_unused=True
            )
        return tuple(
            torch.zeros_like(leaves[i]) if g is None else g
            for i, g in zip(chosen, grads, strict=True)
        )

    marked = [
        v.detach().requires_grad_(True) if i in chosen else v for i, v in enumerate(arguments)
    ]
    return (
        vector_jacobian,
        tuple(marked[:count]),
        {
            **dict(zip(names, marked[count:], strict=True)),
            **{f"grad_output{k}": value for k, value in enumerate(vectors)},
        },
    )


def _wide(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype.is_complex else torch.float64


def _vectors(
    outputs: list[Tensor],
    grad_outputs: Tensor | Sequence[Tensor] | None,
    seed: int | np.random.Generator,
    notes: list[str],
) -> list[Tensor]:
    """Return the vectors ``v``: the caller's, checked, or seeded random ones."""
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        notes.append(
            "second order: the backward was taken with fixed random vectors grad_output0, …, "
            "checked as inputs too"
        )
        vectors = []
        for output in outputs:
            shape = tuple(output.shape)
            real = torch.as_tensor(rng.uniform(-1, 1, shape), device=output.device)
            if output.is_complex():
                imaginary = torch.as_tensor(rng.uniform(-1, 1, shape), device=output.device)
                real = torch.complex(real, imaginary)
            vectors.append(real.requires_grad_(True))
        return vectors
    given = list(as_inputs(grad_outputs, "grad_outputs"))
    if len(given) != len(outputs):
        raise InvalidArgumentError(
            f"grad_outputs: got {len(given)} tensors, expected {len(outputs)}, one per output "
            "of fn that depends on the inputs"
        )
    for k, (vector, output) in enumerate(zip(given, outputs, strict=True)):
        if not isinstance(vector, Tensor):
            raise InvalidTypeError(
                f"grad_outputs[{k}]: got {type(vector).__name__}, expected a tensor"
            )
        if vector.shape != output.shape:
            raise InvalidArgumentError(
                f"grad_outputs[{k}]: got shape {tuple(vector.shape)}, expected "
                f"{tuple(output.shape)}, the shape of output {k}"
            )
    return given
