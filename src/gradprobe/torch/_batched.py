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

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gradprobe.torch._lowrank import scratch
from gradprobe.torch._rank1 import (
    ARITHMETIC,
    DROPOUT,
    ELEMENTWISE_FUNCTIONS,
    ELEMENTWISE_METHODS,
    ELEMENTWISE_MODULES,
    NORMS,
    plain,
)

__all__ = ["apply", "gelu", "gelu_near"]

_TRAILING = (*ELEMENTWISE_MODULES, nn.Linear, nn.LayerNorm)


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
    kept: dict[Any, Tensor] | None = None,
    near: Tensor | None = None,
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
    kept : dict, optional
        Memory kept between batches for temporaries (see ``_lowrank.scratch``).
    near : Tensor, optional
        The first argument's value at θ (a GELU is then evaluated from its Taylor
        polynomial there, see :func:`gelu_near`).
    """
    if not isinstance(out, Tensor) or any(isinstance(v, Tensor) for v in kwargs.values()):
        return None
    if not any(batched) or (not batched[0] and call not in ARITHMETIC):
        return None
    first = args[0]
    if isinstance(call, nn.Module):
        if len(args) != 1 or kwargs:
            return None
        if plain(call, nn.ReLU) and reuse:
            return torch.relu_(first)
        if plain(call, nn.GELU) and getattr(call, "approximate", "none") == "none":
            return _gelu(first, near, out, kept if reuse else None)
        if plain(call, *_TRAILING) or (plain(call, *DROPOUT) and not call.training):
            if getattr(call, "inplace", False):
                return None
            return call(first)  # type: ignore[no-any-return]
        if plain(call, nn.Flatten):
            flatten: Any = call
            return torch.flatten(first, _shifted(flatten.start_dim), _shifted(flatten.end_dim))
        if plain(call, *NORMS) and not call.training and first.dim() >= 3:
            return _batch_norm(call, first, reuse)
        return None
    if isinstance(call, tuple):
        method = call[1]
        if method in ELEMENTWISE_METHODS and len(args) == 1 and not kwargs:
            return getattr(first, method)()  # type: ignore[no-any-return]
        if method == "flatten" and all(isinstance(a, int) for a in args[1:]) and not kwargs:
            dims = [_shifted(int(a)) for a in args[1:]]
            return first.flatten(*dims)  # type: ignore[no-any-return]
        return None
    if call is torch.nn.functional.gelu and len(args) == 1 and not kwargs and batched[0]:
        return _gelu(first, near, out, None)
    if call in ELEMENTWISE_FUNCTIONS and batched == [True, *([False] * (len(args) - 1))]:
        if any(isinstance(a, Tensor) for a in args[1:]):
            return None
        return call(*args, **kwargs)  # type: ignore[no-any-return]
    if call in ARITHMETIC and len(args) == 2 and not kwargs:
        return _arithmetic(call, args, batched, out)
    return None


def _gelu(x: Tensor, near: Tensor | None, at: Tensor, kept: dict[Any, Tensor] | None) -> Tensor:
    found = None if near is None else gelu_near(x, near, at, kept)
    return gelu(x, kept) if found is None else found


def gelu(x: Tensor, kept: dict[Any, Tensor] | None = None) -> Tensor:
    """Return the exact GELU ``x · Φ(x) = x (1 + erf(x / √2)) / 2``, as ``nn.GELU()`` defines it.

    The same formula as torch's kernel, in place on one new tensor: torch's float64
    kernel took about 1.6 times as long on a CPU here (the values agree to a few ulp of
    ``x``).
    With ``kept``, ``x`` is overwritten and the temporary is memory kept there.
    """
    if kept is None:
        out = torch.mul(x, 0.5**0.5)
        return out.erf_().add_(1.0).mul_(x).mul_(0.5)
    temporary = scratch(kept, "gelu", tuple(x.shape), x)
    torch.mul(x, 0.5**0.5, out=temporary).erf_().add_(1.0)
    return x.mul_(temporary).mul_(0.5)


# The largest fourth derivative of GELU over 24, 4 φ(0) / 24 = 0.0665 (at x = 0), rounded
# up: the remainder of the cubic Taylor polynomial is at most this times the step**4.
_GELU_FOURTH = 0.067


def gelu_near(
    x: Tensor, near: Tensor, at: Tensor, kept: dict[Any, Tensor] | None = None
) -> Tensor | None:
    """Return GELU of ``x`` (batched) from its value ``at`` = GELU(``near``), or None.

    A perturbation moves the input by a little: ``GELU(near + h)`` is its cubic Taylor
    polynomial at ``near`` plus a remainder of at most 0.067 h⁴, which is used only
    where that bound is below the rounding of the layer's output (2⁻⁵³ times its largest
    value), so the values are GELU's to rounding without computing ``erf`` again.
    Returns None (compute it exactly) for steps too large for that. With ``kept``,
    ``x`` is overwritten and the temporaries are memory kept there.
    """
    if x.shape[1:] != near.shape or at.shape != near.shape or not x.numel():
        return None
    step = torch.empty_like(x) if kept is None else scratch(kept, "gelu", tuple(x.shape), x)
    torch.sub(x, near, out=step)
    low, high = torch.aminmax(step)
    largest = max(-float(low), float(high))
    if not _GELU_FOURTH * largest**4 <= 2.0**-53 * float(at.abs().max()):
        return None
    terms = _taylor(near, kept)
    out = torch.empty_like(x) if kept is None else x
    torch.addcmul(terms[1], step, terms[2], out=out)
    torch.addcmul(terms[0], step, out, out=out)
    return torch.addcmul(at, step, out, out=out)


def _taylor(near: Tensor, kept: dict[Any, Tensor] | None) -> Tensor:
    """Return GELU's Taylor coefficients at ``near``: its 1st, 2nd / 2 and 3rd derivative / 6."""
    key = ("gelu-taylor", id(near), near.data_ptr())
    if kept is not None and key in kept:
        return kept[key]
    density = torch.exp(-0.5 * near * near) * (2 * torch.pi) ** -0.5
    cumulative = 0.5 * (1.0 + torch.erf(near * 0.5**0.5))
    square = near * near
    first = cumulative + near * density
    second = density * (2.0 - square) * 0.5
    third = density * near * (square - 4.0) / 6.0
    terms = torch.stack([first, second, third])
    if kept is not None:
        kept[key] = terms
    return terms


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
