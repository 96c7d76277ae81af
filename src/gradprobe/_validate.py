"""Every argument check of the public entry points, in one place.

Each returns the argument in its working type or raises a
:class:`~gradprobe.errors.GradprobeError` that names the argument, what was
received and what was expected ("got X, expected Y"), and where it helps what to
try. Modules never repeat these checks: they call them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    NonFiniteError,
    ShapeMismatchError,
)

__all__ = [
    "as_feature_matrix",
    "check_argnums",
    "check_count",
    "check_fraction",
    "check_layer_sizes",
    "check_memory",
    "check_modes",
    "check_positive",
    "check_progress",
    "check_rate",
    "check_sample",
    "check_seed",
    "check_thresholds",
    "check_tolerance",
]


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


def check_progress(progress: object) -> object:
    """Return a progress hook as given: None, a callable ``(done, total)`` or an ``update(n)`` bar.

    Examples
    --------
    >>> check_progress(None) is None
    True
    """
    if progress is None or callable(progress) or callable(getattr(progress, "update", None)):
        return progress
    raise InvalidTypeError(
        f"progress: got {type(progress).__name__}, expected a callable progress(done, total), "
        "an object with update(n) such as tqdm.auto.tqdm(), or None"
    )


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


def as_feature_matrix(
    X: Any, argument: str = "X", n_features: int | None = None
) -> NDArray[np.floating[Any]]:
    """Return ``X`` as a finite real array of shape ``(m, n_features)``, or raise a clear error.

    Integers and booleans become float64; float32 stays float32. The result may be
    ``X`` itself: callers must not write into it.

    Parameters
    ----------
    X : array_like of shape (m, n_features)
        Examples in rows, features in columns.
    argument : str, default="X"
        The argument's name, used in error messages.
    n_features : int, optional
        The number of columns required (what the estimator was fitted or built with).

    Raises
    ------
    InvalidTypeError
        For a non-numeric or complex dtype.
    InvalidArgumentError
        For a 1-D or 3-D array, or one without rows.
    ShapeMismatchError
        For the wrong number of columns.
    NonFiniteError
        For NaN or infinity; the message names the first bad column.
    """
    array = np.asarray(X)
    if array.dtype.kind not in "biuf":
        raise InvalidTypeError(
            f"{argument}: got dtype {array.dtype}, expected real numbers (int or float)"
        )
    if array.ndim != 2:
        hint = (
            "; use X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a single example"
            if array.ndim == 1
            else ""
        )
        raise InvalidArgumentError(
            f"{argument}: got a {array.ndim}-D array of shape {array.shape}, expected a 2-D "
            f"array of shape (m examples, n features){hint}"
        )
    if array.shape[0] == 0:
        raise InvalidArgumentError(
            f"{argument}: got shape {array.shape}, expected at least one example (row)"
        )
    if n_features is not None and array.shape[1] != n_features:
        hint = (
            "; it looks transposed: gradprobe takes X as (m examples, n features), "
            "pass X.T if yours is the course's (n_x, m)"
            if array.shape[0] == n_features
            else ""
        )
        raise ShapeMismatchError(
            f"{argument}: got {array.shape[1]} features (shape {array.shape}), expected "
            f"{n_features}{hint}"
        )
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    finite = np.isfinite(array)
    if not finite.all():
        column = int(np.flatnonzero(~finite.all(axis=0))[0])
        rows = np.flatnonzero(~finite[:, column])
        kind = "NaN" if np.isnan(array[rows[0], column]) else "infinity"
        raise NonFiniteError(
            f"{argument}: column {column} holds {len(rows)} non-finite value(s), the first "
            f"{kind} at row {int(rows[0])}; expected finite numbers: drop or impute them first"
        )
    return array


def check_memory(memory: object) -> int:
    """Validate a memory budget in bytes and return it as an int."""
    if isinstance(memory, bool) or not isinstance(memory, (int, np.integer, float)):
        raise InvalidTypeError(
            f"memory: got {type(memory).__name__}, expected a number of bytes such as 256e6"
        )
    if not np.isfinite(memory) or memory < 1:
        raise InvalidArgumentError(f"memory: got {memory!r}, expected a positive number of bytes")
    return int(memory)


def check_tolerance(tolerance: object) -> float:
    """Return the factor a second moment may change by and stay "healthy": finite, > 1."""
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, (int, float, np.integer, np.floating))
        or not 1 < float(tolerance) < np.inf
    ):
        raise InvalidArgumentError(
            f"tolerance: got {tolerance!r}, expected a finite factor > 1 such as 100"
        )
    return float(tolerance)


def check_positive(value: float, argument: str) -> float:
    """Return ``value`` as a float, refusing anything but a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidTypeError(f"{argument}: got {type(value).__name__}, expected a number")
    if not (np.isfinite(value) and value > 0):
        raise InvalidArgumentError(f"{argument}: got {value}, expected a positive number")
    return float(value)


def check_rate(value: float, argument: str) -> float:
    """Return ``value`` as a float in ``[0, 1)`` (a decay or momentum rate)."""
    number = check_positive(value, argument) if value != 0 else 0.0
    if number >= 1:
        raise InvalidArgumentError(f"{argument}: got {value}, expected a number in [0, 1)")
    return number


def check_layer_sizes(layer_sizes: Sequence[int]) -> list[int]:
    """Return ``layer_sizes`` as a list of at least two positive ints."""
    try:
        sizes = [int(n) for n in layer_sizes]
        ok = len(sizes) >= 2 and all(
            float(n) == float(raw) and n >= 1 for n, raw in zip(sizes, layer_sizes, strict=True)
        )
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InvalidArgumentError(
            f"layer_sizes: got {layer_sizes!r}, expected at least two positive integers, "
            "input size first, e.g. [2, 10, 5, 1]"
        )
    return sizes


def check_fraction(value: float, argument: str, upper: float) -> float:
    """Return ``value`` as a float in ``[0, upper)``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidTypeError(f"{argument}: got {type(value).__name__}, expected a number")
    number = float(value)
    if not (np.isfinite(number) and 0.0 <= number < upper):
        expected = f"in [0, {upper:g})" if np.isfinite(upper) else ">= 0"
        raise InvalidArgumentError(f"{argument}: got {number}, expected a number {expected}")
    return number


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
