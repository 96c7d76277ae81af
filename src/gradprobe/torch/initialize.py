"""Initialize a PyTorch model in place, each weight layer for the activation that follows it.

:func:`initialize_` is PyTorch style (a trailing underscore, run under
``torch.no_grad``, draws from a seeded ``torch.Generator``, so the global random state
is untouched). The activation after each layer is read from the model
(:func:`gradprobe.torch._layers.read_activations`), or given by the caller. Schemes,
with ``g`` the gain of that activation (PyTorch's ``calculate_gain`` where it has one,
else ``√σ_w²`` from :func:`gradprobe.recommend_scale`) and biases set to zero:

============  =================================================================
scheme        weights
============  =================================================================
default       PyTorch's own ``reset_parameters()`` (biases too)
zeros         all zeros (symmetry never breaks)
small, large  ``N(0, 0.01²)`` and ``N(0, 10²)``, the course notes' randn·0.01, ·10
lecun         ``N(0, 1/fan_in)``
he            ``N(0, g²/fan_in)``: ``kaiming_normal_(w, nonlinearity=…)``
xavier        ``xavier_normal_(w, gain=g)``
orthogonal    ``orthogonal_(w, gain=g)``
auto          ``N(0, σ_w²/fan_in)``, ``σ_w²`` from ``recommend_scale`` of the activation
============  =================================================================

Attention's projections are initialized as linear layers; embeddings (lookup tables,
not fan-in sums) and recurrent layers are left as they are except by ``"default"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.torch._layers import (
    LINEAR,
    Following,
    Unit,
    check_model,
    read_activations,
    weight_units,
)

__all__ = [
    "SCHEMES",
    "Draws",
    "Initialization",
    "InitializedLayer",
    "draw",
    "initialize_",
    "zero_biases",
]

SCHEMES = ("default", "zeros", "small", "large", "xavier", "he", "lecun", "orthogonal", "auto")
"""The schemes :func:`initialize_` knows."""


@dataclass(frozen=True)
class InitializedLayer:
    """One weight layer after :func:`initialize_`.

    Attributes
    ----------
    name : str
        The module path.
    activation, source : str
        The activation that follows it and how that was read.
    weight_scale : float
        ``fan_in·E[W²]`` of its weight afterwards (``σ_w²``).
    changed : bool
        False for layers left as they were (embeddings, recurrent layers).
    """

    name: str
    activation: str
    source: str
    weight_scale: float
    changed: bool


@dataclass(frozen=True)
class Initialization:
    """What :func:`initialize_` did, layer by layer."""

    scheme: str
    layers: tuple[InitializedLayer, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return everything as plain Python objects."""
        return {"scheme": self.scheme, "layers": [dict(layer.__dict__) for layer in self.layers]}

    def __str__(self) -> str:
        width = max(5, *(len(layer.name) for layer in self.layers))
        lines = [
            f"initialized with {self.scheme!r}:",
            f"{'layer':<{width}} {'σ_w²':>8}  activation (read from)",
        ]
        for layer in self.layers:
            scale = f"{layer.weight_scale:>8.3g}" if layer.changed else f"{'as is':>8}"
            lines.append(f"{layer.name:<{width}} {scale}  {layer.activation} ({layer.source})")
        return "\n".join(lines)


