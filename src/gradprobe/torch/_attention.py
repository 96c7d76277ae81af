"""Perturbations of ``nn.MultiheadAttention``'s parameters, computed head by head.

Moving one entry of the packed input projection moves one column of the queries,
keys or values of one head, by δ times a column of that input (δ alone for a bias
entry). A query or key column changes that head's scores by a rank-1 term, so only
that head's softmax and weighted sum are computed again; a value column changes the
head's output column by the attention weights times the moved column; an entry of
the output projection moves one output column by δ times a column of the heads'
concatenated outputs. :func:`attention_outputs` returns the layer's output for a
whole batch of such perturbations this way, without running the layer (or
``torch.vmap``) again.

Every value is the layer's output up to rounding: the changes are computed from the
same factors as the layer's (the scores, the softmax, the products with the
projections), and added to its output at θ.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["attention_node", "attention_outputs", "supported"]

_PARAMETERS = ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")
_KEYWORDS = {"key_padding_mask", "need_weights", "attn_mask", "average_attn_weights", "is_causal"}


def _plain(module: nn.Module) -> bool:
    hooks = (module._forward_hooks, module._forward_pre_hooks)  # noqa: SLF001
    return type(module) is nn.MultiheadAttention and not any(hooks)


def supported(module: nn.Module, name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> bool:
    """Tell whether :func:`attention_outputs` handles this layer, parameter and call.

    A plain ``nn.MultiheadAttention`` with a packed input projection, no ``bias_k`` /
    ``bias_v``, no zero attention, no dropout in effect; batched 3-d query, key and
    value; a 2-d ``attn_mask`` and a ``key_padding_mask`` (boolean or additive) are
    supported, ``is_causal`` is not.
    """
    attention: Any = module
    if not _plain(module) or name not in _PARAMETERS or len(args) != 3:
        return False
    if set(kwargs) - _KEYWORDS or kwargs.get("is_causal", False):
        return False
    if not attention._qkv_same_embed_dim or attention.bias_k is not None:  # noqa: SLF001
        return False
    if attention.add_zero_attn or (attention.training and attention.dropout > 0):
        return False
    if attention.in_proj_bias is None and name == "in_proj_bias":
        return False
    if not all(isinstance(a, Tensor) and a.dim() == 3 for a in args):
        return False
    mask = kwargs.get("attn_mask")
    padding = kwargs.get("key_padding_mask")
    return (mask is None or (isinstance(mask, Tensor) and mask.dim() == 2)) and (
        padding is None or (isinstance(padding, Tensor) and padding.dim() == 2)
    )


def _additive(mask: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """Return a boolean mask (True: not attended) as -inf / 0, an additive one as it is."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(
            mask, float("-inf")
        )
    return mask.to(dtype)


@dataclass
class _Factors:
    """The layer's intermediate values at θ, batch first: ``(N, L, E)`` and per head."""

    inputs: tuple[Tensor, Tensor, Tensor]  # query, key, value inputs, (N, L or S, E)
    q: Tensor  # (N, H, L, d), already scaled by 1/sqrt(d)
    k: Tensor  # (N, H, S, d)
    v: Tensor  # (N, H, S, d)
    mask: Tensor | None  # additive, broadcasting to (N, H, L, S)
    scores: Tensor  # (N, H, L, S), mask included
    weights: Tensor  # softmax of the scores, (N, H, L, S)
    heads: Tensor  # (N, H, L, d), the weighted sums
    joined: Tensor  # (N, L, E), the heads side by side (the output projection's input)


