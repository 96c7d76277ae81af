"""What a PyTorch check differentiates: float64 copies of tensors and a function of them.

:class:`Problem` holds the checked tensors and evaluates the losses with some of
them replaced: through a cut graph (:mod:`gradprobe.torch._graph`) where one was
built, else in ``torch.vmap`` batches where the code allows, else one at a time.
:func:`prepare_arguments` turns the user's arguments into checked real tensors:
a complex tensor into its real and imaginary parts, a sparse COO tensor into its
specified values.
"""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from gradprobe._validate import unless_interrupt
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, LossEvaluationError

__all__ = [
    "Argument",
    "Patterns",
    "Problem",
    "as_inputs",
    "float64",
    "numpy_dtype",
    "output_tensors",
    "numel",
    "prepare_arguments",
    "scalar_loss",
    "select",
    "sum_outputs",
    "vmap_notes",
]

Patterns = str | Sequence[str] | None
_NUMPY_DTYPES: dict[torch.dtype, np.dtype[Any]] = {
    torch.float16: np.dtype(np.float16),
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
    torch.complex64: np.dtype(np.float32),
    torch.complex128: np.dtype(np.float64),
}
# Memory one batch of perturbed copies may take (small enough to stay in cache on a CPU),
# and the most evaluations per batch.
_BATCH_BYTES = 32 * 2**20
_MAX_BATCH = 512


class Graph(Protocol):
    """A cut graph that evaluates perturbations of some tensors (see ``_graph.GraphPlan``)."""

    def coordinates(self, name: str, local: Tensor, values: Tensor) -> Tensor | None:
        """Losses with ``tensor.flatten()[local[r]] = values[r]``, or None without a route."""
        ...

    def batch(self, name: str, perturbed: Tensor) -> Tensor | None:
        """Losses with the tensor replaced by each ``perturbed[r]``, or None without a route."""
        ...


