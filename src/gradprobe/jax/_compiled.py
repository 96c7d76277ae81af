"""Compiled functions shared by every check that traces to the same computation.

A check compiles what it runs (the gradient's ``jax.vjp``, the batched losses) for
the function it is given; checking the same function again, at initialization and
after training, say, would compile the same XLA program again, and compiling a
small network's VJP costs more than everything else its check does.
:class:`SharedJit` is ``jax.jit`` with that compilation shared: each instance traces
its function to a jaxpr on its first call for each argument signature, so whatever
the function reads (closed-over arrays, Python numbers, globals) is read afresh, and
compiles the jaxpr only when no jaxpr compiled before computes the same thing.

"The same thing" is decided by :func:`fingerprint`: a key equal for two jaxprs only
when they have the same equations (primitive by identity, parameters by value,
literals by their bits), the same shapes and dtypes, and the same effects. The
constants of the traced jaxpr are arguments of the compiled program, so their values
are never part of it; constants of inner jaxprs (which are compiled in) are, by their
bytes, or for large ones by identity (a JAX array cannot change) or a digest (a NumPy
array can). Something the fingerprint cannot read (an unhashable object) gives no
key, and the jaxpr is compiled for that instance alone. JAX's settings that change
what a program compiles to are part of the key. Where a shared program cannot serve
(``jax.disable_jit``, NaN debugging, traced arguments, another device) the call is
plain ``jax.jit``'s.
"""

from __future__ import annotations

import enum
import hashlib
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import ClosedJaxpr, Jaxpr, Literal, primitives

__all__ = ["SharedJit", "fingerprint"]

# Compiled programs kept for later checks, the least recently used dropped first: a check
# of a large pytree on the leaf-by-leaf route compiles one program per leaf and chunk size.
_KEPT = 256
# Constants of inner jaxprs up to this many bytes are keyed by their bytes; larger ones by
# identity (a JAX array: immutable) or by a digest of their bytes (a NumPy array).
_CONSTANT_BYTES = 1 << 20

# Parameters used only to differentiate a call, never to compile it (JAX lowers both from
# ``call_jaxpr``): the rule itself is a new Python function for every trace.
_RULES_ONLY = {
    primitives.custom_jvp_call_p: frozenset({"jvp_jaxpr_fun", "jvp_jaxpr_thunk"}),
    primitives.custom_vjp_call_p: frozenset({"fwd_jaxpr_thunk", "bwd", "out_trees"}),
}

_programs: OrderedDict[Hashable, Any] = OrderedDict()
_lock = threading.Lock()


class _Unreadable(Exception):
    """A jaxpr holds something :func:`fingerprint` cannot compare by value."""


class _Same:
    """An immutable object compared by identity; held, so its id is never reused."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.value is self.value

    def __hash__(self) -> int:
        return id(self.value)


def _array_key(value: Any) -> tuple[Any, ...]:
    """Return the key of an array constant or parameter: its values, or its identity."""
    if isinstance(value, jax.Array):
        if jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
            return ("prng key", str(value.dtype), _array_key(jax.random.key_data(value)))
        if value.nbytes > _CONSTANT_BYTES:
            return ("device array", _Same(value))
    array = np.asarray(value)
    if array.dtype == object:
        raise _Unreadable
    if array.nbytes > _CONSTANT_BYTES:
        digest = hashlib.blake2b(np.ascontiguousarray(array).data, digest_size=32).digest()
        return ("digest", array.dtype, array.shape, digest)
    return ("array", array.dtype, array.shape, array.tobytes())


def _value_key(value: Any) -> Any:  # noqa: PLR0911 - one case per kind of parameter
    """Return a hashable key of a primitive's parameter, equal only for equal parameters."""
    if value is None or isinstance(value, (bool, int, str, enum.Enum)):
        return (type(value), value)  # the type: True, 1 and 1.0 are equal in Python
    if isinstance(value, float):
        return (float, struct.pack("<d", value))  # the bits: 0.0 and -0.0, NaN's sign differ
    if isinstance(value, complex):
        return (complex, struct.pack("<dd", value.real, value.imag))
    if isinstance(value, np.dtype):
        return ("dtype", value)
    if isinstance(value, Jaxpr):
        return ("jaxpr", _jaxpr_key(value))
    if isinstance(value, ClosedJaxpr):
        return ("closed", _jaxpr_key(value.jaxpr), tuple(_array_key(c) for c in value.consts))
    if isinstance(value, (tuple, list)):  # named tuples too: their type is part of the key
        return (type(value), tuple(_value_key(v) for v in value))
    if isinstance(value, dict):
        return (dict, tuple(sorted((str(k), _value_key(v)) for k, v in value.items())))
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        return _array_key(value)
    try:
        hash(value)
    except TypeError:
        raise _Unreadable from None
    # Anything else by its own equality: identity for objects without one (a callback
    # is then shared only with itself), value for JAX's own types (shardings, meshes).
    return (type(value), value)


