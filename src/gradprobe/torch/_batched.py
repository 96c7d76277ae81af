"""Layers that take a batch of values as one more leading axis, without ``torch.vmap``.

A ``Linear``, ``LayerNorm`` or an activation acts on its input's trailing dimensions,
so a batch of perturbed values ``(B, *S)`` goes through it as it is; batch norm in
eval mode is an affine map per channel, applied at the channel axis moved by one;
flatten and elementwise arithmetic only need their dimensions shifted. Running these
directly avoids ``torch.vmap``'s copies between layout conventions, which cost more
than the layers themselves on large activations (a vmapped batch norm took ten times
a ReLU on the same tensor here). :func:`apply` returns None for anything else, which
then runs under ``torch.vmap``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["apply"]

_F = nn.functional
_TRAILING = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softsign,
    nn.Tanhshrink, nn.LogSigmoid, nn.Identity, nn.Linear, nn.LayerNorm,
)  # fmt: skip
_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_ELEMENTWISE = {
    torch.relu, _F.relu, torch.tanh, _F.tanh, torch.sigmoid, _F.sigmoid, _F.gelu, _F.silu,
    _F.elu, _F.leaky_relu, _F.softplus, _F.hardtanh, _F.relu6, _F.mish, torch.exp, torch.sin,
    torch.cos, torch.abs, torch.square, torch.neg,
}  # fmt: skip
_METHODS = {"relu", "tanh", "sigmoid", "exp", "sin", "cos", "abs", "neg", "square"}
_ARITHMETIC = {
    operator.add, operator.sub, operator.mul, operator.truediv,
    torch.add, torch.sub, torch.mul, torch.div,
}  # fmt: skip


def _plain(module: nn.Module, *types: type[nn.Module]) -> bool:
    hooks = (module._forward_hooks, module._forward_pre_hooks)  # noqa: SLF001
    return type(module) in types and not any(hooks)


def _shifted(dim: int) -> int:
    """Return a dimension of one value as a dimension of the batch (negative ones stay)."""
    return dim + 1 if dim >= 0 else dim


def apply(
    call: Any,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    batched: Sequence[bool],
    out: Any,
    reuse: bool = False,
) -> Tensor | None:
    """Apply a layer to batched arguments directly, or return None to use ``torch.vmap``.

    Parameters
    ----------
    call : nn.Module, function or ``("method", name)``
        The node's layer.
    args : sequence
        Its arguments; those marked in ``batched`` carry a leading batch axis.
    kwargs : dict
        Its keyword arguments (constants only).
    batched : sequence of bool
        Which of ``args`` are batched.
    out : object
        The node's value at θ, one item of the batch (for shapes).
    reuse : bool, default=False
        The first argument is a temporary no other node reads: a ReLU or batch norm may
        overwrite it (large fresh tensors are slow to allocate on some systems).
    """
    if not isinstance(out, Tensor) or any(isinstance(v, Tensor) for v in kwargs.values()):
        return None
    if not any(batched) or (not batched[0] and call not in _ARITHMETIC):
        return None
    first = args[0]
    if isinstance(call, nn.Module):
        if len(args) != 1 or kwargs:
            return None
        if _plain(call, nn.ReLU) and reuse:
            return torch.relu_(first)
        if _plain(call, *_TRAILING) or (_plain(call, *_DROPOUT) and not call.training):
            if getattr(call, "inplace", False):
                return None
            return call(first)  # type: ignore[no-any-return]
        if _plain(call, nn.Flatten):
            flatten: Any = call
            return torch.flatten(first, _shifted(flatten.start_dim), _shifted(flatten.end_dim))
        if _plain(call, *_NORMS) and not call.training and first.dim() >= 3:
            return _batch_norm(call, first, reuse)
        return None
    if isinstance(call, tuple):
        method = call[1]
        if method in _METHODS and len(args) == 1 and not kwargs:
            return getattr(first, method)()  # type: ignore[no-any-return]
        if method == "flatten" and all(isinstance(a, int) for a in args[1:]) and not kwargs:
            dims = [_shifted(int(a)) for a in args[1:]]
            return first.flatten(*dims)  # type: ignore[no-any-return]
        return None
    if call in _ELEMENTWISE and batched == [True, *([False] * (len(args) - 1))]:
        if any(isinstance(a, Tensor) for a in args[1:]):
            return None
        return call(*args, **kwargs)  # type: ignore[no-any-return]
    if call in _ARITHMETIC and len(args) == 2 and not kwargs:
        return _arithmetic(call, args, batched, out)
    return None


def _arithmetic(
    call: Any, args: Sequence[Any], batched: Sequence[bool], out: Tensor
) -> Tensor | None:
    """Return ``a ∘ b`` with one or both batched, while the batch axis lines up on the left."""
    for value, is_batched in zip(args, batched, strict=True):
        if isinstance(value, Tensor):
            rank = value.dim() - 1 if is_batched else value.dim()
            if rank != out.dim() and (is_batched or rank > out.dim()):
                return None
        elif not isinstance(value, (int, float)):
            return None
    return call(*args)  # type: ignore[no-any-return]


def _batch_norm(module: nn.Module, x: Tensor, reuse: bool) -> Tensor | None:
    norm: Any = module
    if norm.running_mean is None:
        return None
    shape = [1] * x.dim()
    shape[2] = -1
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    if norm.bias is not None:
        shift = shift + norm.bias
    if reuse:
        return x.mul_(scale.reshape(shape)).add_(shift.reshape(shape))
    result: Tensor = x * scale.reshape(shape) + shift.reshape(shape)
    return result
