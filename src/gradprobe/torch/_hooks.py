"""One forward and one backward pass of a PyTorch model with hooks, the model left as it was.

:func:`record` runs the model on the probe batch with

* a forward hook on every weight layer (:func:`gradprobe.torch._layers.weight_units`):
  the statistics of its input and output, and tensor hooks for the gradients reaching
  both;
* forward hooks on normalization, dropout, pooling and activation modules, and a
  :class:`~torch.overrides.TorchFunctionMode` for their functional forms (``F.relu``,
  ``F.layer_norm``, ``torch.tanh``): a weight layer's output is followed through them
  by tensor identity until the first activation, whose output gives the activation
  statistics (dead and saturated units) and its name;
* ``torch.autograd.grad`` of the probe loss for the weight gradients (no ``.grad`` is
  filled).

Run it inside :func:`gradprobe.torch._state.borrowed`, which restores the model and
PyTorch's global state afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from gradprobe._validate import unless_interrupt
from gradprobe.errors import LossEvaluationError, ShapeMismatchError
from gradprobe.nn.scale import activation_name
from gradprobe.signals.propagation import SATURATION_BOUNDS
from gradprobe.torch._layers import Unit, activation_call, role

__all__ = ["Moments", "Recording", "Site", "moments", "record"]

_NORM_CALLS = {
    nn.functional.batch_norm,
    nn.functional.layer_norm,
    nn.functional.group_norm,
    nn.functional.instance_norm,
    nn.functional.local_response_norm,
    nn.functional.rms_norm,
}
_PASS_CALLS = {
    nn.functional.dropout,
    nn.functional.dropout1d,
    nn.functional.dropout2d,
    nn.functional.dropout3d,
    nn.functional.alpha_dropout,
    nn.functional.max_pool1d,
    nn.functional.max_pool2d,
    nn.functional.max_pool3d,
    nn.functional.avg_pool1d,
    nn.functional.avg_pool2d,
    nn.functional.avg_pool3d,
    nn.functional.adaptive_avg_pool1d,
    nn.functional.adaptive_avg_pool2d,
    nn.functional.adaptive_max_pool2d,
    torch.flatten,
    torch.reshape,
    Tensor.flatten,
    Tensor.reshape,
    Tensor.view,
    Tensor.contiguous,
}


@dataclass(frozen=True)
class Moments:
    """Mean, standard deviation and second moment of a tensor, and whether it is all finite."""

    mean: float
    std: float
    second: float
    finite: bool


def moments(tensor: Tensor) -> Moments:
    """Measure a tensor in float64, scaled so that squaring huge values cannot overflow."""
    values = tensor.detach().to(torch.float64)
    finite = bool(torch.isfinite(values).all())
    if values.numel() == 0:
        return Moments(math.nan, math.nan, math.nan, finite)
    mean = float(values.mean())
    centred = values - mean if math.isfinite(mean) else values
    return Moments(mean, math.sqrt(_second(centred)), _second(values), finite)


def _second(values: Tensor) -> float:
    """``E[x²]``, infinity when it exceeds the float range (as :func:`signals.judge.moment`)."""
    largest = float(values.abs().max())
    if not 0 < largest < math.inf:
        return largest * largest  # 0, infinity or NaN
    scaled = float((values / largest).square().mean())
    return largest * (scaled * largest)


@dataclass
class Site:
    """One call of a weight layer during the probe's forward pass, and what it measured."""

    name: str
    unit: Unit
    input: Moments | None
    output: Moments
    units: int
    activation: nn.Module | None = None
    active: Moments | None = None
    dead: float = 0.0
    saturated: float = 0.0
    symmetric: bool = False  # of the pre-activations: the weights make every unit the same
    normalized: bool = False
    output_gradient: Moments | None = None
    output_gradient_total: float = math.nan
    input_gradient: Moments | None = None
    activation_input: int | None = None


@dataclass
class Recording:
    """What :func:`record` measured: the sites in forward order and the gradients."""

    sites: list[Site]
    reference: Moments
    reference_values: Tensor
    output_gradient_total: float
    weight_gradients: dict[str, Tensor | None] = field(default_factory=dict)
    float_dtypes: set[torch.dtype] = field(default_factory=set)


