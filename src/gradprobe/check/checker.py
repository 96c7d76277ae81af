"""Gradient checking: compare backprop with numerical derivatives and say what is wrong.

The course notes' recipe: reshape every parameter into one vector θ and every analytic
gradient into dθ, compute ``dθ_approx[i] = (J(θ + εeᵢ) − J(θ − εeᵢ)) / 2ε`` for each
``i`` and compare by the relative difference

    ‖dθ_approx − dθ‖₂ / (‖dθ_approx‖₂ + ‖dθ‖₂)

≈1e-7 is great, ≈1e-5 suspicious, ≈1e-3 wrong. :func:`check_gradients` reports
that number, and backs every verdict by a bound it measured: the loss's computational
noise at θ (:mod:`gradprobe.numdiff.noise`), each entry's rounding and truncation
error (:mod:`gradprobe.check.bounds`), re-checks at further steps for the entries
that are not yet clear (:mod:`gradprobe.check.escalate`). An entry is wrong only
beyond three bounds; rows and the headline follow from the entries, so the verdict
is never better than its worst row; "inconclusive" says, with what to try, that some
entries could be told neither right nor wrong. It names the worst entries
(``W2[1, 3]``) by error over bound, diagnoses each failing parameter in plain words,
reports kinks (a ReLU crossing at θ or within ±ε), and refuses a loss that is random
(dropout) instead of reporting noise.

Cost: 2N loss evaluations for N checked values, plus 3 at θ, 24 to 96 for the noise,
and a few per entry that the first step leaves unclear (typically well under 1 %),
one value at a time, or in blocks with ``batched=True``, or spread over an executor.
``sample=K`` checks K values per parameter; above 100,000 values the check localizes
wrong values by group testing instead (``mode="localize"``, see
:mod:`gradprobe.check.localize`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._params import ParameterLayout, Params
from gradprobe._validate import (
    check_batched,
    check_notes,
    check_steps,
    unless_interrupt,
)
from gradprobe.check.comparison import DEFAULT_THRESHOLDS, verdict_for
from gradprobe.check.coordinates import check_coordinates
from gradprobe.check.entries import Entry, ParameterResult
from gradprobe.check.localize import localize_check
from gradprobe.check.report import GradCheckReport
from gradprobe.check.setup import CheckSetup, choose_mode, prepare_check
from gradprobe.errors import (
    GradprobeError,
    LossEvaluationError,
    NondeterministicLossError,
)
from gradprobe.numdiff.batched import DEFAULT_MEMORY, ThetaEvaluator
from gradprobe.numdiff.noise import NoiseEstimate, direction_rng, measure_noise
from gradprobe.numdiff.parallel import resolve_executor
from gradprobe.numdiff.perturbation import LossOnTheta
from gradprobe.numdiff.progress import as_callback

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Entry",
    "GradCheckReport",
    "GradientCheckError",
    "CheckSetup",
    "hides_failed_check",
    "ParameterResult",
    "assert_gradients",
    "check_gradients",
    "choose_mode",
    "prepare_check",
    "run_check",
    "run_prepared",
    "verdict_for",
]

# How many times the loss is evaluated at θ to tell a deterministic loss from a random one.
_REPEATS = 3


def _choose_indices(
    layout: ParameterLayout, sample: int | None, seed: int | np.random.Generator
) -> NDArray[np.intp]:
    """All of θ, or ``sample`` seeded random values of every parameter, in θ order."""
    if sample is None:
        return np.arange(layout.size, dtype=np.intp)
    rng = np.random.default_rng(seed)
    chosen = []
    for k in range(len(layout.names)):
        start, stop = layout.offsets[k], layout.offsets[k + 1]
        if stop - start <= sample:
            chosen.append(np.arange(start, stop))
        else:
            chosen.append(np.sort(rng.choice(np.arange(start, stop), sample, replace=False)))
    return np.concatenate(chosen).astype(np.intp)


def _analytic(
    grads: object, layout: ParameterLayout, theta: NDArray[np.float64]
) -> NDArray[np.float64]:
    if callable(grads):
        try:
            value = grads(layout.unflatten(theta.copy()))
        except BaseException as error:  # noqa: BLE001 - whatever the user's grads raises
            raise LossEvaluationError(
                f"grads raised {type(error).__name__} at θ: {error}"
            ) from unless_interrupt(error)
        return layout.align(value, "grads(params)")
    return layout.align(grads)


def _refuse_randomness(
    evaluate: LossOnTheta, theta: NDArray[np.float64], nondet_tol: float = 0.0
) -> tuple[float, float]:
    """Return the loss at θ and the spread of repeated values, or refuse a random loss."""
    values = [evaluate(theta) for _ in range(_REPEATS)]
    spread = max(values) - min(values)
    if spread > max(8 * np.finfo(np.float64).eps * max(abs(v) for v in values), nondet_tol):
        raise NondeterministicLossError(
            f"loss: returned {', '.join(f'{v:.10g}' for v in values)} for the same parameters, "
            "expected the same value every time. A gradient check cannot work with a random "
            "loss: switch dropout off (net.eval()), or fix the random seed inside the loss"
        )
    return values[0], spread


def check_gradients(
    loss: Callable[[Any], Any],
    params: Params,
    grads: Any,
    *,
    eps: float | None = None,
    method: str = "central",
    thresholds: tuple[float, float] = DEFAULT_THRESHOLDS,
    sample: int | None = None,
    seed: int | np.random.Generator = 0,
    notes: Sequence[str] = (),
    mode: str = "auto",
    batched: bool = False,
    executor: Executor | None = None,
    workers: int | None = None,
    memory: int = DEFAULT_MEMORY,
    progress: Any = None,
) -> GradCheckReport:
    """Check analytic gradients against numerical ones and say which are wrong.

    Parameters
    ----------
    loss : callable
        ``loss(params) -> float``: the cost J, called with a structure like ``params``
        holding float64 arrays. It must be deterministic (switch dropout off) and
        include every term the gradients include (the notes: "remember regularization").
    params : dict of str to ndarray, list or tuple of ndarray, or ndarray
        The point of the check, flattened into θ in a fixed order: dict insertion
        order, list order, each array in C order. Never modified.
    grads : same structure as params, or callable
        The analytic gradients dθ, keyed like ``params`` (``"dW1"`` is accepted for
        ``"W1"``), or ``grads(params)`` returning them.
    eps : float, optional
        The first step ε, used exactly as given; by default ``∛u·max(1, |θᵢ|)`` for
        central differences (``u`` the machine epsilon of the loss's precision). Entries
        it leaves unclear are re-checked at other steps, chosen from the measured noise.
    method : {"central", "forward", "backward", "complex", "richardson"}, default="central"
        The difference formula (see :func:`gradprobe.derivative`). Kinks are found with
        central differences only.
    thresholds : tuple of float, default=(1e-6, 1e-4)
        Differences below the first are "ok", below the second "suspicious", else "wrong".
    sample : int, optional
        Check only this many seeded random values of each parameter (every parameter,
        however small, gets some). By default every value is checked.
    seed : int or numpy.random.Generator, default=0
        Seeds the choice of sampled values.
    notes : sequence of str, default=()
        Lines copied into the report, for callers that prepared the loss (say, dropout off).
    mode : {"auto", "full", "localize"}, default="auto"
        ``"full"`` differentiates every value (2N loss evaluations, or the sample);
        ``"localize"`` makes one random-sign directional check per parameter and
        splits failing groups in halves until the wrong values are pinned (about
        ``4·log2(N)`` evaluations per wrong value; see :mod:`gradprobe.check.localize`);
        ``"auto"`` is ``"localize"`` above 100,000 values, else ``"full"``.
    batched : bool, default=False
        The loss takes a batch of parameter vectors: every array of its argument
        carries a leading batch axis and it returns one value per row, shape
        ``(batch,)``. Perturbations are then evaluated in blocks, matrix-matrix.
    executor : concurrent.futures.Executor, optional
        Runs blocks of loss evaluations (a process pool, or a cluster's executor such
        as dask's ``Client.get_executor()``); the loss must be picklable.
    workers : int, optional
        Shortcut for a local process pool of this many workers.
    memory : int, default=256 MiB
        Bytes allowed for one block of perturbed parameter vectors.
    progress : callable or tqdm-like, optional
        Told how the check advances: a callable ``progress(done, total)`` or an object
        with ``update(n)`` such as ``tqdm.auto.tqdm()`` (its ``total`` is set); values
        differentiated, or with ``mode="localize"`` values of θ searched.

    Returns
    -------
    GradCheckReport
        ``report.verdict`` ("ok", "inconclusive", "suspicious" or "wrong"),
        ``report.difference``, ``report.parameters`` (one row per parameter with its
        diagnosis), ``report.worst(k)``, ``report.noise``, ``report.advice``;
        ``print(report)`` shows a table. After Ctrl-C, a partial one
        (``report.partial``, never "ok"); a ``workers=N`` pool is stopped at once.

    Raises
    ------
    NondeterministicLossError
        When the loss gives different values for the same parameters.
    LossEvaluationError
        When the loss or ``grads`` raises, or the loss returns a non-scalar or non-finite value.
    InvalidArgumentError, InvalidTypeError, ShapeMismatchError, NonFiniteError
        For bad arguments (a lambda with an executor among them: it cannot be pickled);
        the message names the argument and what was expected.

    Examples
    --------
    >>> import numpy as np
    >>> W = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> report = check_gradients(lambda p: float(np.sum(p["W"] ** 2)), {"W": W}, {"dW": 2 * W})
    >>> report.verdict
    'ok'
    >>> bad = check_gradients(lambda p: float(np.sum(p["W"] ** 2)), {"W": W}, {"dW": 4 * W})
    >>> bad.verdict, bad.wrong_parameters
    ('wrong', ['W'])
    """
    started = time.perf_counter()
    check_batched(batched, method)
    setup = prepare_check(
        params, thresholds=thresholds, sample=sample, seed=seed, memory=memory, mode=mode
    )
    with resolve_executor(executor, workers) as pool:
        evaluate = (
            ThetaEvaluator(loss, setup.layout, batched=batched, executor=pool, memory=setup.memory)
            if batched or pool is not None
            else LossOnTheta(loss, setup.layout)
        )
        return run_prepared(
            evaluate,
            setup,
            grads,
            eps=eps,
            method=method,
            notes=notes,
            progress=progress,
            started=started,
        )


def run_prepared(
    evaluate: LossOnTheta,
    setup: CheckSetup,
    grads: Any,
    *,
    eps: float | None,
    method: str,
    notes: Sequence[str],
    progress: Any = None,
    started: float | None = None,
) -> GradCheckReport:
    """Run :func:`run_check` at a :class:`CheckSetup`'s θ with its validated arguments.

    The one call :func:`check_gradients` and :func:`gradprobe.check_model` share once
    they have chosen their evaluator.
    """
    return run_check(
        evaluate,
        setup.theta,
        grads,
        eps=eps,
        method=method,
        thresholds=setup.thresholds,
        sample=setup.sample,
        seed=setup.seed,
        mode=setup.mode,
        notes=notes,
        started=started,
        progress=progress,
    )


def run_check(
    evaluate: LossOnTheta,
    theta: NDArray[np.float64],
    grads: Any,
    *,
    eps: float | None = None,
    method: str = "central",
    thresholds: tuple[float, float] = DEFAULT_THRESHOLDS,
    sample: int | None = None,
    seed: int | np.random.Generator = 0,
    mode: str = "full",
    notes: Sequence[str] = (),
    started: float | None = None,
    noise: NoiseEstimate | None = None,
    nondet_tol: float = 0.0,
    progress: Any = None,
) -> GradCheckReport:
    """Run a check with a prepared loss on θ: the engine behind :func:`check_gradients`.

    Callers that evaluate the loss their own way (structure-aware for an MLP, on
    PyTorch modules) wrap it in a :class:`~gradprobe.numdiff.perturbation.LossOnTheta` subclass,
    typically a :class:`~gradprobe.numdiff.batched.ThetaEvaluator`, and call this.

    Parameters
    ----------
    evaluate : LossOnTheta
        The loss on θ; a :class:`~gradprobe.numdiff.batched.ThetaEvaluator` is asked for
        many values at once.
    theta : ndarray of float64, shape (size,)
        The point of the check.
    grads : array structure or callable
        As for :func:`check_gradients`.
    eps, method, thresholds, seed, notes
        As for :func:`check_gradients` (``thresholds`` already validated).
    sample : int, optional
        Values per parameter to check, already validated.
    mode : {"full", "localize"}, default="full"
        Every value (or the sample), or group-testing localization.
    started : float, optional
        ``time.perf_counter()`` when the caller's check began.
    noise : NoiseEstimate, optional
        The loss's noise at θ, when the caller measured it; by default it is measured
        here (:func:`~gradprobe.numdiff.noise.measure_noise`, 24 to 96 evaluations along
        three random directions drawn from ``seed``).
    nondet_tol : float, default=0.0
        How much repeated losses at θ may differ beyond rounding (a nondeterministic
        kernel's last digits) before the loss is refused as random; the spread seen is
        then taken as the noise of every value, if larger than the measured one.
    progress : callable or tqdm-like, optional
        As for :func:`check_gradients`.

    Returns
    -------
    GradCheckReport
        Partial after Ctrl-C, as for :func:`check_gradients`.
    """
    callback = as_callback(progress)
    started = time.perf_counter() if started is None else started
    layout = evaluate.layout
    check_steps(theta, eps, method, "θᵢ")
    notes = check_notes(notes)
    center, spread = _refuse_randomness(evaluate, theta, nondet_tol)
    analytic_all = _analytic(grads, layout, theta)
    if noise is None:
        noise = measure_noise(evaluate, theta, center, direction_rng(seed))
    if spread > noise.sigma:  # a forward allowed to vary (nondet_tol) is that noisy at least
        relative = spread / abs(center) if center else float("inf")
        noise = dataclasses.replace(noise, sigma=spread, relative=relative)
    if mode == "localize":
        return localize_check(
            evaluate,
            theta,
            analytic_all,
            center=center,
            eps=eps,
            method=method,
            thresholds=thresholds,
            seed=seed,
            notes=notes,
            started=started,
            noise=noise,
            progress=callback,
        )
    indices = _choose_indices(layout, sample, seed)
    return check_coordinates(
        evaluate,
        theta,
        indices,
        analytic_all[indices],
        center=center,
        eps=eps,
        method=method,
        thresholds=thresholds,
        notes=notes,
        started=started,
        noise=noise,
        progress=callback,
    )


def assert_gradients(
    loss: Callable[[Any], Any], params: Params, grads: Any, **options: Any
) -> GradCheckReport:
    """Run :func:`check_gradients` and raise when the verdict is not "ok".

    Parameters
    ----------
    loss, params, grads, **options
        As for :func:`check_gradients`.

    Returns
    -------
    GradCheckReport
        The report of a passing check.

    Raises
    ------
    GradientCheckError
        When the check does not pass; ``str(error)`` is the readable report and
        ``error.report`` the report itself.
    KeyboardInterrupt
        On Ctrl-C: a test run stops rather than fail on a partial check.
    """
    __tracebackhide__ = True  # pytest shows the report, not gradprobe's frames
    report = check_gradients(loss, params, grads, **options)
    if report.partial:
        raise KeyboardInterrupt(report.notes[-1])
    if not report.passed:
        raise GradientCheckError(report)
    return report


class GradientCheckError(GradprobeError, AssertionError):
    """A gradient check did not pass; raised by :func:`gradprobe.assert_gradients`.

    Parameters
    ----------
    report : GradCheckReport
        The full report of the failed check; ``str(error)`` is its readable table.
    """

    def __init__(self, report: GradCheckReport) -> None:
        super().__init__(str(report))
        self.report = report


def hides_failed_check(info: Any) -> bool:
    """Tell pytest to leave a gradprobe frame out of a traceback when a check failed.

    A helper frame sets ``__tracebackhide__ = hides_failed_check``: on a
    :class:`GradientCheckError` (whose message is the report) pytest skips the frame;
    any other error, a bug included, keeps its full trace.

    Parameters
    ----------
    info : _pytest._code.ExceptionInfo
        What pytest passes: the exception being shown.

    Returns
    -------
    bool
        True when the exception is a failed gradient check.
    """
    return bool(info.errisinstance(GradientCheckError))
