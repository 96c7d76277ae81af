"""Checks on the feature matrix ``X`` shared by the Normalizer and the MLP."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe.errors import (
    InvalidArgumentError,
    InvalidTypeError,
    NonFiniteError,
    ShapeMismatchError,
)

__all__ = ["as_feature_matrix"]


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