def _factors(attention: Any, args: Sequence[Tensor], kwargs: Mapping[str, Any]) -> _Factors:
    first = attention.batch_first
    query, key, value = (a if first else a.transpose(0, 1) for a in args)
    heads, width = attention.num_heads, attention.head_dim
    weight, bias = attention.in_proj_weight, attention.in_proj_bias
    chunks = weight.chunk(3)
    biases = bias.chunk(3) if bias is not None else (None, None, None)

    def project(x: Tensor, part: int) -> Tensor:
        out = nn.functional.linear(x, chunks[part], biases[part])
        return out.reshape(*x.shape[:2], heads, width).transpose(1, 2)

    q = project(query, 0) * (1.0 / width**0.5)
    k, v = project(key, 1), project(value, 2)
    mask = _additive(kwargs.get("attn_mask"), q.dtype)
    padding = _additive(kwargs.get("key_padding_mask"), q.dtype)
    if padding is not None:
        padding = padding[:, None, None, :]
        mask = padding if mask is None else mask + padding
    scores = q @ k.transpose(-1, -2)
    if mask is not None:
        scores = scores + mask
    weights = torch.softmax(scores, dim=-1)
    out = weights @ v
    joined = out.transpose(1, 2).reshape(*query.shape[:2], heads * width)
    return _Factors((query, key, value), q, k, v, mask, scores, weights, out, joined)


