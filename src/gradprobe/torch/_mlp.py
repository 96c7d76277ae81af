"""A PyTorch MLP checked through gradprobe's structure-aware MLP evaluator.

An ``nn.Sequential`` of plain ``Linear`` layers with one of the activations both
libraries define identically between them, under cross-entropy, mean squared error
or binary cross-entropy with logits, *is* gradprobe's :class:`~gradprobe.nn.mlp.MLP`
with that loss. Its numerical derivatives then come from
:class:`~gradprobe.nn.fastcheck.MLPEvaluator`, which answers each perturbation from
one cached forward pass (one moved column, rank-1 updates, the loss change summed
per example) instead of running the layers again: the structure-aware check that
makes gradprobe's own full check about 150 times faster than a plain loop. The
analytic gradient is still PyTorch's own, from ``torch.autograd``; only the
numerical side is computed this way, and only after the copy's loss has been shown
to equal the module's, at θ and at perturbed points, to rounding.

Anything else (a custom layer, a hook, a subclass, another loss, a GPU) goes through
the cut graph of :mod:`gradprobe.torch._graph`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from gradprobe._params import ParameterLayout
from gradprobe.nn._replica import ReplicaRoute, agreement, build_mlp, route_note, spot_points
from gradprobe.nn.fastcheck import MLPEvaluator
from gradprobe.nn.mlp import MLP
from gradprobe.torch._evaluator import Evaluator
from gradprobe.torch._problem import Problem

__all__ = ["ReplicaEvaluator", "replica_evaluator", "replica_for"]

_F = nn.functional


def _activation(layer: nn.Module) -> str | None:
    if type(layer) is nn.ReLU:
        return "relu"
    if type(layer) is nn.LeakyReLU and layer.negative_slope == 0.01:
        return "leaky_relu"
    if type(layer) is nn.GELU and layer.approximate == "tanh":
        return "gelu"
    simple = {nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.SiLU: "silu", nn.Identity: "linear"}
    return simple.get(type(layer))


def _hooked(module: nn.Module) -> bool:
    hooks = nn.modules.module
    global_hooks = (hooks._global_forward_hooks, hooks._global_forward_pre_hooks)  # noqa: SLF001
    local = any(m._forward_hooks or m._forward_pre_hooks for m in module.modules())  # noqa: SLF001
    return local or any(global_hooks)


def _output(loss: Any, targets: Any, outputs: int) -> str | None:
    """Return the MLP output layer whose loss is ``loss(·, targets)``, or None."""
    if not isinstance(targets, Tensor):
        return None
    if loss is _F.cross_entropy or (
        type(loss) is nn.CrossEntropyLoss
        and loss.weight is None
        and loss.reduction == "mean"
        and loss.label_smoothing == 0.0
    ):
        labels = targets.dim() == 1 and not targets.is_floating_point() and outputs >= 2
        ignored = type(loss) is nn.CrossEntropyLoss and bool((targets == loss.ignore_index).any())
        return "softmax" if labels and not ignored and bool((targets >= 0).all()) else None
    if loss is _F.mse_loss or (type(loss) is nn.MSELoss and loss.reduction == "mean"):
        return "linear" if targets.is_floating_point() else None
    if loss is _F.binary_cross_entropy_with_logits or (
        type(loss) is nn.BCEWithLogitsLoss
        and loss.reduction == "mean"
        and loss.weight is None
        and loss.pos_weight is None
    ):
        return "sigmoid" if outputs == 1 and targets.is_floating_point() else None
    return None


def replica_for(
    module: nn.Module, inputs: Sequence[Any], loss: Any, targets: Any, train_mode: bool
) -> tuple[MLP, NDArray[np.float64], NDArray[Any], list[str]] | None:
    """Return the gradprobe MLP equal to ``module`` with ``loss``, its data and torch names.

    None unless the module is a plain Linear/activation stack on the CPU, in eval mode,
    without hooks, taking one 2-d input, and the loss is one the MLP computes.
    """
    if type(module) is not nn.Sequential or train_mode or len(inputs) != 1 or _hooked(module):
        return None
    layers: list[Any] = list(module)
    linears, activations = layers[0::2], layers[1::2]
    if not linears or len(linears) != len(activations) + 1:
        return None
    if any(type(layer) is not nn.Linear or layer.bias is None for layer in linears):
        return None
    if len({id(p) for layer in linears for p in layer.parameters()}) != 2 * len(linears):
        return None  # a layer used twice, or a tied weight: not an MLP's independent layers
    names = {_activation(layer) for layer in activations}
    if len(names) > 1 or None in names:
        return None
    (x,) = inputs
    parameters = list(module.parameters())
    tensors = [x, targets, *parameters]
    if not isinstance(x, Tensor) or x.dim() != 2 or not x.is_floating_point():
        return None
    if any(isinstance(t, Tensor) and t.device.type != "cpu" for t in tensors):
        return None
    sizes = [linears[0].in_features, *(layer.out_features for layer in linears)]
    output = _output(loss, targets, sizes[-1])
    pairs = zip(linears[1:], linears[:-1], strict=True)
    chained = all(a.in_features == b.out_features for a, b in pairs)
    if output is None or not chained:
        return None
    activation = next(iter(names), None) or "linear"
    net = build_mlp(
        activation,
        output,
        [(_numpy(layer.weight), _numpy(layer.bias)) for layer in linears],
    )
    labels = targets.detach().cpu().numpy()
    torch_names = [name for name, _ in module.named_parameters()]
    return net, _numpy(x), labels, torch_names


class ReplicaEvaluator(ReplicaRoute, Evaluator):
    """The PyTorch evaluator whose perturbed values come from gradprobe's MLP evaluator.

    Parameters
    ----------
    problem : Problem
        The check's problem (its tensors are a subset of the MLP's parameters).
    layout : ParameterLayout
        The layout of the checked tensors.
    theta : ndarray of float64, shape (size,)
        The point of the check, in ``layout``.
    replica : MLPEvaluator
        The evaluator of the equal MLP, at the same point.
    positions : sequence of int
        For each checked tensor, its position among the MLP's parameters.
    """

    def __init__(
        self,
        problem: Problem,
        layout: ParameterLayout,
        theta: NDArray[np.float64],
        replica: MLPEvaluator,
        positions: Sequence[int],
    ) -> None:
        super().__init__(problem, layout, theta)
        full = replica.layout.offsets
        shift = np.array([full[p] - layout.offsets[k] for k, p in enumerate(positions)])
        owner = np.searchsorted(layout.offsets, np.arange(layout.size), side="right") - 1
        self.attach(replica, theta, np.arange(layout.size) + shift[owner])


def replica_evaluator(
    problem: Problem,
    layout: ParameterLayout,
    theta: NDArray[np.float64],
    built: tuple[MLP, NDArray[np.float64], NDArray[Any], list[str]],
    reference: Callable[[Mapping[str, Tensor]], Tensor],
) -> ReplicaEvaluator | None:
    """Build the evaluator, or None when the copy's losses do not equal the module's."""
    net, x, labels, torch_names = built
    full_layout = ParameterLayout.from_params(net.params)
    replica = MLPEvaluator(net, x, labels, full_layout.flatten(net.params))
    positions = [torch_names.index(name) for name in problem.base]
    evaluator = ReplicaEvaluator(problem, layout, theta, replica, positions)

    def module_loss(index: int | None, value: float) -> float:
        tensors: dict[str, Tensor] = {}
        if index is not None:
            k = int(np.searchsorted(layout.offsets, index, side="right") - 1)
            moved = theta[layout.offsets[k] : layout.offsets[k + 1]].copy()
            moved[index - layout.offsets[k]] = value
            tensors[layout.names[k]] = torch.as_tensor(moved.reshape(layout.shapes[k]))
        with torch.no_grad():
            return float(reference(tensors)[0])

    spots = spot_points(layout, theta)
    points = agreement(evaluator, spots, [module_loss(i, v) for i, v in spots])
    if points is None:
        return None
    problem.notes.append(route_note(net, "PyTorch", "module", points, "PyTorch's own"))
    return evaluator


def _numpy(tensor: Tensor) -> NDArray[np.float64]:
    """Return a float64 NumPy copy of ``tensor`` (from any device)."""
    copy: NDArray[np.float64] = tensor.detach().to("cpu", torch.float64).numpy().copy()
    return copy
