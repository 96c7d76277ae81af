"""What a PyTorch check differentiates: float64 copies of tensors and a function of them.

:class:`Problem` holds the checked tensors and evaluates the losses with some of
them replaced, in ``torch.vmap`` batches where the code allows. The helpers here
turn the user's arguments (inputs, outputs, glob patterns, dtypes) into one.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from gradprobe._validate import unless_interrupt
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, LossEvaluationError

__all__ = [
    "Patterns",
    "Problem",
    "as_inputs",
    "float64",
    "numel",
    "numpy_dtype",
    "output_tensors",
    "scalar_loss",
    "select",
    "sum_outputs",
]

Patterns = str | Sequence[str] | None
_NUMPY_DTYPES: dict[torch.dtype, np.dtype[Any]] = {
    torch.float16: np.dtype(np.float16),
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
}


@dataclass
class Problem:
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
        except BaseException as error:  # noqa: BLE001 - whatever the user's loss raises
            raise LossEvaluationError(
                f"the loss raised {type(error).__name__} {where}: {error}"
            ) from unless_interrupt(error)
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
                except BaseException as error:  # noqa: BLE001 - any failure: "not vmappable"
                    unless_interrupt(error)
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


def numel(values: Sequence[Any]) -> int:
    """Return how many floating values the tensors among ``values`` hold."""
    return sum(v.numel() for v in values if isinstance(v, Tensor) and v.is_floating_point())


def as_inputs(inputs: Any, argument: str) -> tuple[Any, ...]:
    """Return a module's positional arguments as a tuple."""
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
