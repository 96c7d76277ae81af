"""Find a dense stack in a JAX function: which arrays are X, y and each layer's W and b.

:func:`read_stack` traces the problem's scalar with ``jax.make_jaxpr``, inlines the
calls that only wrap code (``jit``, ``custom_jvp_call``, ``custom_vjp_call``: their
forward computation is what the numerical side evaluates) and reads the equations
with one rule per step of an MLP::

    D = dot_general(A, W)          A: X (a data array) or the previous layer's output;
                                    W: a checked leaf, (in, out) or (out, in), or its transpose
    Z = add(D, broadcast(b))        b: a checked leaf of shape (out,) or (1, out)
    A = g(Z)                        max(Z, 0), tanh, logistic, where(Z >= 0, Z, 0.01·Z),
                                    or Z itself

Everything after the last layer's ``Z`` (the logits) is the loss: it may use only
the logits, constants and one other data array (the targets ``y``); which loss it is
the caller finds by comparing values (:mod:`gradprobe.jax._mlp`). Anything else (a checked leaf used
twice or not at all, X used again, a residual, a normalization, a second
nonlinearity, control flow) means "not a plain MLP": the answer is None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.extend.core import ClosedJaxpr, Jaxpr, Literal
from numpy.typing import NDArray

from gradprobe.jax._problem import Problem

__all__ = ["DenseLayer", "DenseStack", "read_stack"]

# Primitives that only wrap a computation, and the parameter holding it.
_WRAPPERS = {
    "jit": "jaxpr",
    "pjit": "jaxpr",
    "closed_call": "call_jaxpr",
    "core_call": "call_jaxpr",
    "custom_jvp_call": "call_jaxpr",
    "custom_vjp_call": "call_jaxpr",
    "custom_vjp_call_jaxpr": "fun_jaxpr",
}
_SMOOTH = {"tanh": "tanh", "logistic": "sigmoid"}
_LEAKY_SLOPE = 0.01
_PARTIAL = {"H", "cmp", "scaled"}  # tags of an activation's steps
_PLAIN = (((1,), (0,)), ((), ()))  # a @ W
_TRANSPOSED = (((1,), (1,)), ((), ()))  # a @ W.T


@dataclass(frozen=True)
class _Op:
    """One primitive of the flattened function: its inputs and outputs by number."""

    primitive: Any
    params: dict[str, Any]
    inputs: tuple[Any, ...]  # int (a value's number) or a jax Literal
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class DenseLayer:
    """One layer: ``Z = A @ W + b`` with W read from leaf ``weight`` (transposed if need be).

    Attributes
    ----------
    weight, bias : int
        The checked leaves (positions in the problem's layout) holding W and b.
    kernel : bool
        True when the leaf is ``(in, out)`` (``A @ W``), False when it is ``(out, in)``.
    """

    weight: int
    bias: int
    kernel: bool


@dataclass(frozen=True)
class DenseStack:
    """A plain MLP found in a JAX function (see the module docstring).

    Attributes
    ----------
    layers : list of DenseLayer
        The layers, input first.
    activation : str
        The hidden activation, as :mod:`gradprobe.nn.activations` names it.
    inputs : ndarray of float64, shape (m, n_0)
        X.
    targets : ndarray
        y, as the function holds it.
    """

    layers: list[DenseLayer]
    activation: str
    inputs: NDArray[np.float64]
    targets: NDArray[Any]


def _holds_code(value: Any) -> bool:
    """Whether a primitive's parameter is a jaxpr, or a tuple of them (``cond``'s branches)."""
    if isinstance(value, (tuple, list)):
        return any(_holds_code(v) for v in value)
    return isinstance(value, (Jaxpr, ClosedJaxpr))


def _flatten(closed: Any) -> tuple[list[_Op], list[int], dict[int, Any], list[Any]] | None:
    """Return the ops with wrappers inlined, the input numbers, constants and outputs."""
    ops: list[_Op] = []
    constants: dict[int, Any] = {}
    counter = iter(range(1 << 62))

    def atom(env: dict[Any, int], a: Any) -> Any:
        return a if isinstance(a, Literal) else env[a]

    def inline(jaxpr: Any, consts: Sequence[Any], arguments: Sequence[Any]) -> list[Any] | None:
        env: dict[Any, int] = {}
        for var, value in zip(jaxpr.constvars, consts, strict=True):
            env[var] = next(counter)
            constants[env[var]] = value
        for var, value in zip(jaxpr.invars, arguments, strict=True):
            if isinstance(value, int):
                env[var] = value
            else:  # a literal argument of an inlined call: hold it as a constant
                env[var] = next(counter)
                constants[env[var]] = value.val
        for eqn in jaxpr.eqns:
            inputs = [atom(env, a) for a in eqn.invars]
            name = eqn.primitive.name
            if name in _WRAPPERS:
                inner = eqn.params.get(_WRAPPERS[name])
                if inner is None or len(inner.jaxpr.invars) != len(inputs):
                    return None
                outs = inline(inner.jaxpr, inner.consts, inputs)
                if outs is None:
                    return None
                for var, out in zip(eqn.outvars, outs, strict=True):
                    env[var] = out if isinstance(out, int) else next(counter)
                    if not isinstance(out, int):
                        constants[env[var]] = out.val
                continue
            if any(_holds_code(v) for v in eqn.params.values()):
                return None  # control flow (cond, while, scan) or another call
            outputs = []
            for var in eqn.outvars:
                env[var] = next(counter)
                outputs.append(env[var])
            ops.append(_Op(eqn.primitive, dict(eqn.params), tuple(inputs), tuple(outputs)))
        return [atom(env, a) for a in jaxpr.outvars]

    arguments = [next(counter) for _ in closed.jaxpr.invars]
    outputs = inline(closed.jaxpr, closed.consts, arguments)
    if outputs is None:
        return None
    return ops, arguments, constants, outputs


class _Reader:
    """The symbolic pass over the ops: one tag per value (see the module docstring)."""

    def __init__(
        self,
        leaves: Sequence[int],
        shapes: Sequence[tuple[int, ...]],
        data: Sequence[int],
        scalars: dict[int, Any],
    ) -> None:
        self.tags: dict[int, tuple[Any, ...]] = {}
        self.shapes = [tuple(shape) for shape in shapes]
        for k, number in enumerate(leaves):
            self.tags[number] = ("leaf", k)
        for number in data:
            self.tags[number] = ("data", frozenset({number}))
        self.scalars = scalars
        self.layers: list[DenseLayer] = []
        self.activations: set[str] = set()
        self.used: set[int] = set()
        self.x: int | None = None
        self.logits: int | None = None

    def literal(self, a: Any, value: float) -> bool:
        """Whether ``a`` is the scalar constant ``value``."""
        known = a.val if isinstance(a, Literal) else self.scalars.get(a)
        return known is not None and np.shape(known) == () and bool(known == value)

    def tag(self, a: Any) -> tuple[Any, ...]:
        if isinstance(a, Literal):
            return ("const",)
        return self.tags.get(a, ("const",))

    def _claim(self, leaf: int) -> bool:
        if leaf in self.used:
            return False
        self.used.add(leaf)
        return True

    def step(self, op: _Op) -> bool:  # noqa: C901, PLR0911, PLR0912
        """Tag the outputs of ``op``; False when it does not fit a plain MLP."""
        name = op.primitive.name
        tags = [self.tag(a) for a in op.inputs]
        kinds = {t[0] for t in tags}
        out = op.outputs[0] if len(op.outputs) == 1 else None
        if kinds <= {"const"}:
            for number in op.outputs:
                self.tags[number] = ("const",)
            return True
        if kinds == {"leaf"} and out is not None and len(tags) == 1:
            k = tags[0][1]
            if name == "transpose" and op.params.get("permutation") == (1, 0):
                self.tags[out] = ("T", k)
                return True
            return self._bias(op, k, self.shapes[k], out)
        if kinds == {"B"} and out is not None and len(tags) == 1:
            return self._bias(op, tags[0][1], tags[0][2], out)
        if name == "dot_general" and out is not None and len(tags) == 2:
            return self._dot(op, tags, out)
        if name == "add" and out is not None and kinds in ({"D", "B"}, {"D", "leaf"}):
            dot, bias = sorted(tags, key=lambda t: t[0] != "D")
            if dot[1] != len(self.layers) or not self._claim(bias[1]):
                return False
            self.layers[-1] = DenseLayer(self.layers[-1].weight, bias[1], self.layers[-1].kernel)
            self.tags[out] = ("Z", dot[1])
            return True
        if kinds & {"Z"} and self.logits is None and out is not None:
            z = next(t for t in tags if t[0] == "Z")
            others = [a for a, t in zip(op.inputs, tags, strict=True) if t[0] != "Z"]
            if name in _SMOOTH and len(tags) == 1:
                self.tags[out] = ("H", z[1], _SMOOTH[name])
                return True
            if name == "max" and len(others) == 1 and self.literal(others[0], 0.0):
                self.tags[out] = ("H", z[1], "relu")
                return True
            if name in {"ge", "gt"} and len(others) == 1 and self.literal(op.inputs[1], 0.0):
                self.tags[out] = ("cmp", z[1])
                return True
            if name == "mul" and len(others) == 1 and self.literal(others[0], _LEAKY_SLOPE):
                self.tags[out] = ("scaled", z[1])
                return True
            if name == "select_n" and [t[0] for t in tags] == ["cmp", "scaled", "Z"]:
                if len({t[1] for t in tags}) == 1:
                    self.tags[out] = ("H", z[1], "leaky_relu")
                    return True
                return False
        return self._loss(op, tags, kinds)

    def _bias(self, op: _Op, k: int, shape: tuple[int, ...], out: int) -> bool:
        """Tag a reshaping of leaf ``k`` that keeps it a row added to every example."""
        name, params = op.primitive.name, op.params
        if name == "broadcast_in_dim":
            new = tuple(params["shape"])
            trailing = tuple(range(len(new) - len(shape), len(new)))
            fits = params["broadcast_dimensions"] == trailing
        elif name == "reshape":
            new = tuple(params["new_sizes"])
            fits = int(np.prod(new)) == int(np.prod(shape)) == (new[-1] if new else 1)
        else:
            new, fits = shape, name == "convert_element_type"
        if not fits or not new or new[-1] != (shape[-1] if shape else 1):
            return False
        self.tags[out] = ("B", k, new)
        return True

    def _dot(self, op: _Op, tags: list[tuple[Any, ...]], out: int) -> bool:
        (a, w) = tags
        layer = len(self.layers)
        if a[0] == "data" and layer == 0 and a[1] == frozenset({op.inputs[0]}):
            self.x = op.inputs[0]
        elif a[0] == "H" and a[1] == layer:
            self.activations.add(a[2])
        elif a[0] == "Z" and a[1] == layer and layer > 0:
            self.activations.add("linear")
        else:
            return False
        if w[0] not in {"leaf", "T"} or not self._claim(w[1]):
            return False
        numbers = op.params.get("dimension_numbers")
        if numbers not in (_PLAIN, _TRANSPOSED):
            return False
        self.layers.append(DenseLayer(w[1], -1, (numbers == _PLAIN) == (w[0] == "leaf")))
        self.tags[out] = ("D", layer + 1)
        return True

    def _loss(self, op: _Op, tags: list[tuple[Any, ...]], kinds: set[str]) -> bool:
        """Tag a step of the loss: it may read the logits, constants and data only.

        What looked like the start of an activation of the last layer (a ``max`` with 0
        in a softplus) is read as a step of the loss: no layer follows it.
        """
        last = len(self.layers)
        tags = [("Z", last) if t[0] in _PARTIAL and t[1] == last else t for t in tags]
        kinds = {t[0] for t in tags}
        if not kinds <= {"Z", "tail", "data", "const"}:
            return False
        for t in tags:
            if t[0] == "Z":
                if self.logits is not None and self.logits != t[1]:
                    return False
                self.logits = t[1]
        sources: frozenset[int] = frozenset().union(
            *(t[1] for t in tags if t[0] in {"data", "tail"})
        )
        if self.x is not None and self.x in sources:
            return False
        tail = "tail" if kinds & {"Z", "tail"} else "data"
        for number in op.outputs:
            self.tags[number] = (tail, sources)
        return True


def read_stack(problem: Problem) -> DenseStack | None:
    """Return the plain MLP ``problem`` computes, or None (see the module docstring)."""
    layout = problem.layout
    chosen = layout.unflatten(problem.theta)
    try:
        closed = jax.make_jaxpr(problem.scalar)(chosen, problem.dynamic)
    except Exception:  # noqa: BLE001 - code jax cannot trace is simply not an MLP here
        return None
    flat = _flatten(closed)
    if flat is None:
        return None
    ops, arguments, constants, outputs = flat
    leaves = len(layout.names)
    values: dict[int, Any] = dict(zip(arguments[leaves:], problem.dynamic, strict=True))
    values.update(constants)
    scalars = {n: v for n, v in values.items() if np.ndim(v) == 0}
    data = [n for n in values if n not in scalars]
    reader = _Reader(arguments[:leaves], layout.shapes, data, scalars)
    for op in ops:
        if not reader.step(op):
            return None
    if len(outputs) != 1 or not isinstance(outputs[0], int):
        return None
    final = reader.tag(outputs[0])
    layers = reader.layers
    if final[0] != "tail" or not layers or reader.logits != len(layers) or reader.x is None:
        return None
    if len(reader.used) != leaves or any(layer.bias < 0 for layer in layers):
        return None
    # The targets: the one array the loss reads (masks jax folded from closed-over
    # targets, such as ``y < 0``, are boolean and do not count).
    arrays = [n for n in final[1] if np.asarray(values[n]).dtype != bool]
    (targets,) = arrays if len(arrays) == 1 else (None,)
    if targets is None or targets == reader.x or len(reader.activations) > 1:
        return None
    shape_of = {k: layout.shapes[k] for k in range(leaves)}
    widths = [np.shape(values[reader.x])[-1]]
    for layer in layers:
        w = shape_of[layer.weight]
        if len(w) != 2 or np.prod(shape_of[layer.bias]) != (w[1] if layer.kernel else w[0]):
            return None
        if (w[0] if layer.kernel else w[1]) != widths[-1]:
            return None
        widths.append(w[1] if layer.kernel else w[0])
    x = np.asarray(values[reader.x], dtype=np.float64)
    if x.ndim != 2:
        return None
    activation = next(iter(reader.activations), "linear")
    return DenseStack(layers, activation, x, np.asarray(values[targets]))
