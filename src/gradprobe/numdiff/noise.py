"""Measure the computational noise of a function: the ECnoise method of Moré & Wild (2011).

A loss computed in floating point is not the smooth function it stands for: each value
carries a rounding error, and a loss such as ``−log(1 − a)`` with ``a`` near 1 carries
far more than ``u·|J|``. Moré and Wild ("Estimating computational noise", SIAM J. Sci.
Comput. 33, 2011) read that noise off a difference table: evaluate ``f`` at
``x + i·h·p`` for equally spaced ``i`` along a random unit direction ``p``; the
``k``-th differences of a smooth function shrink like ``h^k``, those of noise do not,
and for noise of standard deviation σ the scaled mean square
``γ_k·mean((Δ^k f)²)`` with ``γ_k = (k!)² / (2k)!`` equals σ². Where three successive
orders agree within a factor 4 and the differences change sign, that level is the
noise. A table whose values spread by more than 10 % of their size (or that shows no
such level) says the step was too large; one where half the first differences are
exactly 0 says it was too small, and the step is changed by a factor 100 and the table
made again.

:func:`noise_level` is the table itself; :func:`measure_noise` makes the evaluations
(through any :class:`~gradprobe.numdiff.perturbation.LossOnTheta`, stacked when the
evaluator can) and returns a :class:`NoiseEstimate`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe.errors import LossEvaluationError
from gradprobe.numdiff.batched import ThetaEvaluator
from gradprobe.numdiff.perturbation import LossOnTheta

__all__ = [
    "DEVIATIONS",
    "TRUNCATION_SAFETY",
    "NoiseEstimate",
    "complex_bound",
    "direction_rng",
    "measure_noise",
    "noise_level",
    "scalar_noise",
    "value_noise",
]

DEVIATIONS = 4.0
"""A rounding bound is this many standard deviations of the measured noise."""
TRUNCATION_SAFETY = 2.0
"""A truncation bound is this many times the truncation measured from a second step."""
# Values in a table, the centre included; 9 allow differences of order 8.
POINTS = 9
# The first steps of the three tables, relative to max(1, rms θ), and the factor between
# tries. Noise made of rounding is often a deterministic sawtooth, and a table whose spacing
# happens to match its period sees a smooth function; a table that crosses a kink (a ReLU
# switching) sees a jump that looks like noise. So each table starts at θ and goes one
# way (a kink through θ itself is never crossed), the three have incommensurate spacings
# and directions, and the median level is kept.
_FIRST_STEPS = (1e-7, 1e-7 * np.e / 2, 1e-7 * np.pi / np.sqrt(7))
_FACTOR = 100.0
_TRIES = 4
# Mixed into an integer seed so the directions differ from what the seed draws elsewhere.
_DIRECTIONS = 0x6E6F697365


@dataclass(frozen=True)
class NoiseEstimate:
    """The noise of a function's values near a point.

    Attributes
    ----------
    sigma : float
        The standard deviation of the noise in one value (0 when the values were exactly
        equal at every step tried: noise below the resolution of the format).
    relative : float
        ``sigma / |f(x)|`` (``inf`` when ``f(x) = 0`` and ``sigma > 0``).
    step : float
        The spacing of the table that gave ``sigma``.
    order : int
        The difference order at which the noise was read (0 when not measured).
    status : {"measured", "below resolution", "not detected", "not measurable"}
        ``"not detected"``: every table was dominated by the function's own variation;
        ``sigma`` is then the smallest level seen, an upper bound at best.
        ``"not measurable"``: the function raised at a point of the table.
    evaluations : int
        Function values computed for the estimate.
    """

    sigma: float
    relative: float
    step: float
    order: int
    status: str
    evaluations: int


def noise_level(values: NDArray[np.float64]) -> tuple[float, int, str]:
    """Read the noise level off one table of equally spaced values (Moré & Wild's ECnoise).

    Parameters
    ----------
    values : ndarray of float64, shape (n,)
        ``f(x + i·h·p)`` for ``i = 0, …, n − 1``.

    Returns
    -------
    sigma : float
        The noise level, or the smallest level seen when none was found.
    order : int
        The difference order that gave it (0 when none did).
    status : {"measured", "step too large", "step too small"}

    Examples
    --------
    >>> import numpy as np
    >>> noisy = 1.0 + 0.01 * np.arange(9.0) + 1e-9 * np.random.default_rng(0).normal(size=9)
    >>> sigma, order, status = noise_level(noisy)
    >>> status, 3e-10 < sigma < 3e-9
    ('measured', True)
    """
    values = np.asarray(values, dtype=np.float64)
    count = len(values)
    low, high = float(np.min(values)), float(np.max(values))
    # Moré and Wild's test for a step so large that the function itself varies by 10 %;
    # meaningless when the values reach 0 (a loss of 0 at a minimum).
    if low * high > 0 and high - low > 0.1 * max(abs(low), abs(high)):
        return 0.0, 0, "step too large"
    differences = values.copy()
    gamma = 1.0
    levels: list[float] = []
    changes: list[bool] = []
    for order in range(1, count):
        differences = np.diff(differences)
        if order == 1 and np.count_nonzero(differences == 0) >= count / 2:
            return 0.0, 0, "step too small"
        gamma *= 0.5 * order / (2 * order - 1)
        levels.append(float(np.sqrt(gamma * np.mean(differences**2))))
        changes.append(bool(np.min(differences) < 0 < np.max(differences)))
    for k in range(len(levels) - 2):
        window = levels[k : k + 3]
        if max(window) <= 4 * min(window) and changes[k]:
            return levels[k], k + 1, "measured"
    return min(levels), 0, "step too large"


def _median(estimates: Sequence[NoiseEstimate]) -> NoiseEstimate:
    """Return the median of the measured estimates (the larger of two), all evaluations."""
    rank = {"measured": 2, "not detected": 1, "below resolution": 0, "not measurable": 0}
    best = max(rank[e.status] for e in estimates)
    usable = sorted((e for e in estimates if rank[e.status] == best), key=lambda e: e.sigma)
    chosen = usable[len(usable) // 2]
    total = sum(e.evaluations for e in estimates)
    return NoiseEstimate(
        chosen.sigma, chosen.relative, chosen.step, chosen.order, chosen.status, total
    )


def _table(
    values_at: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    center: float,
    step: float,
) -> NoiseEstimate:
    """Make tables at decreasing or increasing spacings until one shows the noise."""
    offsets = np.arange(POINTS, dtype=np.float64)
    evaluations = 0
    smallest = np.inf
    tried: set[str] = set()
    for _ in range(_TRIES):
        values = values_at(step * offsets)
        evaluations += POINTS - 1
        sigma, order, status = noise_level(values)
        if status == "measured":
            return NoiseEstimate(sigma, _relative(sigma, center), step, order, status, evaluations)
        tried.add(status)
        if status == "step too large":
            smallest = min(smallest, sigma) if sigma > 0 else smallest
            if "step too small" in tried:
                break
            step /= _FACTOR
        else:
            if "step too large" in tried:
                break
            step *= _FACTOR
    if "step too small" in tried and not np.isfinite(smallest):
        return NoiseEstimate(0.0, 0.0, step, 0, "below resolution", evaluations)
    sigma = float(smallest) if np.isfinite(smallest) else 0.0
    return NoiseEstimate(sigma, _relative(sigma, center), step, 0, "not detected", evaluations)


def _relative(sigma: float, center: float) -> float:
    if sigma == 0.0:
        return 0.0
    return sigma / abs(center) if center != 0.0 else float("inf")


def direction_rng(seed: int | np.random.Generator) -> np.random.Generator:
    """Return a generator for the noise directions, derived from ``seed`` without drawing.

    A copy of a given generator is used, so the caller's generator (and any sample it
    is about to draw) is left exactly as it was.
    """
    if isinstance(seed, np.random.Generator):
        return copy.deepcopy(seed)
    return np.random.default_rng([int(seed), _DIRECTIONS])


def measure_noise(
    evaluate: LossOnTheta,
    theta: NDArray[np.float64],
    center: float,
    rng: np.random.Generator,
) -> NoiseEstimate:
    """Measure the noise of the loss at θ along a seeded random direction.

    Parameters
    ----------
    evaluate : LossOnTheta
        The loss on θ; a stacking :class:`~gradprobe.numdiff.batched.ThetaEvaluator`
        gets each table's points in one request. An evaluator whose
        ``noise_along_coordinates`` is true (one that moves single coordinates far more
        cheaply than it evaluates whole points, such as gradprobe's MLP evaluator) is
        measured along random coordinates instead, through ``evaluate.coordinates``.
    theta : ndarray of float64, shape (size,)
        The point; unchanged on return.
    center : float
        The loss at θ, as ``evaluate`` computed it (each table's first value).
    rng : numpy.random.Generator
        Draws the direction.

    Returns
    -------
    NoiseEstimate
        The median of three estimates (tables from θ along three directions, at
        incommensurate spacings): 8 evaluations per table, one to four tables each.
    """
    scale = max(1.0, float(np.sqrt(np.mean(theta**2)))) if theta.size else 1.0
    stacks = isinstance(evaluate, ThetaEvaluator) and evaluate.stacks
    along_coordinates = bool(getattr(evaluate, "noise_along_coordinates", False))
    estimates = []
    for k, first in enumerate(_FIRST_STEPS):
        sign = (-1.0) ** k
        values_at: Callable[[NDArray[np.float64]], NDArray[np.float64]]
        if along_coordinates:
            # The loss's own route for single coordinates (cheap for a layered model): the
            # noise of the very values the difference quotients are made of.
            index = int(rng.integers(theta.size))
            values_at = partial(_along_coordinate, evaluate, theta, center, index, sign)
            start = first * max(1.0, abs(float(theta[index])))
        else:
            direction = rng.standard_normal(theta.shape) * sign
            direction /= max(float(np.linalg.norm(direction)), np.finfo(float).tiny)
            values_at = partial(_along_direction, evaluate, theta, center, direction, stacks)
            start = first * scale
        try:
            estimates.append(_table(values_at, center, start))
        except LossEvaluationError:
            # The loss cannot be evaluated off θ in every direction (a constraint, a domain
            # edge): no measurement, and the check's own evaluations will say where it fails.
            return NoiseEstimate(0.0, 0.0, start, 0, "not measurable", 0)
    return _median(estimates)


def _along_coordinate(
    evaluate: LossOnTheta,
    theta: NDArray[np.float64],
    center: float,
    index: int,
    sign: float,
    moves: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Return the loss at θ with coordinate ``index`` moved by each of ``sign·moves``."""
    indices = np.full(len(moves) - 1, index)
    moved = evaluate.coordinates(theta, indices, theta[index] + sign * moves[1:])
    return np.concatenate([[center], moved])


def _along_direction(
    evaluate: LossOnTheta,
    theta: NDArray[np.float64],
    center: float,
    direction: NDArray[np.float64],
    stacks: bool,
    moves: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Return the loss at ``θ + t·direction`` for each ``t`` of ``moves`` (the first is 0)."""
    values = np.empty(len(moves))
    values[0] = center
    if stacks:
        assert isinstance(evaluate, ThetaEvaluator)
        values[1:] = evaluate.rows(theta[np.newaxis, :] + moves[1:, np.newaxis] * direction)
    else:
        for j in range(1, len(moves)):
            values[j] = evaluate(theta + moves[j] * direction)
    return values


def scalar_noise(f: Callable[[float], float], x: float, center: float) -> NoiseEstimate:
    """Measure the noise of a scalar function ``f`` at ``x`` (the direction is the x axis).

    Parameters
    ----------
    f : callable
        ``f(t) -> float``.
    x : float
        The point.
    center : float
        ``f(x)``.

    Returns
    -------
    NoiseEstimate
    """
    estimates = []
    for k, first in enumerate(_FIRST_STEPS):
        sign = (-1.0) ** k

        def values_at(moves: NDArray[np.float64], sign: float = sign) -> NDArray[np.float64]:
            return np.array([center] + [f(x + sign * float(move)) for move in moves[1:]])

        estimates.append(_table(values_at, center, first * max(1.0, abs(x))))
    return _median(estimates)


def value_noise(sigma: float, unit: float, center: float, *values: Any) -> NDArray[np.float64]:
    """Return the noise of loss values near θ, from the noise σ measured at θ.

    Noise made of rounding grows with the value: a value ``|f|`` larger than the loss
    at θ carries σ scaled by ``|f| / |f(θ)|`` (which matters near a minimum whose loss is
    close to 0), and never less than one rounding, ``u·|f|/√12``.

    Parameters
    ----------
    sigma : float
        The measured standard deviation of one value at θ.
    unit : float
        The machine epsilon of the loss's precision.
    center : float
        The loss at θ.
    *values : float or ndarray
        The loss values concerned, broadcast together (NaN entries are ignored).

    Returns
    -------
    ndarray of float64
        Per entry, the noise of the largest of its values (and of the loss at θ).
    """
    largest = np.full(np.broadcast_shapes(*(np.shape(v) for v in values)), abs(center))
    for value in values:
        largest = np.fmax(largest, np.abs(value))
    # σ measured at θ belongs to values of the size that was rounded there: |f(θ)|, or
    # σ/u when the loss sums terms far larger than itself (Σ sin over a symmetric grid
    # is 0 with noise of its terms' size); only noise of the first kind grows with |f|.
    rounded = max(abs(center), sigma / unit) if unit > 0 else abs(center)
    grown = sigma * largest / rounded if rounded > 0 else np.zeros_like(largest)
    result: NDArray[np.float64] = np.maximum(np.maximum(sigma, grown), unit * largest / np.sqrt(12))
    return result


def complex_bound(
    numerical: NDArray[np.float64],
    analytic: NDArray[np.float64],
    sigma: float,
    unit: float,
    scale: float = 0.0,
) -> NDArray[np.float64]:
    """Bound the error of complex-step derivatives.

    The complex step subtracts nothing, so its error is rounding: a few units of the
    values compared, or of the gradient's overall ``scale`` (an entry of 1e-204 next to
    entries of 1 is 0 to rounding), plus the relative noise of the loss's real part
    passed on to the derivative (a value computed with cancellation, such as
    ``log(1 − a)``, carries its relative error into the derivative):
    ``8u·(|n| + |a| + scale) + DEVIATIONS·σ·max(|n|, |a|)``.
    """
    size = np.maximum(np.abs(numerical), np.abs(analytic))
    bound: NDArray[np.float64] = 8 * unit * (np.abs(numerical) + np.abs(analytic) + scale)
    return bound + DEVIATIONS * sigma * size
