"""Perturbations that move one column or channel of a layer: computed as such, not as whole layers.

Moving one entry ``W[r, c]`` of a ``Linear`` weight by δ moves only column ``r`` of
its output, by ``δ·x[..., c]``; one entry ``W[o, c, i, j]`` of a ``Conv2d`` weight
moves only output channel ``o``, by δ times channel ``c`` of the input shifted by
``(i, j)``; a bias entry moves its column or channel by δ. :class:`Patch` holds such
a value for a batch of perturbations: the layer's output at θ and, per
perturbation, only the moved slice. Layers that act on each column or channel on
its own (activations, batch norm, pooling, flatten, adding a constant) keep it a
patch; the next ``Linear`` or ``Conv`` turns it into its full output as a low-rank
update, ``out(θ) + Δ·W[:, r]``, without recomputing the layer. Anything else is
given the full tensors (:meth:`Patch.dense`).

Every value is the layer's own output up to rounding: the updates add the change
to the cached output instead of recomputing it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "ARITHMETIC",
    "DROPOUT",
    "ELEMENTWISE_FUNCTIONS",
    "ELEMENTWISE_METHODS",
    "ELEMENTWISE_MODULES",
    "NORMS",
    "Patch",
    "consume",
    "plain",
    "produce",
    "propagate",
]

ELEMENTWISE_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softsign,
    nn.Tanhshrink, nn.LogSigmoid, nn.Identity,
)  # fmt: skip
DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
_POOLS = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)  # fmt: skip
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_CONVS = (nn.Conv1d, nn.Conv2d)
_F = torch.nn.functional
ELEMENTWISE_FUNCTIONS = {
    torch.relu, _F.relu, torch.tanh, _F.tanh, torch.sigmoid, _F.sigmoid, _F.gelu, _F.silu,
    _F.elu, _F.leaky_relu, _F.softplus, _F.hardtanh, _F.relu6, _F.mish, torch.exp, torch.sin,
    torch.cos, torch.abs, torch.square, torch.neg,
}  # fmt: skip
ELEMENTWISE_METHODS = {"relu", "tanh", "sigmoid", "exp", "sin", "cos", "abs", "neg", "square"}
ARITHMETIC: dict[Any, Callable[..., Tensor]] = {
    operator.add: torch.add, operator.sub: torch.sub, operator.mul: torch.mul,
    operator.truediv: torch.div, torch.add: torch.add, torch.sub: torch.sub,
    torch.mul: torch.mul, torch.div: torch.div,
}  # fmt: skip
_ARITHMETIC_METHODS: dict[str, Callable[..., Tensor]] = {
    "add": torch.add,
    "sub": torch.sub,
    "mul": torch.mul,
    "div": torch.div,
}


def plain(module: nn.Module, *types: type[nn.Module]) -> bool:
    """Tell whether the module is exactly one of ``types`` (no subclass), without hooks."""
    hooks = (module._forward_hooks, module._forward_pre_hooks)  # noqa: SLF001
    return type(module) in types and not any(hooks)


def _slab(tensor: Tensor, dim: int, index: Tensor) -> Tensor:
    """Return ``tensor``'s entries ``index[b]`` along ``dim``, shape ``(B, *S[:dim], w, ...)``."""
    picked = torch.index_select(tensor, dim, index.reshape(-1))
    shape = (*tensor.shape[:dim], *index.shape, *tensor.shape[dim + 1 :])
    return picked.reshape(shape).movedim(dim, 0)


def _along(vector: Tensor, patch: Patch) -> Tensor:
    """Gather a per-channel vector at the patch's indices, shaped to broadcast with its values."""
    shape = [1] * patch.values.dim()
    shape[0], shape[patch.dim + 1] = patch.values.shape[0], patch.index.shape[1]
    return vector[patch.index].reshape(shape)


