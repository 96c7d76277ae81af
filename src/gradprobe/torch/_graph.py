"""Cut a module's graph at the perturbed tensor: cache what comes before it, batch what comes after.

A perturbation of one tensor changes only the layers that use it and those after
them. :class:`GraphPlan` traces a float64 copy of the module with ``torch.fx`` (an
``nn.Sequential`` always traces; so does any module without data-dependent Python
control flow, and a module that does not is traced with its children as opaque
layers), runs it once at θ keeping every node's value, and for each checked tensor
evaluates only the nodes downstream of it, for a whole batch of perturbations at
once: first layer by layer on :class:`~gradprobe.torch._rank1.Patch` values (a
Linear or Conv weight entry moves one column or channel; an ``nn.MultiheadAttention``
parameter moves the layer's output head by head, :mod:`~gradprobe.torch._attention`),
then layer by layer on full batched values where a layer takes the batch as a
leading axis (a change of a few directions per position, as attention's, is kept
through residual sums into the Linear after a LayerNorm, :mod:`~gradprobe.torch._lowrank`),
and the rest under ``torch.vmap`` (or one at a time where torch cannot batch an
operation, with a note).

Every route is checked once against the module itself at a perturbed point before
it is trusted; a route that disagrees is dropped, with a note, and that tensor's
evaluations run through the whole module.
"""

from __future__ import annotations

import copy
import operator
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.fx
from torch import Tensor, nn
from torch.fx import Node
from torch.utils._pytree import tree_flatten, tree_unflatten

from gradprobe._validate import unless_interrupt
from gradprobe.torch._attention import attention_node
from gradprobe.torch._batched import apply
from gradprobe.torch._lowrank import Batched as _Batched
from gradprobe.torch._lowrank import Low, follow, step
from gradprobe.torch._problem import vmap_notes
from gradprobe.torch._rank1 import Patch, consume, produce, propagate
from gradprobe.torch._trace import Traced, numel, trace

__all__ = ["GraphPlan", "graph_for"]

# Memory the downstream values of one batch may take (2 MiB: batches of 16-32 MiB of
# activations spent more time in page faults on fresh memory than in arithmetic, 2-3 times
# slower per evaluation on the transformer block), but at least 32 evaluations where they
# fit in 256 MiB, at most 512; how far a route's loss may differ from the module's before
# the route is dropped.
_BATCH_BYTES, _MOST_BYTES = 2 * 2**20, 256 * 2**20
_MIN_BATCH, _MAX_BATCH = 32, 512
_AGREEMENT = 1e-11


