"""What the modules of a PyTorch model are, and which activation follows each weight layer.

A *weight layer* (a :class:`Unit`) is a module that multiplies its input by weights:
``Linear``, ``Conv1d/2d/3d`` and their transposes, ``Embedding``, any module holding a
parameter of two or more dimensions itself, and ``MultiheadAttention`` as one unit
(its output projection is applied functionally, never called as a module). The other
modules are classified by :func:`role`: normalization, dropout, pass-through (pooling,
reshaping), activation, or something else.

:func:`read_activations` reads, without running the model, the activation that follows
each weight layer: the next activation in registration order (which is execution order in
``nn.Sequential``), skipping normalization, dropout and pooling; in a block that is not a
``Sequential`` (a ResNet block, say) the block's one kind of activation module or its
``activation`` attribute; ``linear1`` of ``nn.TransformerEncoderLayer`` gets the layer's
``activation``; attention and the model's last weight layer get none unless the user's
mapping says otherwise. The probe (:mod:`gradprobe.torch.probe`) reads it from the
forward pass instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.nn.initializers import GAIN_NAMES, gain
from gradprobe.nn.scale import activation_name, recommend_scale

__all__ = [
    "LINEAR",
    "Following",
    "Unit",
    "activation_call",
    "check_model",
    "following",
    "read_activations",
    "role",
    "weight_units",
]

_NORMS = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.RMSNorm,
)
_PASS = (
    nn.modules.dropout._DropoutNd,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.Flatten,
    nn.Unflatten,
    nn.Identity,
)
# Parameter-free modules that are not elementwise: they end an activation search.
_STOPS = (nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.Softmax2d, nn.Upsample)
_ATTRIBUTES = ("activation", "act", "act_fn", "nonlinearity")


@dataclass(frozen=True)
class Unit:
    """One weight layer: its module path, module, kind and weights of two or more dimensions."""

    name: str
    module: nn.Module
    kind: str
    weights: tuple[tuple[str, Tensor], ...]

    @property
    def main(self) -> Tensor:
        """The weight whose scale the report shows (attention: the input projection)."""
        return self.weights[0][1]

    def fan_in(self, weight: Tensor | None = None) -> int:
        """PyTorch's fan-in of a weight (dim 1 times the receptive field); 1 for embeddings."""
        tensor = self.main if weight is None else weight
        if self.kind == "embedding":
            return 1
        receptive = int(np.prod(tensor.shape[2:])) if tensor.dim() > 2 else 1
        return int(tensor.shape[1]) * receptive

    def channel_dim(self, output: Tensor) -> int:
        """Return the axis of the units: a convolution's channels, else the last axis."""
        if self.kind == "conv":
            spatial = self.main.dim() - 2
            return output.dim() - spatial - 1
        return output.dim() - 1


@dataclass(frozen=True)
class Following:
    """The activation after a weight layer: its name, the function, and how it was read."""

    label: str
    function: Any
    source: str

    @property
    def linear(self) -> bool:
        """Whether no activation follows."""
        return self.function is None

    def scale(self) -> float:
        """``σ_w²`` per fan-in from :func:`gradprobe.recommend_scale` (the forward scale)."""
        return float(
            recommend_scale(self.function if self.function is not None else "linear").value
        )

    def gain(self) -> float:
        """PyTorch's gain where ``calculate_gain`` has one, else ``√scale()``."""
        if self.label in GAIN_NAMES:
            return gain(self.label)
        return float(np.sqrt(self.scale()))


LINEAR = Following("linear", None, "none follows")
"""No activation after the layer."""


def check_model(model: object) -> nn.Module:
    """Return ``model`` if it is an ``nn.Module``, else raise naming what was given."""
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(
            f"model: got {type(model).__name__}, expected a torch.nn.Module (for gradprobe's "
            "own MLP use gradprobe.propagation)"
        )
    return model


