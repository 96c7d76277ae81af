"""Numbers, counts, names and steps: a number is an int or a float, finite and in range.

``True`` is not a number and ``"1.5"`` is not a float; an integer too large for a
float is refused by name instead of raising :class:`OverflowError`; a count named in
:data:`LIMITS` is bounded above; a step must move the point it is added to.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from gradprobe.errors import InvalidArgumentError, InvalidTypeError

__all__ = [
    "LIMITS",
    "check_argnums",
    "check_batched",
    "check_choice",
    "check_count",
    "check_eps",
    "check_fraction",
    "check_modes",
    "check_notes",
    "check_positive",
    "check_rate",
    "check_real",
    "check_sample",
    "check_seed",
    "check_steps",
    "check_thresholds",
    "check_tolerance",
    "describe",
    "finite_real",
    "kind",
]

LIMITS: dict[str, int] = {
    "depth": 100_000,
    "epochs": 1_000_000,
    "--epochs": 1_000_000,
    "workers": 1024,
}
"""The largest count each argument takes, beyond the memory check of :func:`check_fits`.

Layers and epochs run one after the other, so these bound the time a call can take;
a process pool's workers all start at once, so that bounds the processes it forks.
"""


def describe(value: object) -> str:
    """Return a short rendering of what a caller passed, safe for any object.

    Examples
    --------
    >>> describe(10**400), describe(2**70), describe("12")
    ('an integer of 401 digits', '1.18e+21', "'12'")
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        bits = abs(int(value)).bit_length()
        if 64 < bits <= 1000:
            return f"{float(value):.3g}"
        if bits > 1000:
            digits = len(str(abs(int(value)))) if bits < 10_000 else "thousands of"
            return f"an integer of {digits} digits"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a hostile __repr__ must not hide the real message
        return f"a {type(value).__name__}"
    text = " ".join(text.split())
    return text if len(text) <= 60 else f"{text[:57]}..."


def kind(value: object) -> str:
    """Return the type and a short rendering of ``value``: ``"str '12'"``."""
    if value is None:
        return "NoneType"
    text = describe(value)
    return text if text.startswith("an integer") else f"{type(value).__name__} {text}"