def initialize_(
    model: nn.Module,
    scheme: str = "auto",
    *,
    activations: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> Initialization:
    """Initialize every weight layer of ``model`` in place for the activation that follows it.

    Parameters
    ----------
    model : torch.nn.Module
        Changed in place: weights and biases of its weight layers only.
    scheme : str, default="auto"
        One of :data:`SCHEMES` (see the module notes).
    activations : dict of str to activation, optional
        Layer name -> the activation after it, where it cannot be read from the model:
        a name (``"relu"``, ``"gelu"``, ``"linear"``), a module (``nn.SiLU()``) or a
        function (``F.mish``).
    seed : int, default=0
        Seeds the draws (a local ``torch.Generator``; PyTorch's global random state is
        left as it was).

    Returns
    -------
    Initialization
        Per layer: the activation read, how it was read, and ``σ_w²`` afterwards.

    Raises
    ------
    InvalidArgumentError
        For an unknown scheme, a model without weight layers, or ``activations`` naming
        a layer the model does not have; the model is then unchanged.

    Examples
    --------
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    >>> done = initialize_(model, "he")
    >>> [(layer.activation, round(layer.weight_scale, 1)) for layer in done.layers]
    [('relu', 2.0), ('linear', 1.0)]
    """
    check_model(model)
    if not isinstance(scheme, str) or scheme not in SCHEMES:
        raise InvalidArgumentError(f"scheme: got {scheme!r}, expected one of {', '.join(SCHEMES)}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidTypeError(f"seed: got {type(seed).__name__}, expected an int")
    if activations is not None and not isinstance(activations, Mapping):
        raise InvalidTypeError(
            f"activations: got {type(activations).__name__}, expected a dict of layer name "
            "-> activation"
        )
    units = weight_units(model)
    read = read_activations(model, units, activations)
    draws = Draws(seed)
    layers = []
    with torch.no_grad():
        for unit in units:
            changed = _initialize(unit, read[unit.name], scheme, draws)
            main = unit.main.detach().double()
            layers.append(
                InitializedLayer(
                    name=unit.name,
                    activation=read[unit.name].label,
                    source=read[unit.name].source,
                    weight_scale=unit.fan_in() * float(main.square().mean()),
                    changed=changed,
                )
            )
    return Initialization(scheme=scheme, layers=tuple(layers))


class Draws:
    """One seeded generator per device, so the draws are the same wherever the model lives."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.generators: dict[torch.device, torch.Generator] = {}

    def __call__(self, tensor: Tensor) -> torch.Generator:
        """Return the generator for ``tensor``'s device."""
        if tensor.device not in self.generators:
            generator = torch.Generator(device=tensor.device).manual_seed(self.seed)
            self.generators[tensor.device] = generator
        return self.generators[tensor.device]


def _initialize(unit: Unit, activation: Following, scheme: str, draws: Draws) -> bool:
    module = unit.module
    if scheme == "default":
        reset = getattr(module, "reset_parameters", None) or getattr(
            module, "_reset_parameters", None
        )
        if reset is None:
            return False
        devices = [t.device.index or 0 for t in module.parameters() if t.device.type == "cuda"]
        with torch.random.fork_rng(devices=sorted(set(devices))):
            torch.manual_seed(draws.seed)
            reset()
        return True
    if unit.kind == "embedding" or isinstance(module, nn.RNNBase):
        return False
    for _, weight in unit.weights:
        # Attention's projections feed no activation; the output projection neither.
        draw(weight, unit, LINEAR if unit.kind == "attention" else activation, scheme, draws)
    zero_biases(unit)
    return True


def zero_biases(unit: Unit) -> None:
    """Zero a weight layer's biases (attention's too), not those of modules inside it."""
    for key, parameter in unit.module.named_parameters():
        if "bias" in key.rsplit(".", 1)[-1] and (unit.kind == "attention" or "." not in key):
            parameter.zero_()


def draw(weight: Tensor, unit: Unit, activation: Following, scheme: str, draws: Draws) -> None:
    """Draw one weight of ``unit`` in place by ``scheme`` for the activation after it."""
    generator = draws(weight)
    fan_in = unit.fan_in(weight)
    if scheme == "zeros":
        weight.zero_()
    elif scheme in {"small", "large"}:
        nn.init.normal_(weight, 0.0, 0.01 if scheme == "small" else 10.0, generator=generator)
    elif scheme == "lecun":
        nn.init.normal_(weight, 0.0, 1 / math.sqrt(fan_in), generator=generator)
    elif scheme == "he":
        nn.init.normal_(weight, 0.0, activation.gain() / math.sqrt(fan_in), generator=generator)
    elif scheme == "xavier":
        nn.init.xavier_normal_(weight, gain=activation.gain(), generator=generator)
    elif scheme == "orthogonal":
        nn.init.orthogonal_(weight, gain=activation.gain(), generator=generator)
    else:  # auto
        std = math.sqrt(activation.scale() / fan_in)
        nn.init.normal_(weight, 0.0, std, generator=generator)