def weight_units(model: nn.Module) -> list[Unit]:
    """Return every weight layer of ``model`` in registration order.

    Raises
    ------
    InvalidArgumentError
        When the model has none.
    """
    units: list[Unit] = []
    inside: list[str] = []
    for name, module in model.named_modules():
        if any(name.startswith(f"{outer}.") for outer in inside):
            continue
        if isinstance(module, nn.MultiheadAttention):
            inside.append(name)
            projections: list[tuple[str, Tensor]] = [
                (key, parameter)
                for key, parameter in module.named_parameters()
                if parameter.dim() >= 2 and key.endswith("weight") and key != "out_proj.weight"
            ]
            projections.append(("out_proj.weight", module.out_proj.weight))
            units.append(Unit(name, module, "attention", tuple(projections)))
            continue
        weights = [
            (key, parameter)
            for key, parameter in module.named_parameters(recurse=False)
            if parameter.dim() >= 2
        ]
        if weights:
            units.append(Unit(name, module, _kind(module), tuple(weights)))
    if not units:
        raise InvalidArgumentError(
            f"model: got {type(model).__name__} with no weight layers, expected a model with "
            "at least one (Linear, Conv1d/2d/3d, MultiheadAttention, Embedding or a module "
            "holding a weight matrix)"
        )
    return units


def _kind(module: nn.Module) -> str:
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv"
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return "embedding"
    return "other"


def role(module: nn.Module) -> str:
    """Classify a module that holds no weight matrix.

    Returns one of ``"norm"``, ``"pass"`` (dropout, pooling, reshaping), ``"activation"``
    (PyTorch's, or a user's parameter-free leaf module, taken as elementwise once its
    output has its input's shape) and ``"other"`` (containers, softmax, padding, …).
    """
    if isinstance(module, _NORMS):
        return "norm"
    if isinstance(module, _PASS):
        return "pass"
    if isinstance(module, _STOPS) or any(True for _ in module.children()):
        return "other"
    origin = type(module).__module__
    if origin == "torch.nn.modules.activation":
        return "activation"
    if not origin.startswith("torch.") and not any(True for _ in module.parameters()):
        return "activation"  # a user's parameter-free leaf module, e.g. Swish
    return "other"


def _activation_modules() -> dict[Callable[..., Any], Callable[..., nn.Module]]:
    """Functional activation -> the module computing the same (from the call's arguments)."""
    functional = nn.functional
    tensor = torch.Tensor

    def argument(
        position: int, key: str, default: Any
    ) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
        return lambda args, kwargs: kwargs.get(
            key, args[position] if len(args) > position else default
        )

    slope = argument(1, "negative_slope", 0.01)
    alpha = argument(1, "alpha", 1.0)
    table: dict[Callable[..., Any], Callable[..., nn.Module]] = {}
    groups: list[tuple[list[Any], Callable[[tuple[Any, ...], dict[str, Any]], nn.Module]]] = [
        (
            [functional.relu, torch.relu, torch.relu_, tensor.relu, tensor.relu_],
            lambda a, k: nn.ReLU(),
        ),
        ([functional.leaky_relu, functional.leaky_relu_], lambda a, k: nn.LeakyReLU(slope(a, k))),
        ([functional.gelu], lambda a, k: nn.GELU(approximate=k.get("approximate", "none"))),
        ([functional.silu], lambda a, k: nn.SiLU()),
        ([functional.mish], lambda a, k: nn.Mish()),
        (
            [torch.tanh, torch.tanh_, tensor.tanh, tensor.tanh_, functional.tanh],
            lambda a, k: nn.Tanh(),
        ),
        (
            [torch.sigmoid, torch.sigmoid_, tensor.sigmoid, tensor.sigmoid_, functional.sigmoid],
            lambda a, k: nn.Sigmoid(),
        ),
        ([functional.elu, functional.elu_], lambda a, k: nn.ELU(alpha(a, k))),
        ([functional.celu], lambda a, k: nn.CELU(alpha(a, k))),
        ([functional.selu, torch.selu, torch.selu_], lambda a, k: nn.SELU()),
        ([functional.softplus], lambda a, k: nn.Softplus(**k)),
        ([functional.hardtanh, functional.hardtanh_], lambda a, k: nn.Hardtanh()),
        ([functional.relu6], lambda a, k: nn.ReLU6()),
        ([functional.hardswish], lambda a, k: nn.Hardswish()),
        ([functional.softsign], lambda a, k: nn.Softsign()),
    ]
    for functions, factory in groups:
        for function in functions:
            table[function] = factory
    return table


_ACTIVATION_CALLS = _activation_modules()


