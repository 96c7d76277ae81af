"""PyTorch activations for :func:`gradprobe.recommend_scale`, with torch imported only here.

A PyTorch module (``nn.GELU()``, a user's ``nn.Module``) or a function from torch's
namespace (``F.mish``, ``torch.tanh``) is evaluated by PyTorch on float64 tensors and
differentiated exactly by autograd. Nothing here imports torch unless it already is
imported (no such activation can exist before), so :mod:`gradprobe.nn` stays free of it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._validate import unless_interrupt
from gradprobe.errors import InvalidTypeError, LossEvaluationError, ShapeMismatchError

__all__ = ["is_torch", "takes_only_tensors", "torch_functions", "torch_label"]

Array = NDArray[np.float64]


# PyTorch activation modules whose function is a row of the NumPy table, by class name.
_TORCH_NAMES = {
    "ReLU": "relu",
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
    "Identity": "linear",
    "SiLU": "silu",
    "Mish": "mish",
    "SELU": "selu",
    "Softplus": "softplus",
    "ELU": "elu",
    "GELU": "gelu",
    "LeakyReLU": "leaky_relu",
}


def is_torch(activation: object) -> bool:
    """Whether ``activation`` is a PyTorch module or a function from torch's namespace."""
    torch = sys.modules.get("torch")
    if torch is None:  # nothing of torch's can exist before torch is imported
        return False
    if isinstance(activation, torch.nn.Module):
        return True
    module = getattr(activation, "__module__", None) or ""
    return module == "torch" or module.startswith(("torch.", "torch._C"))


def torch_functions(
    activation: Any, label: str
) -> tuple[Callable[[Array], Array], Callable[[Array], Array]]:
    """Evaluate a PyTorch activation and its exact autograd derivative on float64 arrays.

    Imports torch only here, so :mod:`gradprobe.nn` never pays for it; grad mode and the
    module itself are left as they were (``torch.autograd.grad`` fills no ``.grad``).
    """
    import torch

    parameters = list(activation.parameters()) if isinstance(activation, torch.nn.Module) else []
    dtype = parameters[0].dtype if parameters else torch.float64
    device = parameters[0].device if parameters else torch.device("cpu")

    def run(z: Array, slope: bool) -> Array:
        if not isinstance(z, np.ndarray) or z.ndim != 1:
            raise InvalidTypeError(f"activation: {label} is evaluated on 1-D arrays only")
        with torch.enable_grad():
            tensor = torch.tensor(z, dtype=dtype, device=device, requires_grad=slope)
            try:
                # A copy, so an in-place activation (ReLU(inplace=True)) may overwrite it.
                values = activation(tensor.clone())
            except BaseException as error:  # noqa: BLE001 - whatever the user's code raises
                raise LossEvaluationError(
                    f"activation: {label} raised {type(error).__name__} on a tensor of shape "
                    f"{tuple(tensor.shape)}: {error}"
                ) from unless_interrupt(error)
            if not isinstance(values, torch.Tensor) or values.shape != tensor.shape:
                shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values)
                raise ShapeMismatchError(
                    f"activation: {label} returned {shape} for a tensor of shape "
                    f"{tuple(tensor.shape)}, expected an elementwise function"
                )
            if slope:
                if not values.requires_grad:  # a constant function: its slope is 0
                    return np.zeros_like(z)
                (values,) = torch.autograd.grad(values.sum(), tensor)
        return np.asarray(values.detach().to("cpu", torch.float64).numpy())

    return (lambda z: run(z, False)), (lambda z: run(z, True))


def takes_only_tensors(function: Callable[[Any], Any]) -> bool:
    """Whether a callable fails on NumPy values but works on a tensor (``torch.relu(z) * 2``)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    try:
        function(np.zeros(2))
        return False
    except BaseException as error:  # noqa: BLE001 - any failure on arrays: try floats, then tensors
        unless_interrupt(error)
        pass
    try:
        function(0.0)
        return False
    except BaseException as error:  # noqa: BLE001
        unless_interrupt(error)
        pass
    try:
        return isinstance(function(torch.zeros(2, dtype=torch.float64)), torch.Tensor)
    except BaseException as error:  # noqa: BLE001 - neither: the NumPy route reports the error
        unless_interrupt(error)
        return False


def torch_label(activation: Any) -> str:
    """Name a PyTorch activation by what it computes: ``relu``, ``gelu (erf)``, ``Swish``."""
    kind = type(activation).__name__
    if kind == "GELU" and getattr(activation, "approximate", "none") == "none":
        return "gelu (erf)"
    if kind == "LeakyReLU":
        return f"leaky_relu({getattr(activation, 'negative_slope', 0.01):g})"
    if kind in _TORCH_NAMES:
        return _TORCH_NAMES[kind]
    return str(getattr(activation, "__name__", None) or kind)