def check_real(value: object, argument: str, expected: str = "a finite number") -> float:
    """Return ``value`` as a finite float: an int or float, not a bool, string or array.

    Examples
    --------
    >>> check_real(3, "lr")
    3.0
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidTypeError(f"{argument}: got {kind(value)}, expected {expected}")
    try:
        number = float(value)
    except (OverflowError, ValueError, TypeError) as error:
        raise InvalidArgumentError(
            f"{argument}: got {describe(value)}, too large for a float (at most 1.8e308); "
            f"expected {expected}"
        ) from error
    if not math.isfinite(number):
        raise InvalidArgumentError(f"{argument}: got {number}, expected {expected}")
    return number


def finite_real(value: Any) -> bool:
    """Tell whether ``value`` is a finite real number (complex with zero imaginary part too)."""
    with np.errstate(all="ignore"):
        try:
            number = complex(value)
        except (TypeError, ValueError, OverflowError):
            return False
    return number.imag == 0 and math.isfinite(number.real)


def check_positive(value: object, argument: str) -> float:
    """Return ``value`` as a float, refusing anything but a finite number > 0."""
    number = check_real(value, argument, "a positive number")
    if not number > 0:
        raise InvalidArgumentError(f"{argument}: got {number}, expected a positive number")
    return number


def check_rate(value: object, argument: str) -> float:
    """Return ``value`` as a float in ``[0, 1)`` (a decay or momentum rate)."""
    return check_fraction(value, argument, 1.0)


def check_fraction(value: object, argument: str, upper: float) -> float:
    """Return ``value`` as a float in ``[0, upper)``."""
    expected = f"in [0, {upper:g})" if np.isfinite(upper) else ">= 0"
    number = check_real(value, argument, f"a number {expected}")
    if not 0.0 <= number < upper:
        raise InvalidArgumentError(f"{argument}: got {number}, expected a number {expected}")
    return number


def check_tolerance(tolerance: object) -> float:
    """Return the factor a second moment may change by and stay "healthy": finite, > 1.

    Every refusal is an :class:`InvalidArgumentError`, a wrong type included.
    """
    expected = "a finite factor > 1 such as 100"
    if not _is_real(tolerance) or not 1 < _as_float(tolerance) < math.inf:
        raise InvalidArgumentError(f"tolerance: got {describe(tolerance)}, expected {expected}")
    return float(tolerance)  # type: ignore[arg-type]


def check_thresholds(thresholds: object) -> tuple[float, float]:
    """Return ``(ok_below, suspicious_below)`` as floats with ``0 < ok <= suspicious < inf``.

    Every refusal is an :class:`InvalidArgumentError`, a wrong type included; a string
    such as ``"12"`` is not two numbers.

    Examples
    --------
    >>> check_thresholds([1e-6, 1e-4])
    (1e-06, 0.0001)
    """
    values = (
        list(thresholds)
        if isinstance(thresholds, (Sequence, np.ndarray))
        and not isinstance(thresholds, (str, bytes))
        else []
    )
    if len(values) != 2 or not all(_is_real(t) for t in values):
        raise InvalidArgumentError(
            f"thresholds: got {describe(thresholds)}, expected two numbers (ok_below, "
            "suspicious_below) such as (1e-6, 1e-4)"
        )
    ok, suspicious = (_as_float(t) for t in values)
    if not 0 < ok <= suspicious < math.inf:
        raise InvalidArgumentError(
            f"thresholds: got {describe(thresholds)}, expected 0 < ok_below <= suspicious_below "
            "< inf"
        )
    return ok, suspicious


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _as_float(value: Any) -> float:
    """``float(value)``, with infinity for an integer too large for a float."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def check_count(value: object, argument: str, minimum: int = 1) -> int:
    """Return ``value`` as an int ``>= minimum`` (a depth, a width, a batch size).

    Counts named in :data:`LIMITS` are bounded above as well.

    Parameters
    ----------
    value : object
        What the caller passed.
    argument : str
        The argument's name, used in error messages.
    minimum : int, default=1
        The smallest count allowed.

    Examples
    --------
    >>> check_count(3, "depth")
    3
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InvalidTypeError(f"{argument}: got {kind(value)}, expected an integer")
    if value < minimum:
        raise InvalidArgumentError(f"{argument}: got {value}, expected an integer >= {minimum}")
    limit = LIMITS.get(argument)
    if limit is not None and value > limit:
        raise InvalidArgumentError(
            f"{argument}: got {describe(value)}, expected at most {limit:,} (gradprobe's limit "
            "on this count, so that a call ends in reasonable time)"
        )
    return int(value)


def check_sample(sample: object) -> int | None:
    """Return the number of values to check per parameter: None (all) or an int ``>= 1``.

    Examples
    --------
    >>> check_sample(None), check_sample(5)
    (None, 5)
    """
    if sample is None:
        return None
    if isinstance(sample, (bool, np.bool_)) or not isinstance(sample, (int, np.integer)):
        raise InvalidTypeError(
            f"sample: got {kind(sample)}, expected a positive int (values per parameter) or None"
        )
    if sample < 1:
        raise InvalidArgumentError(f"sample: got {sample}, expected at least 1 value per parameter")
    return int(sample)


def check_seed(seed: object, argument: str = "seed") -> int | np.random.Generator:
    """Return ``seed`` when it is a non-negative int or a Generator, else raise.

    Examples
    --------
    >>> check_seed(3)
    3
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise InvalidTypeError(
            f"{argument}: got {kind(seed)}, expected a non-negative int or a numpy.random.Generator"
        )
    if seed < 0:
        raise InvalidArgumentError(f"{argument}: got {seed}, expected a non-negative int")
    return int(seed)


def check_batched(batched: object, method: object) -> bool:
    """Return ``batched`` when it is a bool; a batched loss cannot take the complex step."""
    if not isinstance(batched, (bool, np.bool_)):
        raise InvalidTypeError(f"batched: got {kind(batched)}, expected True or False")
    if batched and isinstance(method, str) and method == "complex":
        raise InvalidArgumentError(
            "method: got 'complex' with batched=True, expected a real step such as 'central': "
            "the complex step evaluates one complex parameter vector without the batch axis; "
            "or pass batched=False"
        )
    return bool(batched)


def check_choice(value: object, argument: str, choices: Sequence[str]) -> str:
    """Return ``value`` when it is one of the strings ``choices``.

    Another string is an :class:`InvalidArgumentError`; anything but a string (None, a
    number, an array of names) an :class:`InvalidTypeError`.
    """
    if not isinstance(value, str) or value not in choices:
        error = InvalidArgumentError if isinstance(value, str) else InvalidTypeError
        raise error(f"{argument}: got {describe(value)}, expected one of {', '.join(choices)}")
    return value


def check_notes(notes: object) -> Sequence[str]:
    """Return ``notes`` (None, or a list or tuple of strings) itself, None as ``()``.

    The same list comes back, not a copy: an adapter may still add lines to it while
    the check runs, and the report reads it at the end.
    """
    if notes is None:
        return ()
    if isinstance(notes, (str, bytes)) or not isinstance(notes, Sequence):
        raise InvalidTypeError(
            f"notes: got {kind(notes)}, expected a list of strings (one line each)"
        )
    for line in notes:
        if not isinstance(line, str):
            raise InvalidTypeError(f"notes: got the line {kind(line)}, expected strings only")
    return notes


