"""What a JAX check differentiates: the arguments ``argnums`` chooses, in float64, as θ.

:func:`read_problem` turns ``f(*args)`` into a :class:`Problem`: the chosen arguments
flattened by ``jax.tree_util`` into a :class:`~gradprobe._params.ParameterLayout` whose
names are the function's own parameter names followed by JAX's key paths
(``params['dense_1']['kernel']``), every floating array of every argument copied to
float64, and the scalar the check differentiates, ``Σ v·f(*args)`` with a fixed random
cotangent ``v`` for non-scalar outputs. It is built inside ``jax.enable_x64(True)``
(see :func:`gradprobe.jax.check.check_function`), which is where its functions run.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import NDArray

from gradprobe._params import ParameterLayout, TreeStructure
from gradprobe._validate import check_finite_gradient, unless_interrupt
from gradprobe.errors import InvalidTypeError, LossEvaluationError
from gradprobe.jax._compiled import SharedJit

__all__ = ["ONE_CALL", "Problem", "argument_names", "forward_gradient", "read_problem"]

ONE_CALL = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_use_fusion_emitters": False,
}
"""XLA options for a function compiled to run once (the gradient): LLVM's optimization
passes skipped and the older, quicker-to-compile emitters for fused element-wise code (XLA's
own HLO passes still run, matrix products still go to its libraries); this cuts the compile
time of a small network's VJP to about a third (0.5 s to 0.18 s measured here) and allows no
fast-math either way."""


@dataclass
class Problem:
    """A JAX function seen as a scalar function of the chosen arguments.

    Attributes
    ----------
    layout : ParameterLayout
        θ's layout: one entry per floating leaf of the chosen arguments, kind ``"tree"``
        read by ``jax.tree_util``; :meth:`ParameterLayout.unflatten` gives the tuple of
        chosen arguments.
    theta : ndarray of float64, shape (size,)
        The point of the check.
    scalar : callable
        ``scalar(chosen, dynamic) -> float64 scalar``: ``Σ v·f`` with the chosen
        arguments replaced by ``chosen`` (a tuple of pytrees) and the other arguments'
        arrays given as ``dynamic``; traceable by ``jax.jit`` and ``jax.vmap``.
    dynamic : list
        The arrays of the other arguments, passed to ``scalar`` as a jit argument
        rather than baked in as constants.
    gradient : callable
        ``gradient() -> dθ`` of shape ``(size,)``, from one ``jax.vjp`` of ``f`` with ``v``.
    value_dtype : numpy.dtype
        The lowest precision among ``f``'s floating outputs at the float64 arguments.
    notes : list of str
        Lines for the report.
    values : callable, optional
        ``values(thetas) -> (rows,)``: ``Σ v·f`` at each row of ``thetas``, computed by
        the program that computes :attr:`gradient` (called first, it computes both, in
        one compilation and one call).
    """

    layout: ParameterLayout
    theta: NDArray[np.float64]
    scalar: Callable[[Any, Any], Any]
    dynamic: list[Any]
    gradient: Callable[[], NDArray[np.float64]]
    value_dtype: np.dtype[Any]
    notes: list[str] = field(default_factory=list)
    values: Callable[[NDArray[np.float64]], NDArray[np.float64]] | None = None


def argument_names(f: Callable[..., Any], count: int) -> list[str]:
    """Name the positional arguments by ``f``'s signature, ``args[i]`` where it has none."""
    names = [f"args[{i}]" for i in range(count)]
    try:
        parameters = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):  # builtins and some wrappers have no signature
        return names
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    for i, parameter in enumerate(parameters[:count]):
        if parameter.kind not in positional:
            break
        names[i] = parameter.name
    return names


def _floating(value: Any) -> bool:
    return hasattr(value, "dtype") and jnp.issubdtype(value.dtype, jnp.floating)


def _float64(value: Any) -> Any:
    """Return a float64 JAX copy of a floating array leaf, any other leaf as it is.

    The copy is made by NumPy and put on the device: ``jnp.array`` would compile a
    conversion for every new shape (about 10 ms each on the first check of a process).
    """
    if isinstance(value, float) or _floating(value):
        return jax.device_put(np.array(value, dtype=np.float64))
    return value


def _numpy_dtype(value: Any, notes: list[str]) -> np.dtype[Any]:
    dtype = np.dtype(value.dtype) if hasattr(value, "dtype") else np.dtype(np.float64)
    if dtype.kind != "f":  # bfloat16 and other types NumPy does not know as floats
        notes.append(f"{dtype} arrays promoted to float64 for the check")
        return np.dtype(np.float32)
    return dtype


