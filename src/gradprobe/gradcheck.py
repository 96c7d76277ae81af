"""Gradient checking: compare backprop with numerical derivatives and say what is wrong.

The seed's recipe: reshape every parameter into one vector θ and every analytic
gradient into dθ, compute ``dθ_approx[i] = (J(θ + εeᵢ) − J(θ − εeᵢ)) / 2ε`` for each
``i`` and compare by the relative difference

    ‖dθ_approx − dθ‖₂ / (‖dθ_approx‖₂ + ‖dθ‖₂)

≈1e-7 is great, ≈1e-5 suspicious, ≈1e-3 wrong. :func:`check_gradients` does that
and then the part the seed leaves to the user: it reports the difference for
every named parameter, the worst entries by name (``W2[1, 3]``), a plain-words
diagnosis of each failing parameter, kinks (a ReLU crossing zero inside ±ε), and
it refuses a loss that is random (dropout) instead of reporting noise.

Cost: 2N + 4 loss evaluations for N checked values (plus two per entry that
looks like a kink), one value at a time, or in blocks with ``batched=True``, or
spread over an executor. ``sample=K`` checks K values per parameter; above
100,000 values the check localizes wrong values by group testing instead
(``mode="localize"``, see :mod:`gradprobe.localize`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._params import ParameterLayout, Params, format_index
from gradprobe.batched import DEFAULT_MEMORY, ThetaEvaluator, check_memory, many_differences
from gradprobe.diagnosis import diagnose
from gradprobe.errors import (
    GradientCheckError,
    InvalidArgumentError,
    InvalidTypeError,
    LossEvaluationError,
    NondeterministicLossError,
)
from gradprobe.numdiff import (
    Differences,
    LossOnTheta,
    coordinate_steps,
)
from gradprobe.parallel import resolve_executor

if TYPE_CHECKING:
    from gradprobe.localize import GroupTest

__all__ = [
    "Entry",
    "GradCheckReport",
    "ParameterResult",
    "assemble_report",
    "assert_gradients",
    "check_gradients",
    "choose_mode",
    "run_check",
    "verdict_for",
]

VERDICTS = ("ok", "suspicious", "wrong")
DEFAULT_THRESHOLDS = (1e-6, 1e-4)
MODES = ("auto", "full", "localize")
LOCALIZE_ABOVE = 100_000
"""``mode="auto"`` localizes instead of checking every value above this many values."""
# How many times the loss is evaluated at θ to tell a deterministic loss from a random one.
_REPEATS = 3
# An error within this many times the rounding noise of the difference quotient is noise.
_NOISE_MARGIN = 10.0


@dataclass(frozen=True)
class Entry:
    """One checked coordinate of θ.

    Attributes
    ----------
    name : str
        The coordinate's full name, such as ``"W2[1, 3]"``.
    parameter : str
        The parameter it belongs to, such as ``"W2"``.
    index : tuple of int
        Its multi-index within the parameter.
    analytic, numerical : float
        The two derivatives.
    error : float
        ``|analytic − numerical|``.
    relative_error : float
        ``error / (|analytic| + |numerical|)``, with the rounding noise added below.
    kink : bool
        The one-sided slopes disagree: the loss has a kink within ±ε of θ here.
    """

    name: str
    parameter: str
    index: tuple[int, ...]
    analytic: float
    numerical: float
    error: float
    relative_error: float
    kink: bool

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as JSON-serializable data."""
        return {
            "name": self.name,
            "parameter": self.parameter,
            "index": list(self.index),
            "analytic": self.analytic,
            "numerical": self.numerical,
            "error": self.error,
            "relative_error": self.relative_error,
            "kink": self.kink,
        }


