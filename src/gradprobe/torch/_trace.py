"""Tracing a module with ``torch.fx``, and the small helpers the cut graph reads nodes with.

:func:`trace` gives the graph of a module, or of its children as opaque layers when
its own code cannot be traced; :func:`attention_slow_path` makes attention run in the
composite form ``torch.vmap`` batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.fx
from torch import Tensor, nn
from torch.fx import Node
from torch.utils._pytree import tree_flatten, tree_unflatten

from gradprobe._validate import unless_interrupt

__all__ = ["attention_slow_path", "clone", "fetch", "in_place", "numel", "trace"]


@contextmanager
def attention_slow_path() -> Iterator[None]:
    """Run attention through its composite form, which ``torch.vmap`` batches.

    ``nn.MultiheadAttention``'s fused fast path (eval mode, no autograd) and the fused
    scaled dot-product kernels have no batching rule; the composite forms compute the
    same function. The global settings are restored afterwards.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    mha = torch.backends.mha
    before = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        # The math form of scaled dot-product attention: the fused CPU kernels have no
        # batching rule either.
        with sdpa_kernel([SDPBackend.MATH]):
            yield
    finally:
        mha.set_fastpath_enabled(before)


def trace(module: nn.Module) -> torch.fx.GraphModule | None:
    """Trace ``module``; if its code cannot be traced, treat its children as opaque layers."""
    try:
        return torch.fx.symbolic_trace(module)
    except BaseException as error:  # noqa: BLE001 - data-dependent control flow, untraceable calls, …
        unless_interrupt(error)
        pass
    children = {id(child) for child in module.children()}

    class Shallow(torch.fx.Tracer):
        def is_leaf_module(self, m: nn.Module, qualified_name: str) -> bool:
            return id(m) in children or super().is_leaf_module(m, qualified_name)

    try:
        return torch.fx.GraphModule(module, Shallow().trace(module))
    except BaseException as error:  # noqa: BLE001
        unless_interrupt(error)
        return None


def fetch(module: nn.Module, target: str) -> Any:
    """Return the attribute at a dotted path, such as a parameter ``layer.weight``."""
    value: Any = module
    for part in target.split("."):
        value = getattr(value, part)
    return value


def numel(value: Any) -> int:
    """Return how many values the tensors in a (nested) value hold."""
    flat, _ = tree_flatten(value)
    return sum(leaf.numel() for leaf in flat if isinstance(leaf, Tensor))


def clone(value: Any) -> Any:
    """Return a copy of a (nested) value with every tensor cloned."""
    flat, spec = tree_flatten(value)
    return tree_unflatten([v.clone() if isinstance(v, Tensor) else v for v in flat], spec)


def in_place(node: Node, graph: torch.fx.GraphModule) -> bool:
    """Whether a node may write into one of its inputs."""
    if node.op == "call_method":
        return str(node.target).endswith("_")
    if node.op == "call_function":
        return bool(node.kwargs.get("inplace")) or getattr(node.target, "__name__", "").endswith(
            "_"
        )
    if node.op == "call_module":
        return bool(getattr(graph.get_submodule(str(node.target)), "inplace", False))
    return False