def _compiled_or_eager(
    traced: Callable[..., Any],
    eager: Callable[..., Any],
    args: Sequence[Any],
    what: str,
    where: str,
) -> Any:
    """Return ``traced(*args)``, or ``eager(*args)`` for code ``jax.jit`` cannot trace.

    Tracing compiles once where running op by op compiles every primitive; any other
    failure becomes a :class:`LossEvaluationError` that says ``what`` raised ``where``.
    """
    try:
        try:
            return traced(*args)
        except jax.errors.JAXTypeError:  # Python control flow on values
            return eager(*args)
    except BaseException as error:  # noqa: BLE001 - whatever the user's function raises
        place = f" {where}" if where else ""
        raise LossEvaluationError(
            f"{what} {type(error).__name__}{place}: {str(error).strip()}"
        ) from unless_interrupt(error)


def read_problem(
    f: Callable[..., Any], args: Sequence[Any], argnums: tuple[int, ...], seed: int
) -> Problem:
    """Describe ``f(*args)`` differentiated by the arguments at ``argnums`` (see module doc)."""
    notes: list[str] = []
    names = argument_names(f, len(args))
    paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(tuple(args[i] for i in argnums))
    labels = [
        names[argnums[getattr(path[0], "idx", 0)]] + jax.tree_util.keystr(tuple(path[1:]))
        for path, _ in paths_leaves
    ]
    for label, (_, leaf) in zip(labels, paths_leaves, strict=True):
        if not (isinstance(leaf, float) or _floating(leaf)):
            kind = getattr(leaf, "dtype", type(leaf).__name__)
            raise InvalidTypeError(
                f"args: {label} is {kind}, expected floating arrays in the arguments chosen by "
                "argnums; leave integer arguments out of argnums"
            )
    # Paths keep the position in the tuple of chosen arguments: grads[0]['dense_1']['kernel'].
    paths = tuple(jax.tree_util.keystr(path) for path, _ in paths_leaves)
    structure = TreeStructure(treedef, paths, jax.tree_util.tree_flatten)
    leaves = [np.asarray(leaf, dtype=np.float64) for _, leaf in paths_leaves]
    layout = ParameterLayout.from_leaves(labels, leaves, "args", structure)
    layout = replace(layout, dtypes=tuple(_numpy_dtype(leaf, notes) for _, leaf in paths_leaves))
    full = [jax.tree_util.tree_map(_float64, value) for value in args]
    rest = [i for i in range(len(args)) if i not in argnums]
    rest_leaves, rest_def = jax.tree_util.tree_flatten([full[i] for i in rest])
    is_array = [isinstance(leaf, (np.ndarray, jax.Array)) for leaf in rest_leaves]
    dynamic = [leaf for leaf, array in zip(rest_leaves, is_array, strict=True) if array]

    def merged(chosen: Sequence[Any], arrays: Sequence[Any]) -> list[Any]:
        supply = iter(arrays)
        others = [
            next(supply) if array else leaf
            for leaf, array in zip(rest_leaves, is_array, strict=True)
        ]
        values = list(full)
        for i, value in zip(rest, jax.tree_util.tree_unflatten(rest_def, others), strict=True):
            values[i] = value
        for i, value in zip(argnums, chosen, strict=True):
            values[i] = value
        return values

    theta = np.concatenate([leaf.ravel() for leaf in leaves])
    start = tuple(full[i] for i in argnums)
    output = _compiled_or_eager(
        lambda *values: jax.eval_shape(f, *values),  # shapes only: nothing runs or compiles
        f,
        merged(start, dynamic),
        "f raised",
        "at args (as given)",
    )
    outputs, output_def = jax.tree_util.tree_flatten(output)
    rng = np.random.default_rng(seed)
    cotangents = [
        (
            jax.device_put(np.ones((), out.dtype))
            if not out.shape
            else jax.device_put(rng.standard_normal(out.shape).astype(out.dtype))
        )
        if _floating(out)
        else np.zeros(np.shape(out), jax.dtypes.float0)
        for out in outputs
    ]
    if not any(_floating(out) for out in outputs):
        raise LossEvaluationError(
            f"f returned {type(output).__name__} with no floating-point array, expected an "
            "array or a pytree of arrays"
        )
    if any(_floating(out) and out.shape for out in outputs):
        notes.append(
            f"non-scalar outputs were reduced to Σ v·output with a fixed random v (seed {seed})"
        )
    # bfloat16 and the like, unknown to NumPy as floats, are counted as float16 (the noise
    # floor of the check rises with the loss's precision).
    precisions = [np.dtype(out.dtype) for out in outputs if _floating(out)]
    value_dtype = min(
        (d if d.kind == "f" else np.dtype(np.float16) for d in precisions), key=lambda d: d.itemsize
    )

    def reduced(output: Any) -> Any:
        terms = [
            jnp.sum(v * out).astype(jnp.float64)
            for v, out in zip(cotangents, jax.tree_util.tree_leaves(output), strict=True)
            if isinstance(out, float) or _floating(out)  # a constant comes back a float
        ]
        return jnp.sum(jnp.stack(terms))

    def scalar(chosen: Any, arrays: Any) -> Any:
        return reduced(f(*merged(chosen, arrays)))

    def pullback(chosen: Any, arrays: Any, cotangent: Any, points: Any) -> Any:
        output, vjp = jax.vjp(lambda *values: f(*merged(values, arrays)), *chosen)
        at = jax.vmap(lambda point: scalar(layout.unflatten(point), arrays))(points)
        return vjp(cotangent), reduced(output), at

    def eager(chosen: Any, arrays: Any, cotangent: Any, points: Any) -> Any:
        output, vjp = jax.vjp(lambda *values: f(*merged(values, arrays)), *chosen)
        at = [scalar(layout.unflatten(point), arrays) for point in points]
        return vjp(cotangent), reduced(output), at

    # One program gives the gradient at the start and the values the MLP route compares
    # its copy with: one compilation, one call (shared with later checks of f).
    compiled = SharedJit(pullback, ONE_CALL)
    at_start: list[NDArray[np.float64]] = []

    def run(points: NDArray[np.float64]) -> NDArray[np.float64]:
        cotangent = jax.tree_util.tree_unflatten(output_def, cotangents)
        grads, _, at = _compiled_or_eager(
            compiled, eager, (start, dynamic, cotangent, points), "jax.vjp of f raised", ""
        )
        if not at_start:
            dtheta = layout.flatten(tuple(grads))
            where = "jax.vjp of f at args"
            check_finite_gradient(dtheta, layout.coordinate_name, where, "args", "f")
            at_start.append(dtheta)
        return np.asarray(at, dtype=np.float64).reshape(len(points))

    def gradient() -> NDArray[np.float64]:
        if not at_start:
            run(np.empty((0, layout.size)))
        return at_start[0]

    notes.append(
        "checked in float64 (jax.enable_x64 for the check only; every floating argument "
        "copied to float64, the caller's arrays and JAX's settings left as they were)"
    )
    return Problem(layout, theta, scalar, dynamic, gradient, value_dtype, notes, run)


