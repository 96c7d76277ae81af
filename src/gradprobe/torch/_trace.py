"""Tracing a module with ``torch.fx``, and the small helpers the cut graph reads nodes with.

:func:`trace` gives the graph of a module, or of its children as opaque layers when
its own code cannot be traced; :class:`Traced` runs it once at θ, keeps every node's
value and runs any node again with other inputs; :func:`attention_slow_path` makes
attention run in the composite form ``torch.vmap`` batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.fx
from torch import Tensor, nn
from torch.func import functional_call
from torch.fx import Node
from torch.utils._pytree import tree_flatten, tree_unflatten

from gradprobe._validate import unless_interrupt

__all__ = ["Traced", "attention_slow_path", "clone", "fetch", "in_place", "numel", "trace"]


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


class Traced:
    """A traced module run once at θ: every node's value, and how to run a node again.

    Parameters
    ----------
    graph : torch.fx.GraphModule
        The traced float64 copy of the module.
    positional : sequence
        The module's positional arguments, as the check passes them.
    keywords : mapping of str to object
        Its keyword arguments.
    tail : callable
        The loss of the module's output, shape ``(1,)``.
    """

    def __init__(
        self,
        graph: torch.fx.GraphModule,
        positional: Sequence[Any],
        keywords: Mapping[str, Any],
        tail: Callable[[Any], Tensor],
    ) -> None:
        self.graph, self.tail = graph, tail
        self.parameters = dict(graph.named_parameters())
        self.placeholders: dict[str, Node] = {}
        self.cache: dict[Node, Any] = {}
        given = {**{f"input{i}": v for i, v in enumerate(positional)}, **keywords}
        for i, node in enumerate(n for n in graph.graph.nodes if n.op == "placeholder"):
            key = f"input{i}" if i < len(positional) else str(node.target)
            if key not in given and not node.args:
                raise ValueError(f"no value for the module's argument {node.target}")
            self.placeholders[key] = node
            self.cache[node] = given[key] if key in given else node.args[0]
        # A layer that writes into its input would change a value kept here: keep copies.
        mutating = any(in_place(node, graph) for node in graph.graph.nodes)
        for node in graph.graph.nodes:
            if node.op == "placeholder":
                continue
            value = self._execute(node, self._resolve(node, {}), None)
            self.cache[node] = clone(value) if mutating else value

    @property
    def loss(self) -> Tensor:
        """The loss at θ, as the graph computes it."""
        output = next(n for n in reversed(self.graph.graph.nodes) if n.op == "output")
        return self.tail(self.cache[output])

    def layer(self, node: Node) -> Any:
        """Return what a call node calls: its module, its function, or ``("method", name)``."""
        if node.op == "call_module":
            return self.graph.get_submodule(str(node.target))
        if node.op == "call_method":
            return ("method", node.target)
        return node.target

    def _resolve(
        self, node: Node, env: Mapping[Node, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        def value(n: Node) -> Any:
            return env[n] if n in env else self.cache[n]

        args = torch.fx.node.map_arg(node.args, value)
        kwargs = torch.fx.node.map_arg(node.kwargs, value)
        return tuple(args), dict(kwargs)

    def _execute(
        self, node: Node, resolved: tuple[tuple[Any, ...], dict[str, Any]], moved: Any
    ) -> Any:
        """Run one node; ``moved`` is ``(names, value)`` of a perturbed parameter it may use."""
        args, kwargs = resolved
        if node.op == "output":
            return args[0]
        if node.op == "get_attr":
            if moved is not None and node.target in moved[0]:
                return moved[1]
            return fetch(self.graph, str(node.target))
        if node.op == "call_function":
            return node.target(*args, **kwargs)  # type: ignore[operator]
        if node.op == "call_method":
            return getattr(args[0], str(node.target))(*args[1:], **kwargs)
        submodule = self.graph.get_submodule(str(node.target))
        prefix = f"{node.target}."
        inside = [a[len(prefix) :] for a in moved[0] if a.startswith(prefix)] if moved else []
        if moved is not None and inside:
            return functional_call(submodule, dict.fromkeys(inside, moved[1]), args, kwargs)
        return submodule(*args, **kwargs)

    def aliases(self, name: str) -> tuple[str, ...]:
        """Return every name the tensor ``name`` goes by (a tied weight has several)."""
        if name not in self.parameters:
            return (name,)
        tensor = self.parameters[name]
        pairs = self.graph.named_parameters(remove_duplicate=False)
        return tuple(alias for alias, other in pairs if other is tensor)
