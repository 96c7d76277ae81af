"""Check the gradients JAX computes for any function of pytrees of arrays.

:func:`check_function` copies the chosen arguments to float64 (``jax.enable_x64`` for
the check only), takes the analytic gradient from ``jax.vjp`` and hands the
numerical side to gradprobe's engine through :mod:`gradprobe.jax._evaluator`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from gradprobe._validate import check_argnums, check_memory, check_progress, check_seed
from gradprobe.check.comparison import DEFAULT_THRESHOLDS
from gradprobe.check.report import GradCheckReport
from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.jax._evaluator import check_problem
from gradprobe.jax._mlp import evaluator_for
from gradprobe.jax._problem import read_problem
from gradprobe.numdiff.batched import DEFAULT_MEMORY

__all__ = ["check_function"]


def check_function(
    f: Callable[..., Any],
    *args: Any,
    argnums: int | tuple[int, ...] = 0,
    eps: float | None = None,
    thresholds: tuple[float, float] = DEFAULT_THRESHOLDS,
    sample: int | None = None,
    seed: int = 0,
    mode: str = "auto",
    memory: int = DEFAULT_MEMORY,
    progress: Any = None,
) -> GradCheckReport:
    """Check the gradient JAX computes for ``f`` by the arguments ``argnums``.

    ``f`` may return a scalar, an array or a pytree of arrays; a non-scalar output
    ``y`` is reduced to ``Σ v·y`` with a fixed random ``v`` (seeded by ``seed``), whose
    gradient is the vector-Jacobian product ``jax.vjp`` computes. Custom rules
    (``jax.custom_vjp``, ``jax.custom_jvp``) are what this checks: their backward
    pass against central differences of their forward pass.

    When ``f`` computes a plain MLP (dense layers ``x @ W + b``, one activation among
    relu, leaky relu, tanh, sigmoid or none, under softmax cross-entropy, mean squared
    error or binary cross-entropy with logits), the numerical values come from
    gradprobe's structure-aware MLP evaluator instead, once its copy's losses agreed
    with ``f``'s; the report's notes say which route ran.

    Parameters
    ----------
    f : callable
        ``f(*args)``, written with ``jax.numpy``; it may be jitted or not.
    *args : pytree of array_like
        The positional arguments: arrays, or any nesting of dicts, lists, tuples and
        named tuples of arrays (Flax, Haiku and optax parameters), or registered pytree
        nodes (Equinox modules). Every floating array is copied to float64 for the
        check; the caller's arrays are never modified.
    argnums : int or tuple of int, default=0
        The arguments differentiated, as for ``jax.grad``; each must hold only floating
        arrays. Their values are named by ``f``'s parameter name and JAX's key path:
        ``params['dense_1']['kernel'][3, 1]`` (``args[i]`` when ``f`` has no signature).
    eps : float, optional
        The step; by default ``∛u·max(1, |θᵢ|)`` for each value.
    thresholds : tuple of float, default=(1e-6, 1e-4)
        The verdict bands, as for :func:`gradprobe.check_gradients`.
    sample : int, optional
        Check this many seeded random values of each array; by default all of them.
    seed : int, default=0
        Seeds the cotangent ``v`` and the choice of sampled values.
    mode : {"auto", "full", "localize"}, default="auto"
        ``"full"`` differentiates every value (or the sample), 2 evaluations each,
        compiled with ``jax.jit`` and batched with ``jax.vmap``; ``"localize"`` finds the
        wrong values by group testing in about ``4·log2(N)`` evaluations per wrong
        value; ``"auto"`` is ``"localize"`` above 100,000 values unless ``sample`` is given.
    memory : int, default=256 MiB
        Bytes one chunk of batched evaluations may take (XLA's estimate).
    progress : callable or tqdm-like, optional
        Told how the check advances, as for :func:`gradprobe.check_gradients`: a callable
        ``progress(done, total)`` or an object with ``update(n)`` such as a tqdm bar.

    Returns
    -------
    GradCheckReport
        As :func:`gradprobe.check_gradients` returns it: verdict, difference, one row
        per array with its diagnosis, the worst entries by name, kinks told apart.

    Raises
    ------
    NondeterministicLossError
        When ``f`` gives different values for the same arguments.
    LossEvaluationError
        When ``f`` or its VJP raises, or returns non-finite values.
    InvalidArgumentError, InvalidTypeError
        For bad arguments; the message names the argument and what was expected.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> params = {"w": jnp.array([0.5, -1.0, 2.0])}
    >>> report = check_function(lambda params: jnp.sum(jnp.sin(params["w"])), params)
    >>> report.verdict, [row.name for row in report.parameters]
    ('ok', ["params['w']"])
    """
    started = time.perf_counter()
    if not callable(f):
        raise InvalidTypeError(f"f: got {type(f).__name__}, expected a callable")
    if not args:
        raise InvalidArgumentError("args: got none, expected the arguments of f after f")
    positions = check_argnums(argnums, len(args))
    generator = check_seed(seed)
    budget = check_memory(memory)
    check_progress(progress)
    with jax.enable_x64(True):
        problem = read_problem(f, args, positions, _projection_seed(generator))
        return check_problem(
            problem,
            eps=eps,
            thresholds=thresholds,
            sample=sample,
            seed=generator,
            mode=mode,
            memory=budget,
            started=started,
            progress=progress,
            evaluator=evaluator_for,
        )


def _projection_seed(seed: int | np.random.Generator) -> int:
    """Return an int seed for the cotangent, drawn from a Generator when one is given."""
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(2**31))
    return seed