def activation_call(
    function: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> nn.Module | None:
    """Return the activation module a functional call such as ``F.relu(z)`` computes, or None."""
    factory = _ACTIVATION_CALLS.get(function)
    if factory is None:
        return None
    options = {key: value for key, value in kwargs.items() if key != "inplace"}
    return factory(args, options)


def following(activation: Any, source: str) -> Following:
    """Describe an activation given as a module, a torch function, a name or None (linear)."""
    if activation is None or isinstance(activation, nn.Identity):
        return Following("linear", None, source)
    if isinstance(activation, str):
        if activation == "linear":
            return Following("linear", None, source)
        modules = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}
        modules |= {"silu": nn.SiLU, "elu": nn.ELU, "softplus": nn.Softplus, "selu": nn.SELU}
        modules |= {"mish": nn.Mish, "leaky_relu": nn.LeakyReLU}
        if activation not in modules:
            raise InvalidArgumentError(
                f"activations: got {activation!r}, expected one of linear, "
                f"{', '.join(modules)}, a torch.nn.Module or a function"
            )
        module = nn.GELU(approximate="tanh") if activation == "gelu" else modules[activation]()
        return Following(activation, module, source)
    if not callable(activation):
        raise InvalidTypeError(
            f"activations: got {type(activation).__name__}, expected a name, a torch.nn.Module "
            "or a function"
        )
    if not isinstance(activation, nn.Module):
        module = activation_call(activation, (), {})
        activation = module if module is not None else activation
    return Following(activation_name(activation), activation, source)


def read_activations(
    model: nn.Module, units: list[Unit], mapping: Mapping[str, Any] | None = None
) -> dict[str, Following]:
    """Read the activation after each weight layer from the model's structure.

    Parameters
    ----------
    model : torch.nn.Module
    units : list of Unit
        From :func:`weight_units`.
    mapping : dict of str to activation, optional
        Layer name -> activation (a name such as ``"relu"``, a module, a function, or
        ``"linear"``/None), overriding what is read.

    Raises
    ------
    InvalidArgumentError
        When ``mapping`` names a layer that is not one of the model's weight layers.
    """
    names = [unit.name for unit in units]
    given = dict(mapping or {})
    unknown = [key for key in given if key not in names]
    if unknown:
        shown = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
        raise InvalidArgumentError(
            f"activations: got layer {unknown[0]!r}, which is not a weight layer of the model; "
            f"expected one of {shown}"
        )
    found = {name: following(value, "given") for name, value in given.items()}
    unit_names = set(names)
    leaves = [
        (name, module)
        for name, module in model.named_modules()
        if name in unit_names
        or (not any(True for _ in module.children()) and not _within(name, units))
    ]
    for unit in units:
        if unit.name not in found:
            found[unit.name] = _read(model, unit, leaves, unit_names, last=unit is units[-1])
    return found


def _within(name: str, units: list[Unit]) -> bool:
    return any(unit.kind == "attention" and name.startswith(f"{unit.name}.") for unit in units)


def _read(
    model: nn.Module,
    unit: Unit,
    leaves: list[tuple[str, nn.Module]],
    unit_names: set[str],
    last: bool,
) -> Following:
    parent_name, _, attribute = unit.name.rpartition(".")
    parent = model.get_submodule(parent_name)
    if unit.kind in {"attention", "embedding"}:
        return LINEAR
    if isinstance(parent, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
        if attribute == "linear1":
            return following(parent.activation, "the transformer layer's activation")
        return LINEAR
    position = next(index for index, (name, _) in enumerate(leaves) if name == unit.name)
    for name, module in leaves[position + 1 :]:
        kind = "unit" if name in unit_names else role(module)
        if kind in {"norm", "pass"}:
            continue
        if kind == "activation":
            return following(module, f"next module ({name})")
        break
    if last or isinstance(parent, nn.Sequential):
        return LINEAR
    candidates = {
        activation_name(child): child for child in parent.children() if role(child) == "activation"
    }
    for key in _ATTRIBUTES:
        value = getattr(parent, key, None)
        if callable(value) and not isinstance(value, nn.Module):
            candidates[activation_name(value)] = value
    if len(candidates) == 1:
        (function,) = candidates.values()
        return following(function, f"the block's activation ({type(parent).__name__})")
    return LINEAR
