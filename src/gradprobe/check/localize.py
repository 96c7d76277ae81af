"""Find the wrong values of a gradient by group testing, in O(k·log N) loss evaluations.

A full check differentiates all N values of θ (2N loss evaluations). When the
question is *which* values are wrong, far fewer suffice. For a group G of values
and random signs s, the directional derivative of the loss along ``s_G`` is
``Σ_{i∈G} sᵢ gᵢ``; two loss evaluations measure it, and the analytic gradient
predicts ``Σ_{i∈G} sᵢ aᵢ``. The residual ``r_G = Σ_{i∈G} sᵢ (aᵢ − gᵢ)`` is noise
unless G holds a wrong value, and random signs keep several errors from cancelling.

The search, for each named parameter (so a wrong small bias is not drowned by a
large weight):

1. Test the whole parameter with two independent sign draws, each at steps h and
   h/2. How much the two steps disagree is the *measured noise floor* (rounding
   plus truncation, kinks included) that sets the tolerance; no guessed constant.
2. Split a failing group in halves. The left half is measured with the same two
   draws (restricted to it); the right half's residual is the parent's minus the
   left's, since residuals add, and its noise is propagated. So each level costs
   four loss evaluations, and one wrong value among N is pinned in about
   ``4·log2(N)`` of them.
3. A failing group of at most four values is differentiated value by value, and
   those values go into the report with their analytic and numerical derivatives.
4. When most groups of a parameter fail at some depth, the parameter is wrong as
   a whole: splitting stops, and seeded sampled values give its diagnosis.

Steps: the move along ``s_G`` has length ``2t`` whatever the group size (each value
moves by ``t/√|G|``), with ``t`` the usual central step, so large groups are not
pushed into the loss's curvature. Residuals and floors are in the units of
``Σ sᵢ gᵢ`` and scale with ``√|G|``.

The core, :func:`localize_check`, needs only a :class:`~gradprobe.numdiff.perturbation.LossOnTheta`
(any subclass; a stacking :class:`~gradprobe.numdiff.batched.ThetaEvaluator` evaluates a
level's directions in blocks) and the analytic dθ, so it serves NumPy losses,
gradprobe's MLP and PyTorch modules alike.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe.check.bounds import DEVIATIONS, value_noise
from gradprobe.check.comparison import DEFAULT_THRESHOLDS
from gradprobe.check.coordinates import check_coordinates
from gradprobe.check.entries import GroupTest
from gradprobe.check.report import GradCheckReport
from gradprobe.numdiff.batched import segment_values
from gradprobe.numdiff.noise import NoiseEstimate, direction_rng, measure_noise
from gradprobe.numdiff.perturbation import LossOnTheta
from gradprobe.numdiff.progress import Callback
from gradprobe.numdiff.rules import default_step

__all__ = ["localize_check"]

# Residuals beyond this many noise floors fail (the same margin as the value-by-value check).
_MARGIN = 10.0
# A failing group this small is differentiated value by value.
_LEAF = 4
# A parameter is "wrong as a whole" when at least this many groups at one depth fail ...
_MANY = 8
# ... and they are at least this fraction of the groups tested at that depth.
_MOST = 0.75
# Values sampled to diagnose a parameter that is wrong as a whole.
_SAMPLE = 32
_DRAWS = 2


@dataclass
class _Node:
    parameter: int
    start: int
    stop: int
    depth: int
    residual: NDArray[np.float64]  # (draws,)
    floor: float
    blunt: bool = False  # passed, but within a tolerance larger than the gradient itself


class _Search:
    """State of one localization: the signs, the steps, the evaluations made."""

    def __init__(
        self,
        evaluate: LossOnTheta,
        theta: NDArray[np.float64],
        analytic: NDArray[np.float64],
        center: float,
        eps: float | None,
        thresholds: tuple[float, float],
        rng: np.random.Generator,
        sigma: float = 0.0,
    ) -> None:
        self.evaluate, self.theta, self.analytic = evaluate, theta, analytic
        self.sigma = sigma
        self.center, self.thresholds = center, thresholds
        layout = evaluate.layout
        self.signs = rng.integers(0, 2, size=(_DRAWS, layout.size), dtype=np.int8) * 2 - 1
        self.reach = []  # t of each parameter: the length of half the move
        for k in range(len(layout.names)):
            values = theta[layout.offsets[k] : layout.offsets[k + 1]]
            rms = float(np.sqrt(np.mean(values**2))) if len(values) else 0.0
            self.reach.append(
                float(eps) if eps is not None else float(default_step("central", rms))
            )
        self.unit = float(np.finfo(evaluate.value_dtype).eps)
        self.largest = float(np.max(np.abs(analytic), initial=0.0))  # the gradient's scale
        self.records: list[GroupTest] = []
        self.tests = 0

    def measure(self, node: _Node, scale: float = 1.0) -> tuple[NDArray[Any], NDArray[Any]]:
        """Return ``(Σ sᵢaᵢ, Σ sᵢgᵢ)`` per draw along ``s`` on the node, at ``scale·h``."""
        span = slice(node.start, node.stop)
        h = scale * self.reach[node.parameter] / np.sqrt(node.stop - node.start)
        base = self.theta[span]
        signs = self.signs[:, span]
        upper = base + h * signs
        lower = base - h * signs
        values = segment_values(self.evaluate, self.theta, span, np.concatenate([upper, lower]))
        above, below = values[:_DRAWS], values[_DRAWS:]
        # Both sides use the displacement actually taken, so rounding of θ ± h·s cannot bias.
        predicted = (upper - lower) @ self.analytic[span] / (2 * h)
        measured = (above - below) / (2 * h)
        self.tests += 1
        return predicted, measured

    def rounding(self, node: _Node, scale: float) -> float:
        """Return the rounding noise of a measured ``Σ sᵢgᵢ`` on the node at ``scale·h``."""
        h = scale * self.reach[node.parameter] / np.sqrt(node.stop - node.start)
        noise = value_noise(self.sigma, self.unit, self.center, self.center)
        return float(DEVIATIONS * np.sqrt(2) * noise / (2 * h))

    def judge(
        self, node: _Node, predicted: NDArray[Any], measured: NDArray[Any], inferred: bool
    ) -> bool:
        span = slice(node.start, node.stop)
        spread = self.thresholds[0] * float(np.linalg.norm(self.analytic[span]))
        tolerance = _MARGIN * node.floor + spread
        failed = bool(np.any(np.abs(node.residual) > tolerance))
        self.records.append(
            GroupTest(
                parameter=self.evaluate.layout.names[node.parameter],
                start=node.start,
                stop=node.stop,
                depth=node.depth,
                analytic=tuple(float(v) for v in predicted),
                numerical=tuple(float(v) for v in measured),
                tolerance=tolerance,
                failed=failed,
                inferred=inferred,
            )
        )
        return failed

    def top(self, k: int) -> tuple[_Node, bool]:
        """Test parameter ``k`` as a whole at h and h/2; its floor comes from the two."""
        layout = self.evaluate.layout
        node = _Node(k, layout.offsets[k], layout.offsets[k + 1], 0, np.zeros(_DRAWS), 0.0)
        predicted, measured = self.measure(node)
        fine_predicted, fine_measured = self.measure(node, 0.5)
        residual = predicted - measured
        node.residual = residual
        node.floor = max(
            float(np.max(np.abs(residual - (fine_predicted - fine_measured)))),
            self.rounding(node, 0.5),
        )
        failed = self.judge(node, predicted, measured, inferred=False)
        # A pass means little when the tolerance exceeds the gradient's own size: a wrong
        # value as large as the largest derivative would pass too (rounding noise of a
        # loss with a large offset). Such a parameter is sampled and checked value by value.
        largest = max(float(np.max(np.abs(predicted))), float(np.max(np.abs(measured))))
        largest = max(largest, self.largest)
        node.blunt = not failed and self.records[-1].tolerance > largest
        return node, failed

    def split(self, parent: _Node, top_floor: float, top_size: int) -> list[tuple[_Node, bool]]:
        """Measure the left half, infer the right half, and judge both."""
        middle = (parent.start + parent.stop) // 2
        left = _Node(parent.parameter, parent.start, middle, parent.depth + 1, parent.residual, 0)
        left.floor = top_floor * np.sqrt((middle - parent.start) / top_size)
        predicted, measured = self.measure(left)
        left.residual = predicted - measured
        right = _Node(
            parent.parameter,
            middle,
            parent.stop,
            parent.depth + 1,
            parent.residual - left.residual,
            float(np.hypot(parent.floor, left.floor)),
        )
        span = slice(middle, parent.stop)
        right_predicted = self.signs[:, span] @ self.analytic[span]
        return [
            (left, self.judge(left, predicted, measured, inferred=False)),
            (right, self.judge(right, right_predicted, right_predicted - right.residual, True)),
        ]


def _pick(rng: np.random.Generator, start: int, stop: int) -> NDArray[np.intp]:
    """Up to :data:`_SAMPLE` seeded values of ``theta[start:stop]``, increasing."""
    count = min(stop - start, _SAMPLE)
    return np.sort(rng.choice(stop - start, count, replace=False)).astype(np.intp) + start


def _search_parameter(
    search: _Search,
    k: int,
    rng: np.random.Generator,
    chosen: list[NDArray[np.intp]],
    whole: list[str],
    unresolved: list[str],
    blunt: list[str],
) -> None:
    """Search parameter ``k``: split its failing groups down to the values to check.

    Appends to ``chosen`` the values to differentiate one by one, to ``whole`` the
    parameter's name when most of it is wrong, to ``unresolved`` the groups that
    failed while both their halves passed, and to ``blunt`` the parameter's name when
    it passed only within a tolerance larger than the gradient (then sampled too).
    """
    layout = search.evaluate.layout
    node, failed = search.top(k)
    if node.blunt:
        blunt.append(layout.names[k])
        chosen.append(_pick(rng, node.start, node.stop))
    if not failed:
        return
    top_floor, top_size = node.floor, node.stop - node.start
    frontier = [node]
    while frontier:
        leaves = [n for n in frontier if n.stop - n.start <= _LEAF]
        chosen += [np.arange(n.start, n.stop) for n in leaves]
        tested = []
        for parent in (n for n in frontier if n.stop - n.start > _LEAF):
            halves = search.split(parent, top_floor, top_size)
            tested += halves
            if not any(failed for _, failed in halves):
                # The parent failed but neither half does: noise at the margin, or
                # errors that cancel only in halves; check a sample of it directly.
                first = layout.coordinate_name(parent.start)
                unresolved.append(f"{first} (+{parent.stop - parent.start - 1})")
                chosen.append(_pick(rng, parent.start, parent.stop))
        failing = [n for n, failed in tested if failed]
        if len(failing) >= _MANY and len(failing) >= _MOST * len(tested):
            chosen.append(_pick(rng, node.start, node.stop))
            whole.append(layout.names[k])
            break
        frontier = failing


def _interrupted(
    search: _Search,
    searched: int,
    notes: Sequence[str],
    started: float,
    noise: NoiseEstimate,
    method: str,
    thresholds: tuple[float, float],
) -> GradCheckReport:
    """Report a search stopped by Ctrl-C: its group tests so far, and no new evaluation."""
    layout = search.evaluate.layout
    failing = list(dict.fromkeys(r.parameter for r in search.records if r.failed))
    note = (
        f"interrupted (Ctrl-C) after {searched} of {len(layout.names)} parameters were searched "
        f"({search.tests} group tests); no value was differentiated one by one"
    )
    if failing:
        note += f"; groups of {', '.join(failing)} failed beyond their noise: look there first"
    return check_coordinates(
        search.evaluate,
        search.theta,
        np.empty(0, dtype=np.intp),
        np.empty(0),
        center=search.center,
        eps=None,
        method=method,
        thresholds=thresholds,
        notes=notes,
        started=started,
        mode="partial",
        groups=search.records,
        closing_notes=[note],
        noise=noise,
    )


def localize_check(
    evaluate: LossOnTheta,
    theta: NDArray[np.float64],
    analytic: NDArray[np.float64],
    *,
    center: float,
    eps: float | None = None,
    method: str = "central",
    thresholds: tuple[float, float] = DEFAULT_THRESHOLDS,
    seed: int | np.random.Generator = 0,
    notes: Sequence[str] = (),
    started: float | None = None,
    noise: NoiseEstimate | None = None,
    progress: Callback | None = None,
) -> GradCheckReport:
    """Localize the wrong values of ``analytic`` by group testing and report them.

    This is ``mode="localize"`` of :func:`gradprobe.check_gradients`; call it
    directly with any :class:`~gradprobe.numdiff.perturbation.LossOnTheta` (for instance one that
    evaluates a PyTorch module on θ).

    Parameters
    ----------
    evaluate : LossOnTheta
        The loss on θ, with its layout (the named parameters are the first groups).
    theta : ndarray of float64, shape (size,)
        The point of the check; unchanged on return.
    analytic : ndarray of float64, shape (size,)
        The analytic gradient dθ.
    center : float
        The loss at θ.
    eps : float, optional
        The length ``t`` of half of each directional move, and the step of
        value-by-value differences; by default ``∛u·max(1, rms θ)`` per parameter.
    method : str, default="central"
        The difference formula for the values checked one by one.
    thresholds : tuple of float, default=(1e-6, 1e-4)
        As for :func:`gradprobe.check_gradients`; the first also tolerates a residual
        of that relative size in a group.
    seed : int or numpy.random.Generator, default=0
        Seeds the sign draws and the sampled values.
    notes : sequence of str, default=()
        Lines copied into the report.
    started : float, optional
        ``time.perf_counter()`` when the check began.
    noise : NoiseEstimate, optional
        The loss's noise at θ; measured here when not given.
    progress : callable, optional
        ``progress(done, total)`` after each parameter is searched: the values of θ
        localized so far, of ``total`` (θ's size).

    Returns
    -------
    GradCheckReport
        ``mode="localize"``; entries are the values checked one by one (the wrong ones,
        and the samples of a parameter wrong as a whole); ``report.groups`` holds every
        group test; parameters that passed as a whole have a row with 0 values checked.

    Examples
    --------
    >>> import numpy as np
    >>> from gradprobe._params import ParameterLayout
    >>> w = np.linspace(-1.0, 1.0, 1000)
    >>> layout = ParameterLayout.from_params({"w": w})
    >>> evaluate = LossOnTheta(lambda p: float(np.sum(p["w"] ** 2)), layout)
    >>> analytic = 2 * w
    >>> analytic[123] *= 3.0
    >>> report = localize_check(evaluate, w.copy(), analytic, center=evaluate(w))
    >>> [entry.name for entry in report.worst(1)], report.verdict
    (['w[123]'], 'wrong')
    """
    started = time.perf_counter() if started is None else started
    rng = np.random.default_rng(seed)
    layout = evaluate.layout
    if noise is None:
        noise = measure_noise(evaluate, theta, center, direction_rng(seed))
    search = _Search(evaluate, theta, analytic, center, eps, thresholds, rng, noise.sigma)
    chosen: list[NDArray[np.intp]] = []
    whole: list[str] = []
    unresolved: list[str] = []
    blunt: list[str] = []
    searched = 0
    try:
        for k in range(len(layout.names)):
            if layout.offsets[k + 1] > layout.offsets[k]:
                _search_parameter(search, k, rng, chosen, whole, unresolved, blunt)
            searched = k + 1
            if progress is not None:
                progress(layout.offsets[k + 1], layout.size)
    except KeyboardInterrupt:
        if not search.records:
            raise  # Ctrl-C before any group test: plain Ctrl-C
        return _interrupted(search, searched, notes, started, noise, method, thresholds)
    indices = np.unique(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.intp)
    indices = indices.astype(np.intp)
    search_notes = [
        f"localized by group testing: {search.tests} random-sign directional checks with "
        f"{_DRAWS} sign draws each, {len(indices)} values then differentiated one by one; "
        "a parameter with 0 values checked passed as a whole"
    ]
    for name in whole:
        search_notes.append(
            f"most of {name} is wrong: splitting stopped, and up to {_SAMPLE} seeded sampled "
            f"values of {name} are shown and diagnosed"
        )
    if blunt:
        search_notes.append(
            f"the loss's rounding noise is larger than the gradient of {', '.join(blunt[:5])}"
            f"{' …' if len(blunt) > 5 else ''}, so passing as a whole proved nothing: up to "
            f"{_SAMPLE} seeded sampled values of each were checked one by one"
        )
    if unresolved:
        search_notes.append(
            f"{len(unresolved)} group(s) failed while both their halves passed, so up to "
            f"{_SAMPLE} of their values were checked one by one: {', '.join(unresolved[:5])}"
        )
    return check_coordinates(
        evaluate,
        theta,
        indices,
        analytic[indices],
        center=center,
        eps=eps,
        method=method,
        thresholds=thresholds,
        notes=notes,
        started=started,
        mode="localize",
        groups=search.records,
        closing_notes=search_notes,
        noise=noise,
    )
