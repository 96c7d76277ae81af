"""Data-dependent initialization in place, layer by layer on a batch: :func:`rescale_`.

The LSUV procedure (Mishkin & Matas, "All you need is a good init", ICLR 2016): in
forward order, each weight layer's weights are multiplied by ``target / std`` of its
output on the batch until that std is within ``tol`` of ``target``, so every layer
hands the next one a unit-scale signal whatever its activation. Orthogonal
pre-initialization (the paper's first step) is optional. Each measurement runs the
model only up to the layer being scaled. Unlike the ``lsuv`` package it reports the
scales it applied and the propagation verdict before and after, and leaves the
model's buffers (batch-norm statistics), flags and PyTorch's random state as they were.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from gradprobe._validate import check_count, check_positive, unless_interrupt
from gradprobe.errors import InvalidTypeError, LossEvaluationError
from gradprobe.signals.rescale import RescaledLayer, RescaleReport
from gradprobe.torch._layers import LINEAR, Unit, check_model, weight_units
from gradprobe.torch._state import borrowed
from gradprobe.torch.initialize import Draws, draw, zero_biases
from gradprobe.torch.probe import as_inputs, check_probe, propagation

__all__ = ["rescale_"]


class _Stop(BaseException):
    """Ends a forward pass once the layer being rescaled has run.

    It is not an ``Exception``, so a model's own ``except Exception`` cannot swallow it.
    """


def rescale_(
    model: nn.Module,
    x: Any,
    *,
    target: float = 1.0,
    max_iter: int = 10,
    tol: float = 0.05,
    orthogonal: bool = False,
    seed: int = 0,
    loss_fn: Callable[..., Tensor] | None = None,
    targets: Any = None,
    tolerance: float = 100.0,
    training: bool = True,
) -> RescaleReport:
    """Rescale every weight layer in place until its output has std ``target`` on ``x``.

    Parameters
    ----------
    model : torch.nn.Module
        Its weights change in place (and its biases, with ``orthogonal``); its buffers,
        training flags and PyTorch's global state are left as they were.
    x : Tensor, tuple or ndarray
        The batch, as for :func:`gradprobe.torch.propagation`.
    target : float, default=1.0
        The standard deviation each layer's output should have.
    max_iter : int, default=10
        The most rescaling steps per layer.
    tol : float, default=0.05
        Stop when ``|std / target − 1| <= tol``.
    orthogonal : bool, default=False
        First draw every weight orthogonal (gain 1) and zero the biases.
    seed : int, default=0
        Seeds the orthogonal draws and the probe of the before/after verdicts.
    loss_fn, targets, tolerance, training
        As for :func:`gradprobe.torch.propagation`, for the before/after verdicts
        (``training`` also for the measurements).

    Returns
    -------
    RescaleReport
        The factor applied to each layer, whether it converged, and the propagation
        reports before and after.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(*[nn.Sequential(nn.Linear(64, 64), nn.ReLU()) for _ in range(20)])
    >>> x = torch.randn(256, 64, generator=torch.Generator().manual_seed(0))
    >>> result = rescale_(model, x)
    >>> result.before.verdict, result.after.verdict, result.converged
    ('vanishing', 'healthy', True)
    """
    check_model(model)
    target = check_positive(target, "target")
    max_iter = check_count(max_iter, "max_iter")
    tol = check_positive(tol, "tol")
    if not isinstance(orthogonal, bool):
        raise InvalidTypeError(f"orthogonal: got {type(orthogonal).__name__}, expected a bool")
    check_probe(loss_fn, seed, training)
    inputs = as_inputs(x, model)
    options = {"loss_fn": loss_fn, "targets": targets, "seed": seed, "tolerance": tolerance}
    before = propagation(model, x, training=training, **options)
    units = {unit.name: unit for unit in weight_units(model)}
    order = list(dict.fromkeys(layer.label.split("#")[0] for layer in before.layers))
    scalable = [units[name] for name in order if units[name].kind in _SCALABLE]
    skipped = [
        f"{name} ({units[name].kind} layers are not rescaled)"
        for name in order
        if units[name].kind not in _SCALABLE
    ]
    if orthogonal:
        _orthogonalize(scalable, seed)
    layers = []
    with borrowed(model, training, parameters=False), torch.no_grad():
        for unit in scalable:
            done = _rescale(model, inputs, unit, target, max_iter, tol)
            if isinstance(done, str):
                skipped.append(done)
            else:
                layers.append(done)
    after = propagation(model, x, training=training, **options)
    return RescaleReport(target, tol, orthogonal, tuple(layers), tuple(skipped), before, after)


_SCALABLE = frozenset({"linear", "conv", "attention", "other"})


def _scaled_weight(unit: Unit) -> Tensor:
    # Attention is one unit; its output projection sets the scale of what it returns.
    if unit.kind == "attention":
        weight: Tensor = unit.module.out_proj.weight  # type: ignore[union-attr,assignment]
        return weight
    return unit.main


def _orthogonalize(units: list[Unit], seed: int) -> None:
    draws = Draws(seed)
    with torch.no_grad():
        for unit in units:
            for _, weight in unit.weights:
                draw(weight, unit, LINEAR, "orthogonal", draws)
            zero_biases(unit)


def _rescale(
    model: nn.Module, inputs: tuple[Any, ...], unit: Unit, target: float, max_iter: int, tol: float
) -> RescaledLayer | str:
    weight = _scaled_weight(unit)
    total, std = 1.0, math.nan
    for step in range(max_iter + 1):
        measured = _output_std(model, inputs, unit)
        if measured is None:
            return f"{unit.name} (not called in the forward pass)"
        std = measured
        if not math.isfinite(std) or std == 0:
            return f"{unit.name} (its output std is {std:g}: nothing to scale)"
        if abs(std / target - 1) <= tol or step == max_iter:
            break
        factor = target / std
        weight.mul_(factor)
        total *= factor
    return RescaledLayer(unit.name, total, step, std, abs(std / target - 1) <= tol)


def _output_std(model: nn.Module, inputs: tuple[Any, ...], unit: Unit) -> float | None:
    """Run the model up to ``unit`` and return the std of its output (None if never called)."""
    seen: list[float] = []

    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        value = output[0] if isinstance(output, (tuple, list)) else output
        seen.append(float(value.detach().double().std()))
        raise _Stop

    handle = unit.module.register_forward_hook(hook)
    try:
        model(*inputs)
    except _Stop:
        pass
    except BaseException as error:  # noqa: BLE001 - whatever the user's code raises
        raise LossEvaluationError(
            f"model: its forward raised {type(error).__name__} while rescaling {unit.name}: {error}"
        ) from unless_interrupt(error)
    finally:
        handle.remove()
    return seen[0] if seen else None