def attention_outputs(
    module: nn.Module,
    name: str,
    args: Sequence[Tensor],
    kwargs: Mapping[str, Any],
    out: Tensor,
    local: Tensor,
    values: Tensor,
    kept: dict[Any, Any] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Return the layer's output with entry ``local[b]`` of parameter ``name`` set to ``values[b]``.

    Parameters
    ----------
    module : nn.MultiheadAttention
        A layer :func:`supported` accepts with ``name``, ``args`` and ``kwargs``.
    name : str
        ``"in_proj_weight"``, ``"in_proj_bias"``, ``"out_proj.weight"`` or ``"out_proj.bias"``.
    args, kwargs : sequence, mapping
        The layer's call at θ: query, key, value and keyword arguments.
    out : Tensor
        The layer's attention output at θ, shape ``(N, L, E)`` (``(L, N, E)`` unless batch first).
    local, values : Tensor, shape (B,)
        The flat index moved in each perturbation, and its new value.
    kept : dict, optional
        Keeps the layer's intermediate values at θ between calls (the layer, its
        parameters and arguments must not change while it is used).

    Returns
    -------
    outputs : Tensor of shape (B, *out.shape)
    coefficients : Tensor of shape (B, *out.shape[:-1], k)
    directions : Tensor of shape (B, k, E)
        ``outputs = out + coefficients @ directions``: every change is a combination of
        ``k`` directions per perturbation (1, or a head's width for a query or key).
    """
    attention: Any = module
    first = attention.batch_first
    base = out if first else out.transpose(0, 1)  # (N, L, E)
    key = ("attention", id(module), *map(id, args), *map(id, kwargs.values()))
    factors = None if kept is None else kept.get(key)
    if factors is None:
        factors = _factors(attention, args, kwargs)
        if kept is not None:
            kept[key] = factors
    parameter = attention.get_parameter(name)
    delta = values - parameter.reshape(-1)[local]
    count, embed = len(local), attention.embed_dim
    if name.startswith("out_proj"):
        rows = local // embed if name.endswith("weight") else local
        if name.endswith("weight"):
            moved = factors.joined.index_select(-1, local % embed).movedim(-1, 0)  # (B, N, L)
        else:
            moved = torch.ones(count, *base.shape[:2], dtype=base.dtype, device=base.device)
        coefficients = (moved * delta.reshape(count, 1, 1)).unsqueeze(-1)
        directions = torch.zeros(count, 1, embed, dtype=base.dtype, device=base.device)
        directions[torch.arange(count, device=base.device), 0, rows] = 1.0
    else:
        rows = local // embed if name == "in_proj_weight" else local
        part, column = rows // embed, rows % embed
        width = attention.head_dim if bool((part < 2).any()) else 1
        coefficients = base.new_zeros(count, *base.shape[:2], width)
        directions = base.new_zeros(count, width, embed)
        for kind in range(3):
            chosen = torch.nonzero(part == kind).reshape(-1)
            if len(chosen):
                pair = _projected_change(
                    attention, factors, kind, column[chosen], local[chosen], delta[chosen], name
                )
                coefficients[chosen, ..., : pair[0].shape[-1]] = pair[0]
                directions[chosen, : pair[1].shape[1]] = pair[1]
    result = torch.baddbmm(
        base.reshape(1, -1, embed),
        coefficients.reshape(count, -1, coefficients.shape[-1]),
        directions,
    ).reshape(count, *base.shape)
    if not first:
        return result.transpose(1, 2), coefficients.transpose(1, 2), directions
    return result, coefficients, directions


def _projected_change(
    attention: Any,
    factors: _Factors,
    kind: int,
    column: Tensor,
    local: Tensor,
    delta: Tensor,
    name: str,
) -> tuple[Tensor, Tensor]:
    """Return the output's change when column ``column[b]`` of the queries, keys or values moves.

    ``kind`` is 0, 1, 2 for queries, keys, values; the column moves by ``delta[b]`` times
    input column ``local[b] % E`` of that input (by ``delta[b]`` for the bias). Returns
    coefficients ``(B, N, L, k)`` and directions ``(B, k, E)``: k is 1 for a value column,
    the head's width for a query or key column.
    """
    count = len(column)
    width = attention.head_dim
    head, inner = column // width, column % width
    source = factors.inputs[kind]  # (N, L or S, E)
    if name == "in_proj_weight":
        moved = source.index_select(-1, local % attention.embed_dim).movedim(-1, 0)
    else:
        moved = torch.ones(count, *source.shape[:2], dtype=source.dtype, device=source.device)
    moved = moved * delta.reshape(count, 1, 1)  # (B, N, L or S): the column's change
    weight: Tensor = attention.out_proj.weight  # (E, E)
    if kind == 2:
        weights = factors.weights.index_select(1, head).movedim(1, 0)  # (B, N, L, S)
        mixed = weights @ moved.unsqueeze(-1)  # (B, N, L, 1)
        return mixed, weight.t()[column].unsqueeze(1)
    scores = factors.scores.index_select(1, head).movedim(1, 0)  # (B, N, L, S)
    if kind == 0:
        keys = factors.k.index_select(1, head).movedim(1, 0)  # (B, N, S, d)
        other = torch.gather(keys, -1, inner.reshape(count, 1, 1, 1).expand(*keys.shape[:3], 1))
        keyed = other.squeeze(-1).unsqueeze(-2)  # (B, N, 1, S)
        scores = scores + (moved * (1.0 / width**0.5)).unsqueeze(-1) * keyed
    else:
        queries = factors.q.index_select(1, head).movedim(1, 0)  # (B, N, L, d)
        index = inner.reshape(count, 1, 1, 1).expand(*queries.shape[:3], 1)
        other = torch.gather(queries, -1, index)  # (B, N, L, 1)
        scores = scores + other * moved.unsqueeze(-2)
    values = factors.v.index_select(1, head).movedim(1, 0)  # (B, N, S, d)
    before = factors.heads.index_select(1, head).movedim(1, 0)  # (B, N, L, d)
    change = torch.softmax(scores, dim=-1) @ values - before  # (B, N, L, d)
    blocks = weight.reshape(weight.shape[0], attention.num_heads, width)  # (E, H, d)
    return change, blocks.index_select(1, head).permute(1, 2, 0)  # (B, d, E)


def attention_node(
    node: Any,
    module: nn.Module,
    name: str,
    resolved: tuple[tuple[Any, ...], dict[str, Any]],
    cached: Any,
    local: Tensor,
    values: Tensor,
    kept: dict[Any, Any] | None = None,
) -> tuple[Tensor, Tensor, Tensor] | None:
    """Return the batched value of a ``torch.fx`` node calling ``module``, or None.

    ``name`` is the perturbed parameter's name inside the module, ``resolved`` the node's
    arguments at θ, ``cached`` its value there, ``kept`` as for :func:`attention_outputs`.
    The result, as :func:`attention_outputs`
    gives it, stands for the layer's output: only where its weights are not used
    (``need_weights=False``, or ``weights`` never read), else None, as for a layer
    :func:`supported` refuses.
    """
    args, kwargs = resolved
    if not supported(module, name, args, kwargs) or not isinstance(cached, tuple):
        return None
    for user in node.users:
        index = user.args[1] if user.target is operator.getitem and len(user.args) == 2 else None
        if index != 0 and (index != 1 or user.users):
            return None
    return attention_outputs(module, name, args, kwargs, cached[0], local, values, kept)