@dataclass
class Patch:
    """A batch of values of a tensor that differ from its value at θ only at some indices.

    Attributes
    ----------
    base : Tensor
        The value at θ, shape ``S``.
    dim : int
        The dimension of ``S`` along which the values moved.
    index : Tensor of int64, shape (B, w)
        For each of the batch's ``B`` values, the ``w`` positions along ``dim`` that moved.
    values : Tensor, shape (B, *S[:dim], w, *S[dim + 1:])
        Those positions' values.
    """

    base: Tensor
    dim: int
    index: Tensor
    values: Tensor

    def moved(self) -> Tensor:
        """Return ``values`` minus the base at the same positions: the change alone."""
        return self.values - _slab(self.base, self.dim, self.index)

    def dense(self) -> Tensor:
        """Return the full values, shape ``(B, *S)``."""
        count = self.values.shape[0]
        out = self.base.expand(count, *self.base.shape).clone()
        shape = [1] * self.values.dim()
        shape[0], shape[self.dim + 1] = count, self.index.shape[1]
        where = self.index.reshape(shape).expand_as(self.values)
        return out.scatter_(self.dim + 1, where, self.values)

    def replaced(self, base: Tensor, values: Tensor, dim: int | None = None) -> Patch:
        """Return a patch on a new base with new values (same indices unless ``dim`` moves)."""
        return Patch(base, self.dim if dim is None else dim, self.index, values)