def _jaxpr_key(jaxpr: Any) -> tuple[Any, ...]:
    """Return the key of an open jaxpr: its variables numbered in order of definition."""
    number: dict[Any, int] = {}

    def define(var: Any) -> Any:
        number[var] = len(number)
        return var.aval

    def use(atom: Any) -> Any:
        if isinstance(atom, Literal):
            return ("literal", _value_key(atom.val), atom.aval)
        return number[atom]

    constants = tuple(define(v) for v in jaxpr.constvars)
    inputs = tuple(define(v) for v in jaxpr.invars)
    equations = []
    for eqn in jaxpr.eqns:
        used = tuple(use(a) for a in eqn.invars)
        unused = _RULES_ONLY.get(eqn.primitive, frozenset())
        params = tuple(
            sorted((name, _value_key(v)) for name, v in eqn.params.items() if name not in unused)
        )
        outputs = tuple(define(v) for v in eqn.outvars)
        effects = frozenset(eqn.effects)
        equations.append((eqn.primitive, params, used, outputs, effects, eqn.ctx))
    results = tuple(use(a) for a in jaxpr.outvars)
    return (constants, inputs, tuple(equations), results, frozenset(jaxpr.effects))


def fingerprint(closed: Any) -> Hashable | None:
    """Return a key equal for two closed jaxprs that compute the same function, or None.

    The constants' values are not part of it (the compiled program takes them as
    arguments), their shapes and dtypes are. None when the jaxpr holds a parameter
    that can be compared only by identity and cannot be hashed.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> one = jax.make_jaxpr(lambda x: jnp.sin(x) * 2.0)(jnp.ones(3))
    >>> two = jax.make_jaxpr(lambda y: jnp.sin(y) * 2.0)(jnp.zeros(3))
    >>> three = jax.make_jaxpr(lambda x: jnp.sin(x) * -2.0)(jnp.ones(3))
    >>> fingerprint(one) == fingerprint(two), fingerprint(one) == fingerprint(three)
    (True, False)
    """
    try:
        key = _jaxpr_key(closed.jaxpr)
        hash(key)
    except (_Unreadable, TypeError):
        return None
    return key


# JAX's settings that change the program a jaxpr compiles to, or where it runs.
_SETTINGS = ("jax_default_device", "jax_enable_x64", "jax_default_matmul_precision")


def _settings() -> tuple[Any, ...]:
    """Return the version, backend and :data:`_SETTINGS` of JAX now, as a hashable key."""
    values = tuple(str(getattr(jax.config, name)) for name in _SETTINGS)
    return (jax.__version__, jax.default_backend(), *values)


def _run(jaxpr: Any, constants: Any, leaves: Any) -> Any:
    return jax.core.eval_jaxpr(jaxpr, constants, *leaves)