def check_eps(eps: object) -> float | None:
    """Return ``eps`` as a float (None stays None), or raise unless it is positive and finite."""
    if eps is None:
        return None
    expected = "a positive finite step (or None to choose one)"
    step = check_real(eps, "eps", expected)
    if not step > 0:
        raise InvalidArgumentError(f"eps: got {describe(eps)}, expected {expected}")
    return step


# For each method, the multiples of ε added to x, and the width its quotient divides by.
_OFFSETS = {
    "forward": ((1.0,), 1.0),
    "backward": ((-1.0,), 1.0),
    "central": ((1.0, -1.0), 2.0),
    "richardson": ((1.0, -1.0, 0.125, -0.125), 2.0),
}


def check_steps(points: Any, eps: object, method: object, point: str = "x") -> float | None:
    """Check ``eps`` and that it moves every point it is added to, keeping it finite.

    Parameters
    ----------
    points : float or ndarray of float64
        The values of x (or of θ) that ``method`` moves by multiples of ``eps``.
    eps : float or None
        The step; None (a step gradprobe chooses) is not checked further.
    method : str
        The difference formula; others than those that move x are left to their own check.
    point : str, default="x"
        What the points are called in messages ("θᵢ" for a parameter vector).

    Returns
    -------
    float or None
        ``eps`` as a float.
    """
    step = check_eps(eps)
    if step is None or not isinstance(method, str) or method not in _OFFSETS:
        return step
    values = np.atleast_1d(np.asarray(points, dtype=np.float64))
    offsets, width = _OFFSETS[method]
    with np.errstate(all="ignore"):
        for offset in offsets:
            moved = values + offset * step
            stuck = (moved == values) | ~np.isfinite(moved - values)
            if np.any(stuck):
                x = float(values[np.flatnonzero(stuck)[0]])
                if np.isfinite(x + offset * step):
                    least = float(np.spacing(abs(x))) / abs(offset)
                    raise InvalidArgumentError(
                        f"eps: got {step:g}, which does not move {point} = {x:.17g} ({x:.17g} + "
                        f"{offset * step:g} == {x:.17g} in float64), expected a step of at "
                        f"least {least:.2g} there for method={method!r}, or eps=None to let "
                        "gradprobe choose one"
                    )
                raise InvalidArgumentError(
                    f"eps: got {step:g}, which moves {point} = {x:g} beyond float64's range, "
                    f"expected a step below {float(np.finfo(np.float64).max) / (2 * width):.2g}"
                )
        if not np.all(np.isfinite(width * step + 2 * np.abs(values))):
            raise InvalidArgumentError(
                f"eps: got {step:g}, too large for a difference quotient in float64, expected a "
                f"step below {float(np.finfo(np.float64).max) / (2 * width):.2g}"
            )
    return step


def check_argnums(argnums: object, count: int) -> tuple[int, ...]:
    """Return ``argnums`` (an int or ints, as for ``jax.grad``) as distinct positions < ``count``.

    Examples
    --------
    >>> check_argnums(-1, 3)
    (2,)
    """
    numbers = (argnums,) if isinstance(argnums, (int, np.integer)) else argnums
    if not isinstance(numbers, Sequence) or not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in numbers
    ):
        raise InvalidTypeError(
            f"argnums: got {argnums!r}, expected an int or a tuple of ints as for jax.grad"
        )
    positions = tuple(int(n) + count if n < 0 else int(n) for n in numbers)
    if not positions or any(not 0 <= n < count for n in positions):
        raise InvalidArgumentError(
            f"argnums: got {argnums!r} for {count} positional argument(s), expected positions "
            f"from 0 to {count - 1}"
        )
    if len(set(positions)) != len(positions):
        raise InvalidArgumentError(f"argnums: got {argnums!r}, expected distinct positions")
    return positions


def check_modes(modes: object) -> tuple[str, ...]:
    """Return ``modes`` as a non-empty tuple drawn from ``("fwd", "rev")``, as JAX spells them."""
    chosen = (modes,) if isinstance(modes, str) else modes
    if (
        not isinstance(chosen, Sequence)
        or not chosen
        or any(mode not in ("fwd", "rev") for mode in chosen)
    ):
        raise InvalidArgumentError(
            f"modes: got {modes!r}, expected a sequence of 'fwd' (forward mode, jax.jvp) and "
            "'rev' (reverse mode, jax.vjp)"
        )
    return tuple(dict.fromkeys(chosen))