@dataclass(frozen=True)
class ParameterResult:
    """The check of one named parameter.

    Attributes
    ----------
    name : str
        The parameter's name.
    shape : tuple of int
        Its shape.
    checked : int
        How many of its values were checked (all of them unless sampled).
    difference : float
        The seed's relative difference over its checked values.
    verdict : {"ok", "suspicious", "wrong"}
        The band of ``difference`` (or "ok" when the error is rounding noise).
    largest_error : float
        The largest ``|analytic − numerical|`` among its entries.
    largest_error_at : str
        The coordinate where it occurs.
    kinks : int
        Entries where the loss has a kink within ±ε.
    diagnosis : str or None
        For a parameter that is not ok, what the error pattern suggests.
    """

    name: str
    shape: tuple[int, ...]
    checked: int
    difference: float
    verdict: str
    largest_error: float
    largest_error_at: str
    kinks: int
    diagnosis: str | None

    @property
    def size(self) -> int:
        """Number of values in the parameter."""
        return int(np.prod(self.shape))

    def to_dict(self) -> dict[str, Any]:
        """Return the row as JSON-serializable data."""
        return {
            "name": self.name,
            "shape": list(self.shape),
            "checked": self.checked,
            "difference": self.difference,
            "verdict": self.verdict,
            "largest_error": self.largest_error,
            "largest_error_at": self.largest_error_at,
            "kinks": self.kinks,
            "diagnosis": self.diagnosis,
        }


