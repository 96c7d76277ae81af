"""Batched values that differ from their value at θ by a few directions per position.

An attention parameter's perturbation changes the layer's output at every position by
a combination of a few fixed directions: ``out(θ) + C @ U`` with coefficients ``C`` of
shape ``(B, ..., k)`` and directions ``U`` of shape ``(B, k, E)`` (one output column
for the output projection or a value column, the head's columns of the output
projection for a query or key column). A residual sum with a constant keeps that
form; a ``LayerNorm`` over the last axis does not, but the ``Linear`` after it can
still be computed without its matrix product: with ``z' = z + C @ U`` the norm's
input and ``r'`` its inverse standard deviation per position,

    Linear(LayerNorm(z')) = r' · (A + C @ M) + (W b + c),
    A = ((z - mean z) · g) Wᵀ  (once, at θ),  M = ((U - mean U) · g) Wᵀ  (per perturbation),

which costs ``k`` multiply-adds per output value instead of ``E``. Every value is the
layer's own up to rounding: the identity is exact, ``r'`` is the norm's own statistic
of ``z'``, and the terms added are of the size of those the layer adds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from gradprobe.torch._rank1 import ARITHMETIC, plain

__all__ = ["Batched", "Low", "follow", "linear_after_norm", "scratch", "step"]


@dataclass
class Low:
    """The change of a batched value as ``coefficients @ directions``.

    Attributes
    ----------
    coefficients : Tensor, shape (B, *S[:-1], k)
    directions : Tensor, shape (B, k, S[-1])
    normed : tuple, optional
        For a LayerNorm's output: the norm, its input's low-rank change, the input
        (batched ``(B, *S)`` and at θ ``S``) and the norm's inverse standard deviations
        of the batched input, ``(B, *S[:-1], 1)``.
    """

    coefficients: Tensor
    directions: Tensor
    normed: tuple[nn.LayerNorm, Low, Tensor, Tensor, Tensor] | None = None


@dataclass
class Batched:
    """A node's values for every perturbation of a batch: tensors with a leading batch axis.

    ``low`` describes the change low-rank where it is known (a :class:`Low`, or for a
    tuple value a tuple of them and None).
    """

    value: Any
    low: Any = None


def follow(
    call: Any, args: Sequence[Any], batched: Sequence[bool], base: Sequence[Any]
) -> Low | None:
    """Return the low-rank change of a node's output from its arguments', or None.

    ``args`` are the node's arguments (a :class:`Batched` where ``batched``), ``base``
    their values at θ. A sum or difference with a constant keeps the change (negated
    when subtracted from the constant); anything else drops it (a LayerNorm is
    :func:`step`'s).
    """
    lows = [a.low if isinstance(a, Batched) else None for a in args]
    if sum(batched) != 1 or not any(isinstance(low, Low) for low in lows):
        return None
    position = list(batched).index(True)
    low = lows[position]
    if not isinstance(low, Low) or low.normed is not None:
        return None
    if isinstance(call, nn.Module):
        return None
    if ARITHMETIC.get(call) not in (torch.add, torch.sub) or len(args) != 2:
        return None
    other = args[1 - position]
    if isinstance(other, Tensor) and other.shape != base[position].shape:
        return None  # a broadcast that widens the value
    if ARITHMETIC[call] is torch.sub and position == 1:
        return Low(-low.coefficients, low.directions)
    return low


def step(
    call: Any, argument: Batched, base: Tensor, cache: dict[Any, Tensor], node: Any = None
) -> tuple[Tensor, Low | None] | None:
    """Return a layer's batched output and its change for an input with a low-rank change.

    A plain LayerNorm over the last axis is computed by its own kernel, keeping its
    statistics and its input for the Linear after it; that Linear is computed by
    :func:`linear_after_norm` (into memory kept under ``node``, the graph node it
    computes). None for any other layer (it runs as usual).
    """
    low = argument.low
    if not isinstance(low, Low) or not isinstance(call, nn.Module):
        return None
    norm: Any = call
    if plain(call, nn.LayerNorm) and len(norm.normalized_shape) == 1 and low.normed is None:
        x = argument.value
        out, _, rstd = torch.native_layer_norm(
            x, norm.normalized_shape, norm.weight, norm.bias, norm.eps
        )
        return out, Low(low.coefficients, low.directions, (norm, low, x, base, rstd))
    if isinstance(call, nn.Linear):
        linear = linear_after_norm(call, low, cache, node)
        return None if linear is None else (linear, None)
    return None


def scratch(cache: dict[Any, Tensor], key: Any, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """Return a tensor of ``shape`` kept in ``cache`` under ``key``, its values undefined."""
    found = cache.get(key)
    if found is None or found.shape != shape:
        found = cache[key] = torch.empty(shape, dtype=like.dtype, device=like.device)
    return found


def linear_after_norm(
    linear: nn.Linear, low: Low, cache: dict[Any, Tensor], node: Any = None
) -> Tensor | None:
    """Return a plain Linear's batched output when its input is a LayerNorm's, or None.

    ``low.normed`` holds the norm and its input's change; ``cache`` keeps ``A`` of the
    module docstring between batches (keyed by the input at θ), and the memory of the
    output, which the next batch with the same ``node`` overwrites.
    """
    if low.normed is None or not plain(linear, nn.Linear):
        return None
    norm, change, moved, base, rstd = low.normed
    weight = linear.weight
    key = id(base), id(linear)
    if key not in cache:
        centered = base - base.mean(-1, keepdim=True)
        if norm.weight is not None:
            centered = centered * norm.weight
        cache[key] = centered @ weight.t()
    directions = change.directions - change.directions.mean(-1, keepdim=True)
    if norm.weight is not None:
        directions = directions * norm.weight
    mixed = directions @ weight.t()  # (B, k, H)
    count = len(moved)
    coefficients = change.coefficients.reshape(count, -1, change.coefficients.shape[-1])
    scale = rstd.reshape(count, -1, 1)  # the norm's own statistic of its input
    product = cache[key].reshape(1, -1, weight.shape[0])
    # Into memory kept between batches: a fresh tensor of this size costs more in page
    # faults than the arithmetic (nothing outside the batch keeps the node's value).
    out = scratch(cache, ("linear", *key, node), (count, *product.shape[1:]), product)
    if coefficients.shape[-1] == 1:  # an outer product: faster as a broadcast
        torch.addcmul(product, coefficients, mixed, out=out)
    else:
        torch.baddbmm(product, coefficients, mixed, out=out)
    out.mul_(scale)
    shift: Tensor | None = linear.bias
    if norm.bias is not None:
        shifted = norm.bias @ weight.t()
        shift = shifted if shift is None else shift + shifted
    if shift is not None:
        out.add_(shift)
    return out.reshape(count, *base.shape[:-1], weight.shape[0])