@dataclass
class Problem:
    """What a check differentiates: float64 tensors and a function of them.

    ``values(overrides)`` returns the losses, shape ``(columns,)``, with the checked
    tensors named in ``overrides`` replaced (the others at their base values).
    ``grad_mode`` evaluates with autograd on, one value at a time (a function that
    registers hooks, or a second-order check that calls ``autograd.grad`` itself);
    ``forward_ad`` takes the analytic gradient from forward-mode AD instead of backward.
    """

    base: dict[str, Tensor]
    dtypes: tuple[np.dtype[Any], ...]
    columns: tuple[str, ...]
    values: Callable[[Mapping[str, Tensor]], Tensor]
    notes: list[str] = field(default_factory=list)
    vectorize: bool = True
    batch_size: int | None = None
    inputs: int = 0
    grad_mode: bool = False
    graph: Graph | None = None
    forward_ad: bool = False
    blame: str = "fn on inputs"  # the arguments a failing backward points to, in words

    def call(self, overrides: Mapping[str, Tensor], where: str, graph: bool = False) -> Tensor:
        """Evaluate the losses, turning any failure into a LossEvaluationError.

        With ``graph`` autograd records the evaluation (for the analytic gradient);
        otherwise a ``grad_mode`` problem runs on fresh leaves and returns plain values.
        """
        try:
            if graph:
                with torch.enable_grad():
                    return self.values(overrides)
            if self.grad_mode:
                moved = {**self.base, **overrides}
                leaves = {n: v.detach().requires_grad_(True) for n, v in moved.items()}
                with torch.enable_grad():
                    return self.values(leaves).detach()
            return self.values(overrides)
        except LossEvaluationError:
            raise
        except BaseException as error:  # noqa: BLE001 - whatever the user's loss raises
            raise LossEvaluationError(
                f"the loss raised {type(error).__name__} {where}: {error}"
            ) from unless_interrupt(error)

    def block(self, size: int) -> int:
        """Return the evaluations per batch: ``batch_size``, or what fits in about 32 MiB.

        One evaluation holds its copy of the perturbed tensor (``size`` values) and, as
        a guess, activations worth eight times the floating inputs.
        """
        if self.batch_size is not None:
            return max(2, self.batch_size)
        return int(np.clip(_BATCH_BYTES // (8 * (size + 8 * self.inputs)), 2, _MAX_BATCH))

    def coordinates(self, name: str, local: Tensor, values: Tensor) -> NDArray[np.float64]:
        """Return the losses with ``base[name].flatten()[local[r]] = values[r]``.

        Returns an array of shape ``(len(local), columns)``: through the cut graph when it
        has a route for ``name`` (the tensor is never copied there), else in batches of
        perturbed copies.
        """
        if self.graph is not None and not self.grad_mode:
            with torch.no_grad():
                result = self.graph.coordinates(name, local, values)
            if result is not None:
                return _finite(result, name)
        base = self.base[name].reshape(1, -1)
        block = self.block(base.shape[1])
        rows = []
        for start in range(0, len(local), block):
            chosen = slice(start, start + block)
            count = len(local[chosen])
            perturbed = base.repeat(count, 1)
            perturbed[torch.arange(count, device=base.device), local[chosen]] = values[chosen]
            rows.append(self.batch(name, perturbed.reshape(count, *self.base[name].shape)))
        return np.concatenate(rows)

    def batch(self, name: str, perturbed: Tensor) -> NDArray[np.float64]:
        """Evaluate the losses for each of a batch of values of tensor ``name``.

        Returns an array of shape ``(batch, columns)``: through the cut graph when it
        has a route for ``name``, else ``torch.vmap``, falling back for good to one
        evaluation at a time when that fails (the report says why).
        """
        if self.graph is not None and not self.grad_mode:
            with torch.no_grad():
                result = self.graph.batch(name, perturbed)
            if result is not None:
                return _finite(result, name)
        if self.vectorize and not self.grad_mode:
            try:
                with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    result = torch.vmap(lambda value: self.values({name: value}))(perturbed)
                self.notes.extend(n for n in vmap_notes(caught) if n not in self.notes)
                return _finite(result, name)
            except LossEvaluationError:
                raise
            except BaseException as error:  # noqa: BLE001 - any failure: "not vmappable"
                unless_interrupt(error)
                self.vectorize = False
                self.notes.append(
                    f"torch.vmap could not batch the evaluations ({_reason(error)}); they ran "
                    "one at a time"
                )
        with torch.no_grad():
            rows = [
                self.call({name: value}, f"with a value of {name} moved")
                for value in perturbed.unbind(0)
            ]
        return _finite(torch.stack(rows), name)


def _reason(error: BaseException) -> str:
    reason = f"{type(error).__name__}: {str(error).strip().split('. ')[0][:160]}"
    if "autograd.Function" in reason:
        reason = (
            "an autograd.Function in it has no vmap rule; give it setup_context and "
            "generate_vmap_rule = True"
        )
    return reason


def vmap_notes(caught: Sequence[warnings.WarningMessage]) -> list[str]:
    """Turn torch's "no batching rule for aten::X" warnings into report notes."""
    notes = []
    for warning in caught:
        text = str(warning.message)
        if "batching rule for" in text:
            operator = text.split("batching rule for", 1)[1].split()[0].rstrip(".")
            note = (
                f"torch.vmap has no batching rule for {operator}: torch ran it in a loop over "
                "the batch, which is slower but gives the same values"
            )
            if note not in notes:
                notes.append(note)
    return notes


def _finite(result: Tensor, name: str) -> NDArray[np.float64]:
    values = result.detach().to("cpu", torch.float64).numpy()
    if not np.all(np.isfinite(values)):
        raise LossEvaluationError(
            f"the loss returned a non-finite value with a value of {name} moved, expected "
            "finite values near the point of the check; check at other parameter values"
        )
    return values.reshape(len(values), -1)


@dataclass
class Argument:
    """One argument of the checked function, with the real float64 tensors it is built from.

    ``parts`` maps the checked names to float64 real tensors: ``{"input0": x}`` for a real
    tensor, ``{"input0.real": …, "input0.imag": …}`` for a complex one, ``{"input0.values":
    …}`` for a sparse COO one (its specified values); empty for anything else.
    """

    name: str
    value: Any
    parts: dict[str, Tensor]
    wanted: bool

    def rebuild(self, overrides: Mapping[str, Tensor]) -> Any:
        """Return the argument with its parts replaced from ``overrides`` where named there."""
        if not self.parts:
            return self.value
        parts = [overrides.get(key, value) for key, value in self.parts.items()]
        if self.value.is_complex():
            return torch.complex(parts[0], parts[1])
        if self.value.is_sparse:
            indices = self.value.detach().coalesce().indices()
            shape = self.value.shape
            # The indices are those of a coalesced valid tensor: nothing to check again.
            built = torch.sparse_coo_tensor(indices, parts[0], shape, check_invariants=False)
            return built.coalesce()
        return parts[0]

    def dtype(self, notes: list[str]) -> np.dtype[Any]:
        """Return the NumPy dtype of the values (float32, with a note, where NumPy has none)."""
        return numpy_dtype(self.value, notes)


def prepare_arguments(
    positional: Sequence[Any], keywords: Mapping[str, Any], notes: list[str]
) -> list[Argument]:
    """Describe each argument: positional ones named ``input0, input1, …``, keywords by key.

    Floating and complex tensors (dense or sparse COO) become checked parts; ``wanted``
    marks those with ``requires_grad``, or all of them when none requires grad.
    """
    named = [(f"input{i}", value) for i, value in enumerate(positional)]
    named += list(keywords.items())
    arguments = [Argument(name, value, _parts(name, value, notes), False) for name, value in named]
    differentiable = [a for a in arguments if a.parts]
    chosen = [a for a in differentiable if a.value.requires_grad] or differentiable
    for argument in chosen:
        argument.wanted = True
    return arguments


def _parts(name: str, value: Any, notes: list[str]) -> dict[str, Tensor]:
    if not isinstance(value, Tensor) or not (value.is_floating_point() or value.is_complex()):
        return {}
    if value.layout not in (torch.strided, torch.sparse_coo):
        raise InvalidTypeError(
            f"{name}: got a tensor with layout {value.layout}, expected a dense (strided) or "
            "sparse COO tensor; convert it with .to_sparse_coo() or .to_dense()"
        )
    if value.is_sparse:
        if value.is_complex():
            raise InvalidTypeError(
                f"{name}: got a complex sparse tensor, expected a real sparse COO tensor or a "
                "dense complex one; convert it with .to_dense()"
            )
        values = value.detach().coalesce().values()
        notes.append(
            f"{name} is a sparse COO tensor: its {values.numel()} specified values are checked "
            f"({name}.values in θ, in coalesced order); its unspecified entries stay zero"
        )
        return {f"{name}.values": values.to(torch.float64, copy=True)}
    if value.is_complex():
        notes.append(
            f"{name} is complex: its real and imaginary parts are checked as two real tensors "
            f"({name}.real, {name}.imag); PyTorch's gradient of a real loss L is "
            "∂L/∂(real part) + i·∂L/∂(imaginary part), its conjugate Wirtinger convention"
        )
        copy = value.detach().to(torch.complex128, copy=True)
        return {f"{name}.real": copy.real.clone(), f"{name}.imag": copy.imag.clone()}
    return {name: value.detach().to(torch.float64, copy=True)}


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


def select(names: Sequence[str], include: Patterns, exclude: Patterns) -> list[str]:
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


def numel(values: Sequence[Any]) -> int:
    """Return how many floating values the tensors among ``values`` hold."""
    return sum(v.numel() for v in values if isinstance(v, Tensor) and v.is_floating_point())


def float64(value: Any) -> Any:
    """Return a float64 copy of a floating tensor on its device, anything else as it is."""
    if isinstance(value, Tensor) and value.is_floating_point():
        return value.detach().to(torch.float64, copy=True)
    return value


def numpy_dtype(tensor: Tensor, notes: list[str]) -> np.dtype[Any]:
    """Return the NumPy dtype of a tensor's values; float32, with a note, where NumPy has none."""
    if tensor.dtype not in _NUMPY_DTYPES:
        notes.append(f"{tensor.dtype} tensors promoted to float64 for the check")
        return np.dtype(np.float32)
    return _NUMPY_DTYPES[tensor.dtype]


def as_inputs(inputs: Any, argument: str) -> tuple[Any, ...]:
    """Return positional arguments as a tuple: a tensor alone, or a tuple or list of them."""
    if isinstance(inputs, Tensor):
        return (inputs,)
    if isinstance(inputs, (list, tuple)):
        return tuple(inputs)
    raise InvalidTypeError(
        f"{argument}: got {type(inputs).__name__}, expected a tensor or a tuple of tensors"
    )


def scalar_loss(loss: Any, argument: str) -> Tensor:
    """Return a scalar loss tensor with shape ``(1,)``, or explain what to reduce."""
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        got = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
        raise LossEvaluationError(
            f"{argument} returned {got}, expected a scalar tensor; reduce it with .sum() or .mean()"
        )
    if loss.is_complex():
        raise LossEvaluationError(
            f"{argument} returned a complex scalar, expected a real loss; take .real or .abs()"
        )
    return loss.reshape(1)


def sum_outputs(output: Any) -> Tensor:
    """Sum every value of every floating output tensor: the default loss."""
    tensors = [t for t in output_tensors(output) if t.is_floating_point()]
    if not tensors:
        raise LossEvaluationError(
            f"the module returned {type(output).__name__}, expected a floating tensor or a "
            "tuple of them; pass loss_fn to reduce it to a scalar"
        )
    return torch.stack([t.sum() for t in tensors]).sum()


def output_tensors(output: Any) -> list[Tensor]:
    """Return every tensor in an output: a tensor, or lists, tuples and dicts of them."""
    if isinstance(output, Tensor):
        return [output]
    if isinstance(output, (list, tuple)):
        return [t for item in output for t in output_tensors(item)]
    if isinstance(output, Mapping):
        return [t for item in output.values() for t in output_tensors(item)]
    return []