@dataclass(frozen=True)
class GradCheckReport:
    """Everything a gradient check found.

    Attributes
    ----------
    difference : float
        The seed's ``‖dθ_approx − dθ‖₂ / (‖dθ_approx‖₂ + ‖dθ‖₂)`` over all checked values
        (kinks where the analytic value lies between the one-sided slopes excluded).
    verdict : {"ok", "suspicious", "wrong"}
        ``difference`` banded by ``thresholds``; see :func:`verdict_for`.
    thresholds : tuple of float
        ``(ok_below, suspicious_below)``.
    parameters : tuple of ParameterResult
        One row per named parameter, in θ order.
    method : str
        The difference formula.
    eps : float or None
        The step given, or None when chosen automatically.
    steps : tuple of float
        The smallest and largest step used.
    dtype : str
        The dtype(s) the parameters came in; the check itself runs in float64.
    evaluations : int
        Loss evaluations used.
    seconds : float
        Wall time of the check.
    checked : int
        Values of θ checked.
    total : int
        Values in θ.
    mode : str
        How the values were chosen: "full", "sampled", or "localize".
    notes : tuple of str
        What the check did that a reader should know (promotion, dropout off, …).
    entries : tuple of Entry
        Every value checked one by one.
    groups : tuple of GroupTest
        With ``mode="localize"``, every random-sign group test, in the order made.
    """

    difference: float
    verdict: str
    thresholds: tuple[float, float]
    parameters: tuple[ParameterResult, ...]
    method: str
    eps: float | None
    steps: tuple[float, float]
    dtype: str
    evaluations: int
    seconds: float
    checked: int
    total: int
    mode: str
    notes: tuple[str, ...]
    entries: tuple[Entry, ...] = field(repr=False)
    groups: tuple[GroupTest, ...] = field(default=(), repr=False)

    @property
    def passed(self) -> bool:
        """True when the verdict is "ok"."""
        return self.verdict == "ok"

    @property
    def sampled(self) -> bool:
        """True when only some values of θ were checked."""
        return self.checked < self.total

    @property
    def kinks(self) -> int:
        """How many checked entries sit within ±ε of a kink of the loss."""
        return sum(row.kinks for row in self.parameters)

    @property
    def wrong_parameters(self) -> list[str]:
        """Names of the parameters whose verdict is not "ok"."""
        return [row.name for row in self.parameters if row.verdict != "ok"]

    def parameter(self, name: str) -> ParameterResult:
        """Return the row of parameter ``name``."""
        for row in self.parameters:
            if row.name == name:
                return row
        raise InvalidArgumentError(
            f"name: got {name!r}, expected one of {[row.name for row in self.parameters]}"
        )

    def worst(self, k: int = 5) -> list[Entry]:
        """Return the ``k`` checked entries with the largest relative error, worst first."""
        ranked = sorted(self.entries, key=lambda entry: entry.relative_error, reverse=True)
        return ranked[: max(0, int(k))]

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-serializable data (the 10 worst entries included)."""
        return {
            "difference": self.difference,
            "verdict": self.verdict,
            "passed": self.passed,
            "thresholds": list(self.thresholds),
            "method": self.method,
            "eps": self.eps,
            "steps": list(self.steps),
            "dtype": self.dtype,
            "evaluations": self.evaluations,
            "seconds": self.seconds,
            "checked": self.checked,
            "total": self.total,
            "mode": self.mode,
            "sampled": self.sampled,
            "kinks": self.kinks,
            "notes": list(self.notes),
            "wrong_parameters": self.wrong_parameters,
            "parameters": [row.to_dict() for row in self.parameters],
            "worst": [entry.to_dict() for entry in self.worst(10)],
        }

    def __str__(self) -> str:
        from gradprobe.report.text import format_gradcheck

        return format_gradcheck(self)


def verdict_for(difference: float, thresholds: tuple[float, float] = DEFAULT_THRESHOLDS) -> str:
    """Band a relative difference as the seed does.

    Parameters
    ----------
    difference : float
        The seed's relative difference.
    thresholds : tuple of float, default=(1e-6, 1e-4)
        Below the first is "ok" (the seed's ≈1e-7, great), below the second
        "suspicious" (≈1e-5), otherwise "wrong" (≈1e-3). The defaults sit at the
        geometric midpoints of the seed's figures.

    Returns
    -------
    {"ok", "suspicious", "wrong"}

    Examples
    --------
    >>> verdict_for(1e-7), verdict_for(1e-5), verdict_for(1e-3)
    ('ok', 'suspicious', 'wrong')
    """
    if not difference < thresholds[1]:  # NaN counts as wrong
        return "wrong"
    return "ok" if difference < thresholds[0] else "suspicious"


def _relative_difference(numerical: NDArray[np.float64], analytic: NDArray[np.float64]) -> float:
    denominator = float(np.linalg.norm(numerical) + np.linalg.norm(analytic))
    if denominator == 0.0:
        return 0.0
    return float(np.linalg.norm(numerical - analytic)) / denominator


def _check_thresholds(thresholds: object) -> tuple[float, float]:
    try:
        ok, suspicious = (float(t) for t in thresholds)  # type: ignore[attr-defined]
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(
            f"thresholds: got {thresholds!r}, expected two numbers (ok_below, suspicious_below)"
        ) from error
    if not 0 < ok <= suspicious < np.inf:
        raise InvalidArgumentError(
            f"thresholds: got {thresholds!r}, expected 0 < ok_below <= suspicious_below"
        )
    return ok, suspicious


def _check_sample(sample: object) -> int | None:
    if sample is None:
        return None
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)):
        raise InvalidTypeError(
            f"sample: got {type(sample).__name__}, expected a positive int (values per "
            "parameter) or None"
        )
    if sample < 1:
        raise InvalidArgumentError(f"sample: got {sample}, expected at least 1 value per parameter")
    return int(sample)


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
        except Exception as error:
            raise LossEvaluationError(
                f"grads raised {type(error).__name__} at θ: {error}"
            ) from error
        return layout.align(value, "grads(params)")
    return layout.align(grads)


def _refuse_randomness(evaluate: LossOnTheta, theta: NDArray[np.float64]) -> float:
    values = [evaluate(theta) for _ in range(_REPEATS)]
    spread = max(values) - min(values)
    if spread > 8 * np.finfo(np.float64).eps * max(abs(v) for v in values):
        raise NondeterministicLossError(
            f"loss: returned {', '.join(f'{v:.10g}' for v in values)} for the same parameters, "
            "expected the same value every time. A gradient check cannot work with a random "
            "loss: switch dropout off (net.eval()), or fix the random seed inside the loss"
        )
    return values[0]


def _refine_kinks(
    evaluate: LossOnTheta,
    theta: NDArray[np.float64],
    differences: Differences,
    analytic: NDArray[np.float64],
    tolerance: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_]]:
    """Tell kinks from wrong gradients where the one-sided slopes disagree.

    For a smooth loss the one-sided slopes differ by ``ε·f''``; at a kink they differ
    by the jump in slope, whatever ε. So entries whose analytic value fails and
    whose one-sided slopes disagree by more than that failure are differentiated
    again with ε/4: if the disagreement stays, the loss has a kink at θ itself and
    the analytic value is accepted when it lies between the one-sided slopes (a
    valid subgradient); if it vanishes, the kink was crossed inside ±ε and the
    ε/4 central difference replaces the numerical value.

    Returns
    -------
    numerical : ndarray of float64, shape (k,)
        The numerical values, refined where a crossed kink was found.
    kink : ndarray of bool, shape (k,)
        Entries at or near a kink.
    excused : ndarray of bool, shape (k,)
        Kink entries whose analytic value is a valid one-sided choice.
    """
    numerical = differences.gradient.copy()
    kink = np.zeros(len(numerical), dtype=bool)
    excused = np.zeros(len(numerical), dtype=bool)
    if differences.forward is None or differences.backward is None:
        return numerical, kink, excused
    forward, backward = differences.forward, differences.backward
    error = np.abs(analytic - numerical)
    spread = np.abs(forward - backward)
    candidates = np.flatnonzero((error > tolerance) & (spread > error))
    center = differences.center
    for j in candidates.tolist():
        index = int(differences.indices[j])
        original = float(theta[index])
        h = float(differences.steps[j]) / 4
        upper, lower = original + h, original - h
        above, below = evaluate.at(theta, index, upper), evaluate.at(theta, index, lower)
        fine_forward = (above - center) / (upper - original)
        fine_backward = (center - below) / (original - lower)
        fine_spread = abs(fine_forward - fine_backward)
        if fine_spread > 0.6 * spread[j]:
            kink[j] = True
            low, high = sorted((fine_forward, fine_backward))
            excused[j] = low - tolerance[j] <= analytic[j] <= high + tolerance[j]
        elif fine_spread < 0.1 * spread[j]:
            kink[j] = True
            numerical[j] = (above - below) / (upper - lower)
    return numerical, kink, excused


def assemble_report(
    layout: ParameterLayout,
    indices: NDArray[np.intp],
    analytic: NDArray[np.float64],
    numerical: NDArray[np.float64],
    *,
    theta: NDArray[np.float64],
    noise: NDArray[np.float64],
    thresholds: tuple[float, float] = DEFAULT_THRESHOLDS,
    kink: NDArray[np.bool_] | None = None,
    excused: NDArray[np.bool_] | None = None,
    method: str = "central",
    eps: float | None = None,
    steps: NDArray[np.float64] | None = None,
    evaluations: int = 0,
    seconds: float = 0.0,
    mode: str | None = None,
    notes: Sequence[str] = (),
    groups: Sequence[GroupTest] = (),
) -> GradCheckReport:
    """Compare analytic and numerical derivatives over checked coordinates and build the report.

    The one place where differences, verdicts, diagnoses and entries are computed;
    every way of obtaining numerical derivatives (one coordinate at a time, batched,
    structure-aware, PyTorch) ends here.

    Parameters
    ----------
    layout : ParameterLayout
        The layout of θ.
    indices : ndarray of int, shape (k,)
        The checked coordinates of θ, increasing.
    analytic, numerical : ndarray of float64, shape (k,)
        The two derivatives at those coordinates.
    theta : ndarray of float64, shape (size,)
        The point of the check.
    noise : ndarray of float64, shape (k,)
        The rounding noise of each numerical value; errors within a few times it
        are not counted against a parameter.
    thresholds : tuple of float, default=(1e-6, 1e-4)
        The verdict bands.
    kink, excused : ndarray of bool, shape (k,), optional
        Entries at a kink, and those whose analytic value is a valid one-sided slope
        (they count as matching).
    method, eps, steps, evaluations, seconds, mode, notes
        Recorded in the report as they are.
    groups : sequence of GroupTest, default=()
        Group tests of a localization. A parameter with no checked coordinate gets its
        row from its whole-parameter tests, and the report's difference and verdict
        are then the worst of its rows.

    Returns
    -------
    GradCheckReport
    """
    count = len(indices)
    kink = np.zeros(count, dtype=bool) if kink is None else kink
    excused = np.zeros(count, dtype=bool) if excused is None else excused
    compared = np.where(excused, analytic, numerical)
    error = np.abs(analytic - compared)
    relative = error / (np.abs(analytic) + np.abs(compared) + noise + np.finfo(float).tiny)
    bad = (relative > thresholds[1]) & (error > _NOISE_MARGIN * noise)
    owner = np.searchsorted(layout.offsets, indices, side="right") - 1
    rows = []
    for k, name in enumerate(layout.names):
        mine = owner == k
        if not np.any(mine):
            continue
        a, n, noise_k = analytic[mine], compared[mine], noise[mine]
        difference = _relative_difference(n, a)
        verdict = verdict_for(difference, thresholds)
        if verdict != "ok" and np.linalg.norm(a - n) <= _NOISE_MARGIN * np.linalg.norm(noise_k):
            verdict = "ok"
        worst = int(np.argmax(error[mine]))
        local = indices[mine] - layout.offsets[k]
        diagnosis = None
        if verdict != "ok":
            shape = layout.shapes[k]
            full_square = (
                len(shape) == 2 and shape[0] == shape[1] and len(local) == int(np.prod(shape))
            )
            diagnosis = diagnose(
                name,
                a,
                n,
                theta[indices[mine]],
                bad[mine],
                partial(_coordinate_name, layout, layout.offsets[k], local),
                _NOISE_MARGIN * noise_k,
                (shape[0], shape[1]) if full_square else None,
            )
        rows.append(
            ParameterResult(
                name=name,
                shape=layout.shapes[k],
                checked=int(np.count_nonzero(mine)),
                difference=difference,
                verdict=verdict,
                largest_error=float(error[mine][worst]),
                largest_error_at=layout.coordinate_name(int(indices[mine][worst])),
                kinks=int(np.count_nonzero(kink[mine])),
                diagnosis=diagnosis,
            )
        )
    difference = _relative_difference(compared, analytic)
    verdict = verdict_for(difference, thresholds)
    if verdict != "ok" and all(row.verdict == "ok" for row in rows):
        verdict = "ok"  # every parameter's error is rounding noise
    if groups:
        rows = _group_rows(layout, rows, groups)
        difference = max(row.difference for row in rows)
        verdict = max((row.verdict for row in rows), key=VERDICTS.index)
    entries = []
    # Multi-indices for all entries at once: one unravel per parameter, not per entry.
    multis: list[tuple[int, ...]] = [()] * count
    for k in np.unique(owner).tolist():
        mine = np.flatnonzero(owner == k)
        local = indices[mine] - layout.offsets[k]
        unraveled = np.unravel_index(local, layout.shapes[k]) if layout.shapes[k] else ()
        for position, multi in zip(
            mine.tolist(), zip(*(u.tolist() for u in unraveled), strict=True), strict=False
        ):
            multis[position] = multi
    errors = np.abs(analytic - numerical).tolist()
    reported = np.where(excused, 0.0, relative).tolist()
    for j, (k, multi) in enumerate(zip(owner.tolist(), multis, strict=True)):
        entries.append(
            Entry(
                name=format_index(layout.names[k], multi),
                parameter=layout.names[k],
                index=multi,
                analytic=float(analytic[j]),
                numerical=float(numerical[j]),
                error=errors[j],
                relative_error=reported[j],
                kink=bool(kink[j]),
            )
        )
    all_notes = list(notes)
    promoted = sorted({str(d) for d in layout.dtypes if d != np.float64})
    if promoted:
        all_notes.append(f"{', '.join(promoted)} parameters promoted to float64 for the check")
    if np.any(kink):
        all_notes.append(
            f"{int(np.count_nonzero(kink))} entries sit at a kink of the loss (a ReLU or max "
            f"crossing within ±ε); {int(np.count_nonzero(excused))} of them have an analytic "
            "value between the one-sided slopes and count as matching"
        )
    if steps is None or len(steps) == 0:
        steps = np.zeros(1)
    return GradCheckReport(
        difference=difference,
        verdict=verdict,
        thresholds=thresholds,
        parameters=tuple(rows),
        method=method,
        eps=eps,
        steps=(float(np.min(steps)), float(np.max(steps))),
        dtype=", ".join(sorted({str(d) for d in layout.dtypes})),
        evaluations=evaluations,
        seconds=seconds,
        checked=count,
        total=layout.size,
        mode=mode or ("full" if count == layout.size else "sampled"),
        notes=tuple(all_notes),
        entries=tuple(entries),
        groups=tuple(groups),
    )


def _group_rows(
    layout: ParameterLayout, rows: list[ParameterResult], groups: Sequence[GroupTest]
) -> list[ParameterResult]:
    """Rows in θ order, parameters without checked values rowed by their passed group tests."""
    have = {row.name: row for row in rows}
    ordered = []
    for k, name in enumerate(layout.names):
        if name in have:
            ordered.append(have[name])
            continue
        tests = [test for test in groups if test.parameter == name and test.depth == 0]
        if not tests:
            continue
        residuals = [
            abs(a - n) for test in tests for a, n in zip(test.analytic, test.numerical, strict=True)
        ]
        ordered.append(
            ParameterResult(
                name=name,
                shape=layout.shapes[k],
                checked=0,
                difference=max(test.difference for test in tests),
                verdict="ok",
                largest_error=max(residuals),
                largest_error_at="random-sign direction",
                kinks=0,
                diagnosis=None,
            )
        )
    return ordered


def _coordinate_name(
    layout: ParameterLayout, offset: int, local: NDArray[np.intp], position: int
) -> str:
    return layout.coordinate_name(offset + int(local[position]))


def rounding_noise(center: float, steps: NDArray[np.float64], method: str) -> NDArray[np.float64]:
    """Return the rounding noise of difference quotients with the given steps.

    Each loss value carries a relative rounding error of a few machine epsilons,
    so a quotient ``(f₊ − f₋) / (x₊ − x₋)`` carries about ``4u·|f| / (x₊ − x₋)``.
    The complex step subtracts nothing and has none to speak of.
    """
    unit = np.finfo(np.float64).eps
    if method == "complex":
        return np.zeros_like(steps)
    width = steps if method in ("forward", "backward") else 2 * steps
    noise: NDArray[np.float64] = 4 * unit * max(abs(center), np.finfo(float).tiny) / width
    return noise


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
) -> GradCheckReport:
    """Check analytic gradients against numerical ones and say which are wrong.

    Parameters
    ----------
    loss : callable
        ``loss(params) -> float``: the cost J, called with a structure like ``params``
        holding float64 arrays. It must be deterministic (switch dropout off) and
        include every term the gradients include (the seed: "remember regularization").
    params : dict of str to ndarray, list or tuple of ndarray, or ndarray
        The point of the check, flattened into θ in a fixed order: dict insertion
        order, list order, each array in C order. Never modified.
    grads : same structure as params, or callable
        The analytic gradients dθ, keyed like ``params`` (``"dW1"`` is accepted for
        ``"W1"``), or ``grads(params)`` returning them.
    eps : float, optional
        The step ε, used exactly as given; by default ``∛u·max(1, |θᵢ|)`` for central
        differences (``u`` the machine epsilon of the loss's precision).
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
        ``4·log2(N)`` evaluations per wrong value; see :mod:`gradprobe.localize`);
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

    Returns
    -------
    GradCheckReport
        ``report.verdict``, ``report.difference``, ``report.parameters`` (one row per
        parameter with its diagnosis), ``report.worst(k)``; ``print(report)`` shows a table.

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
    thresholds = _check_thresholds(thresholds)
    count = _check_sample(sample)
    layout = ParameterLayout.from_params(params)
    theta = layout.flatten(params)
    chosen = choose_mode(mode, layout.size, count)
    memory = check_memory(memory)
    with resolve_executor(executor, workers) as pool:
        evaluate = (
            ThetaEvaluator(loss, layout, batched=batched, executor=pool, memory=memory)
            if batched or pool is not None
            else LossOnTheta(loss, layout)
        )
        return run_check(
            evaluate,
            theta,
            grads,
            eps=eps,
            method=method,
            thresholds=thresholds,
            sample=count,
            seed=seed,
            mode=chosen,
            notes=notes,
            started=started,
        )


def choose_mode(mode: object, size: int, sample: int | None) -> str:
    """Resolve ``mode="auto"`` and check the combination of ``mode`` and ``sample``.

    Returns
    -------
    {"full", "localize"}
        ``"auto"`` is ``"localize"`` above :data:`LOCALIZE_ABOVE` values unless sampled.
    """
    if mode not in MODES:
        raise InvalidArgumentError(f"mode: got {mode!r}, expected one of {', '.join(MODES)}")
    if mode == "localize" and sample is not None:
        raise InvalidArgumentError(
            f"sample: got {sample} with mode='localize', expected sample=None: localization "
            "already checks every value through group tests"
        )
    if mode == "auto":
        return "localize" if size > LOCALIZE_ABOVE and sample is None else "full"
    return str(mode)


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
) -> GradCheckReport:
    """Run a check with a prepared loss on θ: the engine behind :func:`check_gradients`.

    Callers that evaluate the loss their own way (structure-aware for an MLP, on
    PyTorch modules) wrap it in a :class:`~gradprobe.numdiff.LossOnTheta` subclass,
    typically a :class:`~gradprobe.batched.ThetaEvaluator`, and call this.

    Parameters
    ----------
    evaluate : LossOnTheta
        The loss on θ; a :class:`~gradprobe.batched.ThetaEvaluator` is asked for
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

    Returns
    -------
    GradCheckReport
    """
    started = time.perf_counter() if started is None else started
    layout = evaluate.layout
    center = _refuse_randomness(evaluate, theta)
    analytic_all = _analytic(grads, layout, theta)
    if mode == "localize":
        from gradprobe.localize import localize_check

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
        )
    indices = _choose_indices(layout, sample, seed)
    steps = coordinate_steps(method, theta, indices, eps, evaluate.value_dtype)
    differences = many_differences(evaluate, theta, indices, steps, method)
    analytic = analytic_all[indices]
    noise = value_noise(evaluate, center, steps, method)
    tolerance = thresholds[0] * (np.abs(analytic) + np.abs(differences.gradient)) + noise
    numerical, kink, excused = _refine_kinks(evaluate, theta, differences, analytic, tolerance)
    return assemble_report(
        layout,
        indices,
        analytic,
        numerical,
        theta=theta,
        noise=noise,
        thresholds=thresholds,
        kink=kink,
        excused=excused,
        method=method,
        eps=eps,
        steps=steps,
        evaluations=evaluate.evaluations,
        seconds=time.perf_counter() - started,
        notes=precision_notes(evaluate, notes),
    )


def value_noise(
    evaluate: LossOnTheta, center: float, steps: NDArray[np.float64], method: str
) -> NDArray[np.float64]:
    """Return :func:`rounding_noise`, scaled up when the loss computes in low precision."""
    noise = rounding_noise(center, steps, method)
    if evaluate.value_dtype != np.float64:
        noise = noise * float(np.finfo(evaluate.value_dtype).eps / np.finfo(np.float64).eps)
    return noise


def precision_notes(evaluate: LossOnTheta, notes: Sequence[str]) -> list[str]:
    """Return ``notes`` plus a warning when the loss computes in low precision."""
    all_notes = list(notes)
    if evaluate.value_dtype != np.float64:
        all_notes.append(
            f"the loss is computed in {evaluate.value_dtype}: its rounding noise is far above "
            "float64's, steps were chosen for it and differences near the thresholds may be "
            "rounding; compute the loss in float64 for a sharper check"
        )
    return all_notes


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
    """
    report = check_gradients(loss, params, grads, **options)
    if not report.passed:
        raise GradientCheckError(report)
    return report
