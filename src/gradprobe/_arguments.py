"""Checks on the arguments the gradient checks and the depth tools share.

Each returns the argument in its working type or raises a
:class:`~gradprobe.errors.GradprobeError` that names the argument, what was
received and what was expected.
"""

from __future__ import annotations

import numpy as np

from gradprobe.errors import InvalidArgumentError, InvalidTypeError

__all__ = ["check_count", "check_sample", "check_seed", "check_thresholds"]


def check_thresholds(thresholds: object) -> tuple[float, float]:
    """Return ``(ok_below, suspicious_below)`` as floats with ``0 < ok <= suspicious < inf``.

    Examples
    --------
    >>> check_thresholds([1e-6, 1e-4])
    (1e-06, 0.0001)
    """
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


def check_sample(sample: object) -> int | None:
    """Return the number of values to check per parameter: None (all) or an int ``>= 1``.

    Examples
    --------
    >>> check_sample(None), check_sample(5)
    (None, 5)
    """
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


def check_count(value: object, argument: str) -> int:
    """Return ``value`` as an int ``>= 1`` (a depth, a width, a batch size).

    Parameters
    ----------
    value : object
        What the caller passed.
    argument : str
        The argument's name, used in error messages.

    Examples
    --------
    >>> check_count(3, "depth")
    3
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidTypeError(f"{argument}: got {type(value).__name__}, expected an integer")
    if value < 1:
        raise InvalidArgumentError(f"{argument}: got {value}, expected an integer >= 1")
    return int(value)


def check_seed(seed: object) -> int | np.random.Generator:
    """Return ``seed`` when it is a non-negative int or a Generator, else raise.

    Examples
    --------
    >>> check_seed(3)
    3
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidTypeError(
            f"seed: got {type(seed).__name__}, expected a non-negative int or a "
            "numpy.random.Generator"
        )
    if seed < 0:
        raise InvalidArgumentError(f"seed: got {seed}, expected a non-negative int")
    return int(seed)
