"""``check_grads`` with JAX's signature, answered by gradprobe's report.

``jax.test_util.check_grads(f, args, order, modes, atol, rtol, eps)`` checks each
order and mode along one random direction and asserts that the tolerances were
exceeded. :func:`check_grads` takes the same arguments and checks the same things
(forward mode through ``jax.jvp``, reverse mode through ``jax.vjp``, and for
``order > 1`` the derivatives of those derivatives, built exactly as JAX builds them)
but every value by name, through :func:`gradprobe.jax.check.check_function`'s routes
(a plain MLP's values from gradprobe's structure-aware evaluator);
a failure raises :class:`CheckGradsError`, an ``AssertionError`` that says which check
failed and carries gradprobe's report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import jax

from gradprobe._validate import check_count, check_modes, check_positive, check_progress
from gradprobe.check.checker import GradientCheckError, hides_failed_check
from gradprobe.check.comparison import DEFAULT_THRESHOLDS
from gradprobe.check.report import GradCheckReport
from gradprobe.errors import InvalidTypeError
from gradprobe.jax._evaluator import check_problem
from gradprobe.jax._mlp import evaluator_for
from gradprobe.jax._problem import read_problem
from gradprobe.numdiff.batched import DEFAULT_MEMORY

__all__ = ["CheckGradsError", "check_grads"]

_MODE_WORDS = {"fwd": "forward mode, jax.jvp", "rev": "reverse mode, jax.vjp"}


class CheckGradsError(GradientCheckError):
    """A derivative checked by :func:`check_grads` does not match finite differences.

    Parameters
    ----------
    report : GradCheckReport
        The failed check's report; ``str(error)`` starts with which check failed.
    check : str
        Which derivative, in JAX's words: ``"JVP"``, ``"VJP"``, ``"JVP of VJP"``, ….
    mode : {"fwd", "rev"}
        The mode of the derivative that failed.
    order : int
        Its order.
    """

    def __init__(self, report: GradCheckReport, check: str, mode: str, order: int) -> None:
        super().__init__(report)
        self.check, self.mode, self.order = check, mode, order
        message = (
            f"check_grads: the {check} ({_MODE_WORDS[mode]}, order {order}) does not match "
            f"finite differences, verdict {report.verdict!r}\n{report}"
        )
        self.args = (message,)

    def __str__(self) -> str:
        return str(self.args[0])


def check_grads(
    f: Callable[..., Any],
    args: Sequence[Any],
    order: int = 1,
    modes: Sequence[str] = ("fwd", "rev"),
    eps: float | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    *,
    progress: Any = None,
) -> list[GradCheckReport]:
    """Check ``f``'s derivatives up to ``order`` like ``jax.test_util.check_grads``.

    Parameters
    ----------
    f : callable
        The function, checked at ``f(*args)``; every argument is differentiated.
    args : sequence of pytree of array_like
        The argument values (floating arrays or pytrees of them).
    order : int, default=1
        Derivatives up to this order are checked: for ``order=2`` also the JVP and VJP of the
        JVP (``jax.jvp(f, primals, tangents)`` differentiated by both) and of
        the VJP (``x ↦ vjp(f, x)(f(x))``), as JAX builds them.
    modes : sequence of {"fwd", "rev"}, default=("fwd", "rev")
        Forward mode checks ``jax.jvp`` along every coordinate (a ``jax.custom_jvp``
        rule); reverse mode checks ``jax.vjp`` with a fixed random cotangent (a
        ``jax.custom_vjp`` rule). A ``custom_vjp`` function has no forward mode: pass
        ``modes=("rev",)``, as JAX needs too.
    eps : float, optional
        The step, used as given; by default gradprobe's step for each value
        (``∛u·max(1, |θᵢ|)``, about 6e-6 in float64), not JAX's fixed 1e-4, which
        crosses ReLU kinks.
    atol : float, optional
        Accepted for JAX's signature; gradprobe needs no absolute tolerance: each
        value's numerical error is bounded from the noise measured at the point.
    rtol : float, optional
        The relative difference below which a check passes (gradprobe's first
        threshold, default 1e-6).
    progress : callable or tqdm-like, optional
        Told how each check advances, as for :func:`gradprobe.jax.check_function`
        (keyword only: not in JAX's signature).

    Returns
    -------
    list of GradCheckReport
        One report per check made, in the order made (JAX's returns None).

    Raises
    ------
    CheckGradsError
        An ``AssertionError`` (and a :class:`~gradprobe.check.checker.GradientCheckError`)
        for the first check that does not pass; ``error.report`` is its report.
    LossEvaluationError, InvalidArgumentError, InvalidTypeError
        As for :func:`gradprobe.jax.check_function`.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> reports = check_grads(jnp.tanh, (jnp.array([0.3, -1.2]),), order=2)
    >>> [report.verdict for report in reports]
    ['ok', 'ok', 'ok', 'ok', 'ok', 'ok']
    """
    __tracebackhide__ = True  # pytest shows the report, not gradprobe's frames
    if not callable(f):
        raise InvalidTypeError(f"f: got {type(f).__name__}, expected a callable")
    if not isinstance(args, Sequence) or isinstance(args, str) or not args:
        raise InvalidTypeError(
            f"args: got {type(args).__name__}, expected a non-empty tuple of argument values"
        )
    depth = check_count(order, "order")
    check_progress(progress)
    chosen_modes = check_modes(modes)
    ok_below = DEFAULT_THRESHOLDS[0] if rtol is None else check_positive(rtol, "rtol")
    thresholds = (ok_below, max(ok_below, DEFAULT_THRESHOLDS[1]))
    notes = []
    if atol is not None:
        check_positive(atol, "atol")
        notes.append(
            f"atol={atol:g} was not used: gradprobe bounds each value's numerical error itself"
        )
    reports: list[GradCheckReport] = []

    def run(function: Callable[..., Any], values: tuple[Any, ...], mode: str, label: str) -> None:
        __tracebackhide__ = hides_failed_check
        started = time.perf_counter()
        with jax.enable_x64(True):
            problem = read_problem(function, values, tuple(range(len(values))), 0)
            problem.notes.extend([*notes, f"check_grads: the {label} ({_MODE_WORDS[mode]})"])
            report = check_problem(
                problem,
                eps=eps,
                thresholds=thresholds,
                sample=None,
                seed=0,
                mode="auto",
                memory=DEFAULT_MEMORY,
                started=started,
                forward=mode == "fwd",
                progress=progress,
                evaluator=evaluator_for,
            )
        reports.append(report)
        if not report.passed:
            raise CheckGradsError(report, label, mode, label.count(" of ") + 1)

    def descend(function: Callable[..., Any], values: tuple[Any, ...], left: int, of: str) -> None:
        __tracebackhide__ = hides_failed_check
        if "fwd" in chosen_modes:
            label = f"JVP of {of}" if of else "JVP"
            run(function, values, "fwd", label)
            if left > 1:

                def jvp(primals: Any, tangents: Any) -> Any:
                    return jax.jvp(function, primals, tangents)

                descend(jvp, (values, values), left - 1, label)
        if "rev" in chosen_modes:
            label = f"VJP of {of}" if of else "VJP"
            run(function, values, "rev", label)
            if left > 1:

                def vjp(*primals: Any) -> Any:
                    out, pullback = jax.vjp(function, *primals)
                    return pullback(out)

                descend(vjp, values, left - 1, label)

    descend(f, tuple(args), depth, "")
    return reports