def _default_device() -> Any:
    chosen = jax.config.jax_default_device  # type: ignore[attr-defined]
    if chosen is None:
        return jax.devices()[0]
    return jax.devices(chosen)[0] if isinstance(chosen, str) else chosen


def _elsewhere(values: Any, device: Any) -> bool:
    """Whether any value is a traced value or a JAX array on another device than ``device``."""
    return any(
        isinstance(v, jax.core.Tracer) or (isinstance(v, jax.Array) and v.devices() != {device})
        for v in values
    )


class SharedJit:
    """``jax.jit(fun)`` whose compiled programs are shared by equal computations.

    Parameters
    ----------
    fun : callable
        A function of pytrees of arrays, traceable by ``jax.jit``.
    compiler_options : dict, optional
        XLA options for the compilation (part of the key).

    Notes
    -----
    A call whose arguments have a signature (tree structure, shapes, dtypes and JAX's
    settings) seen before by this instance runs the program compiled then; a new
    signature traces ``fun`` again. Tracing errors (``jax.errors.JAXTypeError`` for
    Python control flow on values) are raised as ``jax.jit`` raises them. Where a
    shared program could not serve, the call is plain ``jax.jit(fun)``'s: under
    ``jax.disable_jit`` or JAX's NaN/Inf debugging, inside another transformation
    (traced arguments), and for arrays on another device than the default one.
    """

    def __init__(self, fun: Callable[..., Any], compiler_options: dict[str, Any] | None = None):
        self.fun = fun
        self.options = dict(compiler_options or {})
        self._ready: dict[Hashable, tuple[Any, Any, Any] | None] = {}
        self._plain: Callable[..., Any] | None = None

    def __call__(self, *args: Any) -> Any:
        """Return ``fun(*args)``, run by the compiled program."""
        leaves, tree = jax.tree_util.tree_flatten(args)
        config = jax.config
        debugging = (
            config.jax_disable_jit  # type: ignore[attr-defined]
            or config.jax_debug_nans  # type: ignore[attr-defined]
            or config.jax_debug_infs  # type: ignore[attr-defined]
        )
        device = _default_device()
        if debugging or _elsewhere(leaves, device):
            return self._jitted(*args)
        signature = (tree, tuple(jax.typeof(leaf) for leaf in leaves), _settings())
        if signature not in self._ready:
            self._ready[signature] = self._prepare(args, leaves, device)
        ready = self._ready[signature]
        if ready is None:  # constants on another device
            return self._jitted(*args)
        constants, out_tree, program = ready
        return jax.tree_util.tree_unflatten(out_tree, program(constants, leaves))

    def _jitted(self, *args: Any) -> Any:
        if self._plain is None:
            self._plain = jax.jit(self.fun, compiler_options=self.options or None)
        return self._plain(*args)

    def _prepare(self, args: Any, leaves: list[Any], device: Any) -> tuple[Any, Any, Any] | None:
        # A new function for every trace: JAX caches the traces of a function it has seen.
        closed, shape = jax.make_jaxpr(lambda *values: self.fun(*values), return_shape=True)(*args)
        if _elsewhere(closed.consts, device):
            return None
        # NumPy constants put on the device once, not at every call.
        constants = [jax.device_put(c, device) for c in closed.consts]
        out_tree = jax.tree_util.tree_structure(shape)
        key = fingerprint(closed)
        if key is not None:
            key = (key, _settings(), tuple(sorted(self.options.items())))
            with _lock:
                program = _programs.get(key)
                if program is not None:
                    _programs.move_to_end(key)
                    return constants, out_tree, program
        run = jax.jit(partial(_run, closed.jaxpr), compiler_options=self.options or None)
        program = run.lower(constants, leaves).compile()
        if key is not None:
            with _lock:
                _programs[key] = program
                while len(_programs) > _KEPT:
                    _programs.popitem(last=False)
        return constants, out_tree, program