class _Recorder(TorchFunctionMode):
    """Follows each weight layer's output through normalization and pooling to its activation."""

    def __init__(self, units: Sequence[Unit]) -> None:
        super().__init__()
        self.units = {id(unit.module): unit for unit in units}
        self.sites: list[Site] = []
        self.calls: dict[str, int] = {}
        self.chain: dict[int, tuple[Tensor, Site]] = {}
        self.running: list[tuple[Unit, tuple[int, ...] | None, bool]] = []
        self.inputs: set[int] = set()
        self.first_output = torch.zeros(0)
        self.busy = False

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if self.busy or not args or not isinstance(result, Tensor):
            return result
        site = self._site_of(args[0])
        if site is None or site.activation is not None:
            return result
        if func in _NORM_CALLS:
            self._follow(site, result, normalized=True)
        elif func in _PASS_CALLS:
            self._follow(site, result, normalized=False)
        else:
            module = activation_call(func, args, kwargs)
            if module is not None:
                self._activate(site, args[0], result, module)
        return result

    def _site_of(self, tensor: Any) -> Site | None:
        entry = self.chain.get(id(tensor)) if isinstance(tensor, Tensor) else None
        return entry[1] if entry is not None and entry[0] is tensor else None

    def _follow(self, site: Site, result: Tensor, normalized: bool) -> None:
        site.normalized |= normalized
        self.chain[id(result)] = (result, site)

    def _activate(self, site: Site, source: Tensor, result: Tensor, module: nn.Module) -> None:
        self.busy = True
        try:
            site.activation = module
            site.activation_input = id(source)
            site.active = moments(result)
            site.dead, _ = _dead_and_symmetric(result, site)
            bounds = SATURATION_BOUNDS.get(activation_name(module))
            if bounds is not None:
                values = result.detach()
                site.saturated = float(
                    ((values < bounds[0]) | (values > bounds[1])).double().mean()
                )
            self.chain[id(result)] = (result, site)
        finally:
            self.busy = False

    def before_unit(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Remember which weight layer runs, for an error message if it raises."""
        x = _first_tensor(args, kwargs)
        shape = tuple(x.shape) if x is not None else None
        self.running.append((self.units[id(module)], shape, x is not None and id(x) in self.inputs))

    def after_unit(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
    ) -> None:
        """Measure a weight layer's call: its input, output and (later) their gradients."""
        unit, _, _ = self.running.pop()
        z = output[0] if isinstance(output, (tuple, list)) else output
        if not isinstance(z, Tensor):
            return
        self.busy = True
        try:
            count = self.calls.get(unit.name, 0) + 1
            self.calls[unit.name] = count
            x = _first_tensor(args, kwargs)
            floating = x is not None and x.is_floating_point()
            units = int(z.shape[unit.channel_dim(z)]) if z.dim() else 1
            site = Site(
                name=unit.name if count == 1 else f"{unit.name}#{count}",
                unit=unit,
                input=moments(x) if floating and x is not None else None,
                output=moments(z),
                units=units,
            )
            site.dead, site.symmetric = _dead_and_symmetric(z, site)
            if not self.sites:
                self.first_output = z
            self.sites.append(site)
            self.chain[id(z)] = (z, site)
            if z.requires_grad:
                z.register_hook(_store_output_gradient(site))  # type: ignore[no-untyped-call]
            if floating and x is not None and x.requires_grad:
                x.register_hook(_store_input_gradient(site))  # type: ignore[no-untyped-call]
        finally:
            self.busy = False

    def after_leaf(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        """Follow a weight layer's output through a normalization, pooling or activation module."""
        x = args[0] if args else None
        site = self._site_of(x)
        if site is None or not isinstance(output, Tensor) or self.busy:
            return
        kind = role(module)
        if site.activation is None and kind in {"norm", "pass"}:
            self._follow(site, output, normalized=kind == "norm")
        elif kind == "activation" and output.shape == x.shape:  # type: ignore[union-attr]
            # A module overrides what a function inside it looked like (Swish's sigmoid).
            if site.activation is None or site.activation_input == id(x):
                self._activate(site, x, output, module)  # type: ignore[arg-type]


def _first_tensor(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tensor | None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, Tensor):
            return value
    return None


def _dead_and_symmetric(values: Tensor, site: Site) -> tuple[float, bool]:
    """Return the fraction of units 0 for every example and position, and whether all agree."""
    if values.dim() == 0:
        return 0.0, False
    axis = site.unit.channel_dim(values)
    columns = values.detach().movedim(axis, -1).reshape(-1, values.shape[axis])
    dead = float((columns == 0).all(dim=0).double().mean())
    symmetric = columns.shape[1] > 1 and bool((columns == columns[:, :1]).all())
    return dead, symmetric


def _store_output_gradient(site: Site) -> Callable[[Tensor], None]:
    def hook(gradient: Tensor) -> None:
        site.output_gradient = moments(gradient)
        site.output_gradient_total = site.output_gradient.second * gradient.numel()

    return hook


def _store_input_gradient(site: Site) -> Callable[[Tensor], None]:
    def hook(gradient: Tensor) -> None:
        site.input_gradient = moments(gradient)

    return hook


def _floating(value: Any) -> list[Tensor]:
    """Every floating tensor in a (nested) output: a tensor, tuple, list or dict."""
    if isinstance(value, Tensor):
        return [value] if value.is_floating_point() else []
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [tensor for item in value for tensor in _floating(item)]
    return []


def record(
    model: nn.Module,
    inputs: tuple[Any, ...],
    units: Sequence[Unit],
    loss_fn: Callable[..., Any] | None,
    targets: Any,
    seed: int,
) -> Recording:
    """Run the forward and backward pass of the probe; see the module notes.

    ``inputs`` are the model's positional arguments; floating tensors among them are
    copied (the caller's are never marked ``requires_grad``). Call inside
    :func:`gradprobe.torch._state.borrowed`.
    """
    copies = tuple(
        value.detach().clone().requires_grad_(True)
        if isinstance(value, Tensor) and value.is_floating_point()
        else value
        for value in inputs
    )
    recorder = _Recorder(units)
    recorder.inputs = {id(value) for value in copies if isinstance(value, Tensor)}
    handles = []
    for unit in units:
        handles.append(
            unit.module.register_forward_pre_hook(recorder.before_unit, with_kwargs=True)
        )
        handles.append(unit.module.register_forward_hook(recorder.after_unit, with_kwargs=True))
    inside = {id(module) for unit in units for module in unit.module.modules()}
    for module in model.modules():
        if id(module) not in inside and role(module) in {"norm", "pass", "activation"}:
            handles.append(module.register_forward_hook(recorder.after_leaf))
    try:
        with recorder:
            try:
                output = model(*copies)
            except BaseException as error:  # noqa: BLE001 - whatever the user's code raises
                raise _forward_error(error, recorder, copies) from unless_interrupt(error)
        outputs = _floating(output)
        loss = _loss(outputs, output, loss_fn, targets, seed)
    finally:
        for handle in handles:
            handle.remove()
    sites = recorder.sites
    if not sites:
        raise LossEvaluationError(
            "model: none of its weight layers ran in the forward pass on x; expected a model "
            "whose forward calls its Linear/Conv/attention modules"
        )
    weights = {
        f"{unit.name}.{key}": parameter
        for unit in units
        for key, parameter in unit.weights
        if parameter.requires_grad
    }
    leaves = [value for value in copies if isinstance(value, Tensor) and value.requires_grad]
    wanted = [*weights.values(), *leaves, *[y for y in outputs if y.requires_grad]]
    if not loss.requires_grad or not wanted:
        raise LossEvaluationError(
            "model: its output does not depend on any weight that requires grad, so no "
            "gradient can be measured; expected trainable weight layers"
        )
    try:
        gradients = torch.autograd.grad(loss, wanted, allow_unused=True)
    except BaseException as error:  # noqa: BLE001 - whatever the user's code raises
        raise LossEvaluationError(
            f"model: the backward pass raised {type(error).__name__}: {error}"
        ) from unless_interrupt(error)
    tail = gradients[len(weights) + len(leaves) :]
    output_total = sum(moments(g).second * g.numel() for g in tail if g is not None)
    floating = [
        value for value in copies if isinstance(value, Tensor) and value.is_floating_point()
    ]
    reference = floating[0] if floating else recorder.first_output
    return Recording(
        sites=sites,
        reference=moments(reference),
        reference_values=reference.detach(),
        output_gradient_total=float(output_total),
        weight_gradients=dict(zip(weights, gradients[: len(weights)], strict=True)),
        float_dtypes={p.dtype for p in model.parameters() if p.is_floating_point()},
    )


def _loss(
    outputs: list[Tensor], output: Any, loss_fn: Callable[..., Any] | None, targets: Any, seed: int
) -> Tensor:
    if loss_fn is None:
        if not outputs:
            raise LossEvaluationError(
                f"model: returned {type(output).__name__} with no floating tensor, expected an "
                "output to backpropagate a probe from (or pass loss_fn)"
            )
        total = torch.zeros((), dtype=outputs[0].dtype, device=outputs[0].device)
        for y in outputs:
            generator = torch.Generator(device=y.device).manual_seed(seed)
            probe = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
            total = total + (probe * y).sum() / max(1, y.shape[0] if y.dim() else 1)
        return total
    try:
        loss = loss_fn(output) if targets is None else loss_fn(output, targets)
    except BaseException as error:  # noqa: BLE001 - whatever the user's code raises
        raise LossEvaluationError(
            f"loss_fn: raised {type(error).__name__} on the model's output: {error}"
        ) from unless_interrupt(error)
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise LossEvaluationError(
            f"loss_fn: returned {type(loss).__name__}"
            f"{'' if not isinstance(loss, Tensor) else f' of shape {tuple(loss.shape)}'}, "
            "expected a scalar tensor"
        )
    return loss.reshape(())


def _forward_error(error: BaseException, recorder: _Recorder, inputs: tuple[Any, ...]) -> Exception:
    shapes = ", ".join(
        str(tuple(value.shape)) if isinstance(value, Tensor) else type(value).__name__
        for value in inputs
    )
    if recorder.running:
        unit, shape, direct = recorder.running[-1]
        layer = f"layer {unit.name or '(the model)'} ({unit.module})"
        if direct:
            return ShapeMismatchError(
                f"x: got shape {shape}, which {layer} cannot take: {type(error).__name__}: "
                f"{error}; expected x shaped as that layer's input"
            )
        where = f" in {layer} on an input of shape {shape}"
    else:
        where = ""
    return LossEvaluationError(
        f"model: its forward raised {type(error).__name__}{where} on x of shape {shapes}: {error}"
    )
