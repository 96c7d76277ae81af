"""Arrays and sizes: rectangular, numeric, and small enough for this machine.

A ragged nested list is refused by name instead of NumPy's ``ValueError``; sizes are
checked against :func:`available_memory` with the limit in the message; a feature
column too large for its statistics is refused before they overflow.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._validate.numbers import LIMITS, check_real, describe
from gradprobe.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    NonFiniteError,
    ShapeMismatchError,
)

__all__ = [
    "as_array",
    "as_feature_matrix",
    "as_real_array",
    "available_memory",
    "check_fits",
    "check_layer_sizes",
    "check_magnitude",
    "check_memory",
    "check_shape",
    "check_unique",
]


def available_memory() -> int:
    """Return the bytes this process may use: the machine's memory, or its address-space limit."""
    limit = 2**63
    with contextlib.suppress(ValueError, OSError, AttributeError):
        limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        for kind in (resource.RLIMIT_AS, resource.RLIMIT_DATA):
            soft = resource.getrlimit(kind)[0]
            if soft != resource.RLIM_INFINITY:
                limit = min(limit, soft)
    return int(limit)


def _bytes(count: float) -> str:
    if count >= 1e21:
        return "more than 1e+21 bytes"
    size = float(count)
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if size < 1000:
            return f"{size:.3g} {unit}"
        size /= 1000
    return f"{size:.3g} EB"


def check_fits(needed: float, argument: str, value: object, what: str) -> None:
    """Refuse work whose arrays need more than half of :func:`available_memory`.

    Parameters
    ----------
    needed : float
        The bytes the work would allocate.
    argument, value : str, object
        The argument to blame and what the caller gave it.
    what : str
        What needs the memory, e.g. "the weight matrices".
    """
    allowed = available_memory() // 2
    if needed > allowed:
        raise InvalidArgumentError(
            f"{argument}: got {describe(value)}, which needs about {_bytes(needed)} for {what}, "
            f"more than the {_bytes(allowed)} gradprobe allows itself here (half of this "
            "machine's memory); use a smaller size"
        )


def check_memory(memory: object) -> int:
    """Validate a memory budget in bytes (at most :func:`available_memory`) and return it."""
    number = check_real(memory, "memory", "a number of bytes such as 256e6")
    limit = available_memory()
    if not 1 <= number <= limit:
        raise InvalidArgumentError(
            f"memory: got {describe(memory)}, expected a number of bytes from 1 to this "
            f"machine's {_bytes(limit)}"
        )
    return int(number)


def _positive_integers(values: object) -> list[int] | None:
    """``values`` as a list of ints >= 1 (integral floats such as 4.0 included), else None."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        return None
    sizes = []
    for size in values:
        if isinstance(size, (bool, np.bool_)) or not isinstance(
            size, (int, float, np.integer, np.floating)
        ):
            return None
        integral = isinstance(size, (int, np.integer)) or float(size).is_integer()
        if not integral or size < 1:
            return None
        sizes.append(int(size))
    return sizes


def check_layer_sizes(layer_sizes: object) -> list[int]:
    """Return ``layer_sizes`` as a list of at least two positive ints whose weights fit memory.

    Every refusal is an :class:`InvalidArgumentError`, a wrong type included.
    """
    expected = "at least two positive integers, input size first, e.g. [2, 10, 5, 1]"
    sizes = _positive_integers(layer_sizes)
    if sizes is None or len(sizes) < 2:
        raise InvalidArgumentError(f"layer_sizes: got {describe(layer_sizes)}, expected {expected}")
    if len(sizes) > LIMITS["depth"] + 1:
        raise InvalidArgumentError(
            f"layer_sizes: got {len(sizes):,} sizes, expected at most {LIMITS['depth'] + 1:,} "
            "(gradprobe's limit on layers)"
        )
    pairs = zip(sizes[:-1], sizes[1:], strict=True)
    weights = sum(fan_out * (fan_in + 1) for fan_in, fan_out in pairs)
    # The weights, their gradients and one update's temporaries.
    check_fits(24 * weights, "layer_sizes", sizes, f"{weights:,} parameters")
    return sizes


def check_shape(shape: object, argument: str = "shape") -> tuple[int, ...]:
    """Return ``shape`` as a tuple of positive ints whose float64 array fits in memory."""
    sizes = _positive_integers(shape)
    if not sizes:
        raise InvalidArgumentError(
            f"{argument}: got {describe(shape)}, expected a tuple of positive integers "
            "(fan_out, fan_in)"
        )
    dims = tuple(sizes)
    check_fits(8 * math.prod(dims), argument, dims, "its values")
    return dims


def as_array(value: object, argument: str) -> NDArray[Any]:
    """Return ``np.asarray(value)``, refusing a ragged nested list or an unreadable object."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError, OverflowError, RecursionError) as error:
        raise InvalidArgumentError(
            f"{argument}: got {describe(value)}, which is not a rectangular array of numbers "
            f"(NumPy: {str(error).split('.')[0]}); expected every row to have the same length"
        ) from error


def as_real_array(value: object, argument: str) -> NDArray[np.float64]:
    """Return ``value`` as a new float64 array, refusing ragged, text, complex or object data."""
    array = as_array(value, argument)
    if array.dtype.kind not in "biuf":
        raise InvalidTypeError(
            f"{argument}: got dtype {array.dtype}, expected real numbers (int or float)"
        )
    return array.astype(np.float64)


def as_feature_matrix(
    X: Any, argument: str = "X", n_features: int | None = None, bounded: bool = False
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
    bounded : bool, default=False
        Also refuse values whose squares summed over the rows would overflow float64
        (for statistics such as a mean and a variance).

    Raises
    ------
    InvalidTypeError
        For a non-numeric or complex dtype.
    InvalidArgumentError
        For a ragged list, a 1-D or 3-D array, one without rows, or (``bounded``) values
        too large for statistics.
    ShapeMismatchError
        For the wrong number of columns.
    NonFiniteError
        For NaN or infinity; the message names the first bad column.
    """
    array = as_array(X, argument)
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
    if bounded:
        check_magnitude(array, argument)
    return array


def check_magnitude(
    array: NDArray[np.floating[Any]],
    argument: str,
    names: Sequence[str] | None = None,
    first_line: int | None = None,
) -> None:
    """Refuse a column of ``array`` (shape ``(m, n)``) whose squared deviations overflow a sum.

    ``names`` name the columns and ``first_line`` is the file line of row 0, for messages.
    """
    limit = math.sqrt(float(np.finfo(np.float64).max) / (4 * max(1, len(array))))
    peaks = np.max(np.abs(array), axis=0, initial=0.0).astype(np.float64)
    if np.any(peaks > limit):
        column = int(np.flatnonzero(peaks > limit)[0])
        row = int(np.argmax(np.abs(array[:, column])))
        name = repr(names[column]) if names is not None else str(column)
        where = f"row {row}" if first_line is None else f"line {row + first_line}"
        raise InvalidArgumentError(
            f"{argument}: column {name} holds {array[row, column]:.3g} ({where}), beyond "
            f"±{limit:.2g}, the largest magnitude whose squares still sum over {len(array)} rows "
            "in float64; rescale that column first (divide it by a power of ten)"
        )


def check_unique(names: Sequence[str], argument: str) -> None:
    """Refuse a list of column names in which a name appears twice."""
    seen: dict[str, int] = {}
    for position, name in enumerate(names):
        if name in seen:
            raise InvalidArgumentError(
                f"{argument}: the column name {name!r} appears twice (columns {seen[name] + 1} "
                f"and {position + 1}), expected distinct names; rename one"
            )
        seen[name] = position