def _block(size: int) -> int:
    """Return the evaluations per batch of ``size`` values each (see ``_BATCH_BYTES``)."""
    per = 8 * size + 1
    fewest = min(_MIN_BATCH, _MOST_BYTES // per)
    return int(np.clip(max(_BATCH_BYTES // per, fewest), 2, _MAX_BATCH))


@dataclass
class Route:
    """The nodes a checked tensor reaches, in order, and the ones that use it directly."""

    users: set[Node]
    nodes: list[Node]
    block: int
    checked: dict[str, bool] = field(default_factory=dict)
    patched: int = -1  # how many leading nodes ran as patches, once measured


class GraphPlan(Traced):
    """A module's traced graph, its values at θ, and a batched route for each checked tensor.

    Parameters
    ----------
    graph, positional, keywords, tail
        As for :class:`~gradprobe.torch._trace.Traced`.
    notes : list of str
        The report's notes, extended with what the routes tell (vmap fallbacks).
    reference : callable
        The check's own loss (the whole module) of ``{name: tensor}``, to verify routes.
    """

    def __init__(
        self,
        graph: torch.fx.GraphModule,
        positional: Sequence[Any],
        keywords: Mapping[str, Any],
        tail: Callable[[Any], Tensor],
        notes: list[str],
        reference: Callable[[Mapping[str, Tensor]], Tensor],
    ) -> None:
        super().__init__(graph, positional, keywords, tail)
        self.notes, self.reference = notes, reference
        self.routes: dict[str, Route | None] = {}
        self.products: dict[Any, Any] = {}  # values at θ and memory kept between batches

    def route(self, name: str) -> Route | None:
        """Return the route of tensor ``name`` (None when the graph does not reach it)."""
        if name in self.routes:
            return self.routes[name]
        nodes = list(self.graph.graph.nodes)
        users = {
            node
            for node in nodes
            if (node.op == "get_attr" and node.target in self.aliases(name))
            or (
                node.op == "call_module"
                and any(a.startswith(f"{node.target}.") for a in self.aliases(name))
            )
            or (node.op == "placeholder" and self.placeholders.get(name) is node)
        }
        reached, frontier = set(users), list(users)
        while frontier:
            for user in frontier.pop().users:
                if user not in reached:
                    reached.add(user)
                    frontier.append(user)
        ordered = [node for node in nodes if node in reached]
        size = sum(numel(self.cache[n]) for n in ordered if n.op != "output")
        block = _block(size + self._size(name))
        found = Route(users, ordered, block) if users else None
        self.routes[name] = found
        return found

    def _patched_block(self, route: Route) -> int:
        """Return the evaluations per batch when the leading nodes hold patches (slices)."""
        size = 0
        for k, node in enumerate(route.nodes[:-1]):
            value = self.cache[node]
            if k < route.patched and isinstance(value, Tensor) and value.dim() > 1:
                size += value.numel() // max(value.shape)  # at most one slice of it
            else:
                size += numel(value)
        return _block(size)

    def _size(self, name: str) -> int:
        if name in self.parameters:
            return self.parameters[name].numel()
        return numel(self.cache[self.placeholders[name]]) if name in self.placeholders else 0

    def _base(self, name: str) -> Tensor:
        if name in self.parameters:
            return self.parameters[name].detach()
        return self.cache[self.placeholders[name]]  # type: ignore[no-any-return]

    def coordinates(self, name: str, local: Tensor, values: Tensor) -> Tensor | None:
        """Return the losses with ``name.flatten()[local[r]] = values[r]``, shape ``(B, 1)``."""
        route = self.route(name)
        if route is None or not self._trusted(name, route, "coordinates"):
            return None
        block = self._patched_block(route)
        return torch.cat(
            [
                self._run(name, route, local[s : s + block], values[s : s + block])
                for s in range(0, len(local), block)
            ]
        )

    def batch(self, name: str, perturbed: Tensor) -> Tensor | None:
        """Return the losses with tensor ``name`` replaced by each ``perturbed[r]``."""
        route = self.route(name)
        if route is None or not self._trusted(name, route, "batch"):
            return None
        return torch.cat(
            [
                self._run(name, route, None, perturbed[s : s + route.block])
                for s in range(0, len(perturbed), route.block)
            ]
        )

    def _trusted(self, name: str, route: Route, kind: str) -> bool:
        """Check the route once against the whole module at a perturbed point."""
        if kind in route.checked:
            return route.checked[kind]
        base = self._base(name)
        position = base.numel() // 2
        flat = base.reshape(-1)
        value = flat[position] + 1e-3 * max(1.0, float(abs(flat[position])))
        moved = flat.clone()
        moved[position] = value
        moved = moved.reshape(base.shape)
        local = torch.tensor([position], device=base.device)
        try:
            if kind == "coordinates":
                got = self._run(name, route, local, value.reshape(1))
            else:
                got = self._run(name, route, None, moved.unsqueeze(0))
            expected = self.reference({name: moved}).detach()
            got = got.detach()
            scale = max(float(abs(expected).max()), np.finfo(float).tiny)
            agrees = (
                float((got.reshape(-1) - expected.reshape(-1)).abs().max()) <= _AGREEMENT * scale
            )
        except BaseException as error:  # noqa: BLE001 - a route that fails is a route not taken
            unless_interrupt(error)
            agrees = False
        route.checked[kind] = agrees
        if not agrees:
            self.notes.append(
                f"the cut graph for {name} did not reproduce the module's loss, so its "
                "evaluations ran through the whole module"
            )
        return agrees

    def _run(self, name: str, route: Route, local: Tensor | None, values: Tensor) -> Tensor:
        """Losses for a batch: ``values`` are coordinates' values with ``local``, else tensors."""
        env: dict[Node, Any] = {}
        start = len(route.nodes)
        for k, node in enumerate(route.nodes):
            value = self._patched(node, route, env, name, local, values)
            if value is None:
                start = k
                break
            env[node] = value
        route.patched = max(route.patched, start)
        full = values
        if local is None:
            pass
        elif any(node in route.users for node in route.nodes[start:]):
            base = self._base(name)
            full = base.reshape(1, -1).repeat(len(local), 1)
            full[torch.arange(len(local), device=full.device), local] = values
            full = full.reshape(len(local), *base.shape)
        else:
            full = values.reshape(len(local), 1)  # only its batch size is used
        # Then layer by layer: natively where a layer takes the batch as a leading axis,
        # under torch.vmap where it does not; the loss under torch.vmap.
        while True:
            start = self._natively(route, start, env)
            node = route.nodes[start]
            if node.op == "output":
                return self._vectorized(name, route, [node], env, full)  # type: ignore[no-any-return]
            env[node] = _Batched(self._vectorized(name, route, [node], env, full, finish=False))
            start += 1

    def _patched(
        self,
        node: Node,
        route: Route,
        env: Mapping[Node, Any],
        name: str,
        local: Tensor | None,
        values: Tensor,
    ) -> Any:
        """Return the node's batched value by the column rules, or None to batch the rest."""
        if node.op == "output":
            return None
        if node in route.users:
            if local is None or node.op != "call_module":
                return None
            if any(source in env for source in node.all_input_nodes):
                return None
            module = self.graph.get_submodule(str(node.target))
            prefix = f"{node.target}."
            inside = [a for a in self.aliases(name) if a.startswith(prefix)]
            if len(inside) != 1:
                return None
            parameter, cached = inside[0][len(prefix) :], self.cache[node]
            resolved = self._resolve(node, env)
            attended = attention_node(
                node, module, parameter, resolved, cached, local, values, self.products
            )
            if attended is not None:
                return _Batched((attended[0], None), (Low(*attended[1:]), None))
            if len(node.args) != 1 or node.kwargs or not isinstance(node.args[0], Node):
                return None
            return produce(module, parameter, self.cache[node.args[0]], cached, local, values)
        args, kwargs = self._resolve(node, env)
        if any(isinstance(a, _Batched) for a in (*args, *kwargs.values())):
            return None
        if node.op not in ("call_module", "call_method", "call_function"):
            return None
        call = self.layer(node)
        patched = propagate(call, args, kwargs, self.cache[node])
        if patched is None and isinstance(call, nn.Module) and len(args) == 1 and not kwargs:
            dense = consume(call, args[0], self.cache[node]) if isinstance(args[0], Patch) else None
            return None if dense is None else _Batched(dense)
        return patched

    def _natively(self, route: Route, start: int, env: dict[Node, Any]) -> int:
        """Run the nodes from ``start`` that take a batch as a leading axis; return the next."""
        for k in range(start, len(route.nodes)):
            node = route.nodes[k]
            if node.op in ("output", "placeholder", "get_attr") or node in route.users:
                return k
            for source in node.all_input_nodes:
                if isinstance(env.get(source), Patch):
                    env[source] = _Batched(env[source].dense())
            args, kwargs = self._resolve(node, env)
            if any(isinstance(v, _Batched) for v in kwargs.values()):
                return k
            if node.target is operator.getitem and isinstance(args[0], _Batched):
                item = args[0].value
                if not isinstance(item, (tuple, list)) or not isinstance(args[1], int):
                    return k
                low = args[0].low
                env[node] = _Batched(item[args[1]], low[args[1]] if low else None)
                continue
            flags = [isinstance(a, _Batched) for a in args]
            values = [a.value if isinstance(a, _Batched) else a for a in args]
            if any(f and not isinstance(v, Tensor) for f, v in zip(flags, values, strict=True)):
                return k
            call = self.layer(node)
            first = node.args[0] if node.args else None
            reuse = isinstance(first, Node) and len(first.users) == 1 and flags[0]
            near = self.cache[first] if isinstance(first, Node) else None
            if len(args) == 1 and flags[0] and not kwargs and near is not None:
                stepped = step(call, args[0], near, self.products, node)
                if stepped is not None:
                    env[node] = _Batched(*stepped)
                    continue
            result = apply(
                call, values, kwargs, flags, self.cache[node], reuse, self.products, near
            )
            if result is None:
                return k
            base = self._resolve(node, {})[0]
            env[node] = _Batched(result, follow(call, args, flags, base) if not kwargs else None)
        return len(route.nodes)

    def _vectorized(
        self,
        name: str,
        route: Route,
        rest: list[Node],
        env: dict[Node, Any],
        full: Tensor,
        finish: bool = True,
    ) -> Any:
        """Run the nodes ``rest`` under one ``torch.vmap`` over the batch.

        Returns the losses when ``finish`` (the last node is the output), else the last
        node's batched value.
        """
        shape: dict[str, Any] = {}
        frontier = [n for n in env if any(user in rest for user in n.users)]
        leaves: list[Tensor] = []
        layouts = []
        for node in frontier:
            value = env[node]
            tree = value.dense() if isinstance(value, Patch) else value.value
            flat, spec = tree_flatten(tree)
            tensors = [i for i, leaf in enumerate(flat) if isinstance(leaf, Tensor)]
            layouts.append((node, flat, spec, tensors))
            leaves.extend(flat[i] for i in tensors)
        needs = any(n in route.users for n in rest)

        def remaining(moved: Tensor, *batched: Tensor) -> Any:
            local_env: dict[Node, Any] = {}
            position = 0
            for node, flat, spec, tensors in layouts:
                flat = list(flat)
                for i in tensors:
                    flat[i], position = batched[position], position + 1
                local_env[node] = tree_unflatten(flat, spec)
            result: Any = None
            for node in rest:
                override = (self.aliases(name), moved) if node in route.users else None
                if node.op == "placeholder":
                    local_env[node] = moved
                    continue
                result = self._execute(node, self._resolve(node, local_env), override)
                local_env[node] = result
            if finish:
                return self.tail(result)
            flat, shape["spec"] = tree_flatten(result)
            shape["flat"] = flat
            return tuple(leaf for leaf in flat if isinstance(leaf, Tensor))

        inputs = (full if needs else full.reshape(len(full), -1)[:, :0], *leaves)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                outputs: Any = torch.vmap(remaining)(*inputs)
            self.notes.extend(n for n in vmap_notes(caught) if n not in self.notes)
        except BaseException as error:  # noqa: BLE001 - no batching rule: one at a time
            unless_interrupt(error)
            note = (
                f"torch.vmap could not batch the layers after {name} ({type(error).__name__}: "
                f"{str(error).strip().splitlines()[0][:120]}); they ran one at a time"
            )
            if note not in self.notes:
                self.notes.append(note)
            items = [remaining(*(t[b] for t in inputs)) for b in range(len(full))]
            stacked = zip(*items, strict=True)
            outputs = torch.stack(items) if finish else tuple(map(torch.stack, stacked))
        if finish:
            return outputs
        tensors = iter(outputs)
        flat = [next(tensors) if isinstance(leaf, Tensor) else leaf for leaf in shape["flat"]]
        return tree_unflatten(flat, shape["spec"])


def graph_for(
    module: nn.Module,
    positional: Sequence[Any],
    keywords: Mapping[str, Any],
    tail: Callable[[Any], Tensor],
    names: Sequence[str],
    reference: Callable[[Mapping[str, Tensor]], Tensor],
    notes: list[str],
    train_mode: bool,
) -> GraphPlan | None:
    """Build the cut graph of ``module`` for the checked tensors, or None where it cannot be.

    The graph is traced on a float64 copy of the module in the check's mode (in training
    mode batch norm's running statistics are left out of the copy: they do not change its
    output); the module itself is neither traced nor called here.
    """
    if not names:
        return None
    try:
        twin = copy.deepcopy(module).to(torch.float64).train(train_mode)
    except BaseException as error:  # noqa: BLE001 - a module that cannot be copied is not traced
        unless_interrupt(error)
        return None
    if train_mode:
        for layer in twin.modules():
            if isinstance(layer, nn.modules.batchnorm._BatchNorm):  # noqa: SLF001
                layer.track_running_stats = False
                layer.running_mean = layer.running_var = layer.num_batches_tracked = None
    traced = trace(twin)
    if traced is None:
        notes.append(
            "torch.fx could not trace the module, so every evaluation runs the whole module "
            "(batched); a module without data-dependent Python control flow is checked faster"
        )
        return None
    try:
        with torch.no_grad():
            plan = GraphPlan(traced, positional, keywords, tail, notes, reference)
            agrees = torch.allclose(plan.loss, reference({}), rtol=_AGREEMENT, atol=0.0)
    except BaseException as error:  # noqa: BLE001 - a graph that cannot run at θ is not used
        unless_interrupt(error)
        return None
    return plan if agrees else None