def produce(
    module: nn.Module, name: str, x: Tensor, out: Tensor, local: Tensor, values: Tensor
) -> Patch | None:
    """Return a layer's output with entries ``local`` of its parameter moved to ``values``.

    Parameters
    ----------
    module : nn.Module
        A Linear or Conv layer (anything else gives None).
    name : {"weight", "bias"}
        The parameter moved.
    x, out : Tensor
        The layer's input and output at θ.
    local, values : Tensor, shape (B,)
        The flat index moved in each perturbation, and its new value.

    Returns
    -------
    Patch or None
        None when the layer or its input is not one this handles.
    """
    count = len(local)
    if plain(module, nn.Linear) and x.dim() >= 1 and name in ("weight", "bias"):
        parameter = getattr(module, name)
        delta = values - parameter.reshape(-1)[local]
        last = out.dim() - 1
        rows = (local // x.shape[-1] if name == "weight" else local).reshape(count, 1)
        moved = delta.reshape(count, *[1] * out.dim())
        if name == "weight":
            moved = moved * _slab(x, last, (local % x.shape[-1]).reshape(count, 1))
        return Patch(out, last, rows, _slab(out, last, rows) + moved)
    if not plain(module, *_CONVS) or name not in ("weight", "bias"):
        return None
    conv: Any = module
    if not _unfoldable(conv, x):
        return None
    spatial = x.dim() - 2
    parameter = getattr(module, name)
    delta = values - parameter.reshape(-1)[local]
    if name == "bias":
        channels = local.reshape(count, 1)
        moved = delta.reshape(count, 1, 1, *[1] * spatial)
        return Patch(out, 1, channels, _slab(out, 1, channels) + moved)
    per_output = parameter[0].numel()
    channels = (local // per_output).reshape(count, 1)
    # The input as the columns the layer multiplies its weight with: (N, C·k, positions).
    columns = _columns(conv, x)
    picked = columns.index_select(1, local % per_output)  # (N, B, positions)
    shifted = (picked * delta.reshape(1, count, 1)).movedim(1, 0).unsqueeze(2)
    return Patch(
        out,
        1,
        channels,
        _slab(out, 1, channels) + shifted.reshape(count, out.shape[0], 1, *out.shape[2:]),
    )


def _unfoldable(conv: Any, x: Tensor) -> bool:
    """Tell a 1-d or 2-d convolution of batched input, ungrouped and zero-padded evenly."""
    spatial = len(conv.kernel_size)
    if conv.groups != 1 or conv.padding_mode != "zeros" or spatial > 2 or x.dim() != 2 + spatial:
        return False
    pairs = zip(conv.dilation, conv.kernel_size, strict=True)
    return conv.padding != "same" or all(d * (k - 1) % 2 == 0 for d, k in pairs)


def _columns(conv: Any, x: Tensor) -> Tensor:
    """Return the input unfolded as ``conv`` reads it, ``(N, C·kernel, positions)``, cached."""
    cache = conv.__dict__.setdefault("_gradprobe_columns", {})
    key = (x.data_ptr(), tuple(x.shape))
    if key not in cache:
        cache.clear()
        cache[key] = _unfold(conv, x)
    return cache[key]  # type: ignore[no-any-return]


def _unfold(conv: Any, x: Tensor) -> Tensor:
    """``torch.nn.functional.unfold`` as ``conv`` reads its input (1-d through a 2-d view)."""
    padding = conv.padding
    if padding == "valid":
        padding = tuple(0 for _ in conv.kernel_size)
    elif padding == "same":
        pairs = zip(conv.dilation, conv.kernel_size, strict=True)
        padding = tuple(d * (k - 1) // 2 for d, k in pairs)
    if x.dim() == 4:
        return _F.unfold(x, conv.kernel_size, conv.dilation, padding, conv.stride)
    one = (1, conv.kernel_size[0]), (1, conv.dilation[0]), (0, padding[0]), (1, conv.stride[0])
    return _F.unfold(x.unsqueeze(2), *one)


def propagate(call: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Tensor) -> Patch | None:
    """Apply a layer that keeps a patch a patch to one, or return None.

    ``call`` is the node's module or function (or ``("method", name)``); exactly one of
    ``args`` is a :class:`Patch`, the others are constants; ``out`` is the node's
    output at θ.
    """
    patches = [i for i, a in enumerate(args) if isinstance(a, Patch)]
    if len(patches) != 1 or any(isinstance(v, (Patch, Tensor)) for v in kwargs.values()):
        return None
    position = patches[0]
    patch: Patch = args[position]
    if isinstance(call, nn.Module):
        return _module(call, patch, out) if position == 0 and len(args) == 1 else None
    if isinstance(call, tuple):  # ("method", name): args[0] is the tensor
        method = call[1]
        if position != 0:
            return None
        if method in ELEMENTWISE_METHODS and len(args) == 1 and not kwargs:
            return patch.replaced(out, getattr(patch.values, method)())
        if method in _ARITHMETIC_METHODS and len(args) == 2:
            return _arithmetic(_ARITHMETIC_METHODS[method], patch, args[1], False, out)
        if method == "flatten":
            return _flatten(patch, *args[1:], **kwargs, out=out)
        return None
    if call in ELEMENTWISE_FUNCTIONS and position == 0:
        if any(isinstance(a, Tensor) for a in args[1:]):
            return None
        return patch.replaced(out, call(patch.values, *args[1:], **kwargs))
    function = ARITHMETIC.get(call)
    if function is not None and len(args) == 2 and not kwargs:
        return _arithmetic(function, patch, args[1 - position], position == 1, out)
    if call is torch.flatten and position == 0:
        return _flatten(patch, *args[1:], **kwargs, out=out)
    return None


def _arithmetic(
    function: Callable[..., Tensor], patch: Patch, other: Any, swapped: bool, out: Tensor
) -> Patch | None:
    if isinstance(other, (int, float)):
        constant: Any = other
    elif isinstance(other, Tensor) and other.shape == patch.base.shape == out.shape:
        constant = _slab(other, patch.dim, patch.index)
    else:
        return None
    pair = (constant, patch.values) if swapped else (patch.values, constant)
    return patch.replaced(out, function(*pair))


def _flatten(patch: Patch, start_dim: int = 0, end_dim: int = -1, *, out: Tensor) -> Patch | None:
    rank = patch.base.dim()
    start, end = start_dim % rank, end_dim % rank
    values = patch.values.flatten(start + 1, end + 1)
    if patch.dim < start:
        return patch.replaced(out, values)
    if patch.dim > end:
        return patch.replaced(out, values, patch.dim - (end - start))
    if patch.dim != start:
        return None
    inner = int(torch.tensor(patch.base.shape[start + 1 : end + 1]).prod())
    steps = torch.arange(inner, device=patch.index.device)
    index = (patch.index.unsqueeze(-1) * inner + steps).reshape(len(patch.index), -1)
    return Patch(out, start, index, values)


def _module(module: nn.Module, patch: Patch, out: Tensor) -> Patch | None:
    values = patch.values
    if plain(module, *ELEMENTWISE_MODULES) or (plain(module, *DROPOUT) and not module.training):
        inplace = getattr(module, "inplace", False)
        return patch.replaced(out, module(values.clone() if inplace else values))
    if plain(module, nn.Flatten):
        flatten: Any = module
        return _flatten(patch, flatten.start_dim, flatten.end_dim, out=out)
    if plain(module, *NORMS) and patch.dim == 1:
        return _batch_norm(module, patch, out)
    if plain(module, *_POOLS) and patch.dim == 1 and patch.base.dim() >= 3:
        if getattr(module, "return_indices", False):
            return None
        count, batch = values.shape[:2]
        pooled = module(values.reshape(count * batch, *values.shape[2:]))
        return patch.replaced(out, pooled.reshape(count, batch, *pooled.shape[1:]))
    if plain(module, nn.LayerNorm):
        normalized = len(module.normalized_shape)  # type: ignore[arg-type]
        if patch.dim < patch.base.dim() - normalized:
            return patch.replaced(out, module(values))
    if plain(module, nn.Linear) and patch.dim < patch.base.dim() - 1:
        return patch.replaced(out, module(values))
    return None


def _batch_norm(module: nn.Module, patch: Patch, out: Tensor) -> Patch | None:
    norm: Any = module
    uses_batch = norm.training or norm.running_mean is None
    values = patch.values
    weight = None if norm.weight is None else norm.weight[patch.index].reshape(-1)
    bias = None if norm.bias is None else norm.bias[patch.index].reshape(-1)
    if uses_batch:
        count, batch = values.shape[:2]
        stacked = values.movedim(0, 1).reshape(batch, -1, *values.shape[3:])
        normed = _F.batch_norm(stacked, None, None, weight, bias, True, 0.0, norm.eps)
        return patch.replaced(out, normed.reshape(values.movedim(0, 1).shape).movedim(1, 0))
    scale = torch.rsqrt(_along(norm.running_var, patch) + norm.eps)
    normed = (values - _along(norm.running_mean, patch)) * scale
    if weight is not None:
        normed = normed * _along(norm.weight, patch)
    if bias is not None:
        normed = normed + _along(norm.bias, patch)
    return patch.replaced(out, normed)


def consume(module: nn.Module, patch: Patch, out: Tensor) -> Tensor | None:
    """Return the full output of a Linear or Conv layer whose input is ``patch``, low-rank.

    Returns
    -------
    Tensor of shape (B, *out.shape), or None for another layer or a patch it cannot take.
    """
    moved = patch.moved()
    count, width = patch.index.shape
    if plain(module, nn.Linear) and patch.dim == patch.base.dim() - 1:
        linear: Any = module
        weight = linear.weight.t()[patch.index]  # (B, w, outputs)
        return out + torch.einsum("b...w,bwo->b...o", moved, weight)
    conv: Any = module
    if not plain(module, *_CONVS) or patch.dim != 1:
        return None
    if not _unfoldable(conv, patch.base):
        return None
    batch = moved.shape[1]
    # Unfold the change as the layer reads it, then multiply by the moved channels' weights.
    columns = _unfold(conv, moved.reshape(count * batch, width, *moved.shape[3:]))
    columns = columns.reshape(count, batch, width, -1, columns.shape[-1])
    weight = conv.weight.reshape(conv.weight.shape[0], conv.weight.shape[1], -1)
    weight = weight.movedim(1, 0)[patch.index]  # (B, w, outputs, kernel)
    change = torch.einsum("bnwkp,bwok->bnop", columns, weight).reshape(count, *out.shape)
    return change.add_(out)  # in place: one large temporary fewer