def forward_gradient(problem: Problem, rows: int) -> NDArray[np.float64]:
    """Return dθ from forward mode: ``jax.jvp`` of ``Σ v·f`` along each coordinate of θ.

    The tangents are the rows of the identity, ``rows`` at a time under
    ``jax.jit(jax.vmap(...))`` (one at a time, uncompiled, for code ``jax.jit`` cannot
    trace); a ``jax.custom_jvp`` rule is what this runs.
    """
    layout = problem.layout

    def loss(theta: Any) -> Any:
        return problem.scalar(layout.unflatten(theta), problem.dynamic)

    def slopes(theta: Any, first: Any) -> Any:
        basis = jax.nn.one_hot(first + jnp.arange(rows), layout.size, dtype=jnp.float64)
        return jax.vmap(lambda tangent: jax.jvp(loss, (theta,), (tangent,))[1])(basis)

    theta = jnp.asarray(problem.theta)
    try:
        compiled = SharedJit(slopes)
        chunks = [np.asarray(compiled(theta, first)) for first in range(0, layout.size, rows)]
        dtheta = np.concatenate(chunks)[: layout.size]
    except jax.errors.JAXTypeError:  # Python control flow on values: one jvp at a time
        basis = np.eye(layout.size)
        dtheta = np.array([float(jax.jvp(loss, (theta,), (t,))[1]) for t in basis])
    except BaseException as error:  # noqa: BLE001 - whatever the user's function raises
        hint = (
            "; check it in reverse mode only (modes=('rev',))" if "custom_vjp" in str(error) else ""
        )
        raise LossEvaluationError(
            f"jax.jvp of f raised {type(error).__name__}: {str(error).strip()}{hint}"
        ) from unless_interrupt(error)
    if not np.all(np.isfinite(dtheta)):
        where = layout.coordinate_name(int(np.flatnonzero(~np.isfinite(dtheta))[0]))
        raise LossEvaluationError(
            f"jax.jvp returned a non-finite derivative at {where}, expected finite values"
        )
    return dtheta.astype(np.float64)
