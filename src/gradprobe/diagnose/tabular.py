"""Tabular data for ``gradprobe diagnose``: a CSV file or a bundled set, as a train/test split.

:func:`load_csv` reads a CSV with a header row, infers classification or regression
from the target column and splits the rows with a seed; :func:`bundled` wraps the
data sets of :mod:`gradprobe.nn.datasets` the same way. Both return a :class:`Dataset`.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._validate import check_magnitude, check_seed, check_unique
from gradprobe.errors import InvalidArgumentError, NonFiniteError

__all__ = ["DATASETS", "Dataset", "bundled", "feature_statistics", "load_csv"]

Array = NDArray[np.floating[Any]]

# A column with at most this many distinct integer values is read as class labels.
_MAX_CLASSES = 20


@dataclass(frozen=True)
class Dataset:
    """A train/test split with its provenance.

    Attributes
    ----------
    name : str
        Where the data came from (``"breast_cancer"`` or a file name).
    task : {"classification", "regression"}
        What the target is.
    feature_names : list of str
        One per column of X.
    X_train, X_test : ndarray of float64, shapes (m_train, n) and (m_test, n)
    y_train, y_test : ndarray, shapes (m_train,) and (m_test,)
        Integer class labels in ``[0, k)`` or real targets.
    classes : list of str
        The class labels as given (empty for regression).
    """

    name: str
    task: str
    feature_names: list[str]
    X_train: Array
    X_test: Array
    y_train: NDArray[Any]
    y_test: NDArray[Any]
    classes: list[str] = field(default_factory=list)


def load_csv(
    path: str | Path,
    target: str,
    task: str | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Read a CSV with a header row into a seeded train/test split.

    Parameters
    ----------
    path : str or Path
        The file; every column but ``target`` must be numeric.
    target : str
        The column to predict.
    task : {"classification", "regression"}, optional
        By default a target with at most 20 distinct integer values, or any
        non-numeric target, is classification; anything else regression.
    test_fraction : float, default=0.2
        The share of rows held out for testing.
    seed : int, default=0
        Seeds the shuffle before the split.

    Returns
    -------
    Dataset

    Raises
    ------
    InvalidArgumentError
        For a missing or unreadable file, a missing target column, a non-numeric or
        missing feature value, too few rows or a negative seed; the message says where
        and what to do.
    """
    check_seed(seed)
    file = Path(path)
    if not file.is_file():
        raise InvalidArgumentError(f"--data: {file}: no such file; give the path of a CSV file")
    try:
        with file.open(newline="", encoding="utf-8-sig") as stream:
            rows = list(csv.reader(stream))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InvalidArgumentError(
            f"--data: {file} cannot be read as a UTF-8 CSV file ({error}); save it as CSV "
            "with a header row"
        ) from error
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if len(rows) < 2:
        raise InvalidArgumentError(
            f"--data: {file} has {max(len(rows) - 1, 0)} data rows, expected a header row "
            "and at least 10 rows of data"
        )
    header = [name.strip() for name in rows[0]]
    check_unique(header, f"--data: {file}")
    if target not in header:
        raise InvalidArgumentError(
            f"--target: no column {target!r} in {file}; its columns are {', '.join(header)}"
        )
    column = header.index(target)
    body = rows[1:]
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise InvalidArgumentError(
                f"--data: line {number} of {file} has {len(row)} fields, expected "
                f"{len(header)} as in the header"
            )
    if len(body) < 10:
        raise InvalidArgumentError(f"--data: {file} has {len(body)} rows, expected at least 10")
    names = [name for i, name in enumerate(header) if i != column]
    if not names:
        raise InvalidArgumentError(f"--data: {file} has no feature columns besides {target!r}")
    X = np.empty((len(body), len(names)))
    for number, row in enumerate(body, start=2):
        cells = [cell for i, cell in enumerate(row) if i != column]
        for j, cell in enumerate(cells):
            X[number - 2, j] = _number(cell, file, number, names[j])
    check_magnitude(X, f"--data: {file}", names, first_line=2)
    if np.all(X == X[0]):
        raise InvalidArgumentError(
            f"--data: every feature column of {file} is constant ({', '.join(names[:5])}"
            f"{', …' if len(names) > 5 else ''}), expected at least one that varies: there "
            "is nothing to learn from"
        )
    labels = [row[column].strip() for row in body]
    y, classes, task = _targets(labels, task, file, target)
    order = np.random.default_rng(seed).permutation(len(body))
    n_test = max(1, int(round(test_fraction * len(body))))
    test, train = order[:n_test], order[n_test:]
    return Dataset(file.name, task, names, X[train], X[test], y[train], y[test], classes)


def _number(cell: str, file: Path, line: int, name: str) -> float:
    text = cell.strip()
    if text.lower() in {"", "nan", "na", "n/a", "null", "none"}:
        raise NonFiniteError(
            f"--data: column {name!r} is missing (NaN) on line {line} of {file}; fill in or "
            "drop the rows with missing values"
        )
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgumentError(
            f"--data: column {name!r} on line {line} of {file} is {text!r}, expected a number; "
            "features must be numeric: encode or drop that column"
        ) from None
    if not math.isfinite(value):
        raise NonFiniteError(
            f"--data: column {name!r} on line {line} of {file} is {text}, expected a finite number"
        )
    return value


def _targets(
    labels: list[str], task: str | None, file: Path, target: str
) -> tuple[NDArray[Any], list[str], str]:
    """Turn the target column into class indices or real values, inferring the task."""
    if task not in (None, "classification", "regression"):
        raise InvalidArgumentError(
            f"--task: got {task!r}, expected 'classification' or 'regression'"
        )
    if any(not label or label.lower() == "nan" for label in labels):
        raise NonFiniteError(
            f"--target: column {target!r} of {file} has missing values; drop those rows"
        )
    try:
        values = np.array([float(label) for label in labels])
        numeric = bool(np.all(np.isfinite(values)))
    except ValueError:
        numeric = False
    if task is None:
        distinct = np.unique(values) if numeric else np.unique(labels)
        integral = numeric and bool(np.all(values == np.round(values)))
        task = (
            "classification"
            if not numeric or (integral and len(distinct) <= _MAX_CLASSES)
            else "regression"
        )
    if task == "regression":
        if not numeric:
            raise InvalidArgumentError(
                f"--target: column {target!r} of {file} is not numeric, expected numbers for "
                "regression; use --task classification"
            )
        return values, [], task
    classes = sorted(
        set(labels), key=lambda label: (not numeric, float(label) if numeric else 0, label)
    )
    if len(classes) < 2:
        raise InvalidArgumentError(
            f"--target: column {target!r} of {file} has one class, expected at least two"
        )
    index = {label: position for position, label in enumerate(classes)}
    return np.array([index[label] for label in labels]), classes, task


def feature_statistics(dataset: Dataset) -> list[dict[str, Any]]:
    """Return mean, spread and range of each feature on the training split."""
    X = dataset.X_train
    return [
        {
            "name": name,
            "mean": float(X[:, j].mean()),
            "std": float(X[:, j].std()),
            "min": float(X[:, j].min()),
            "max": float(X[:, j].max()),
        }
        for j, name in enumerate(dataset.feature_names)
    ]


DATASETS = ("breast_cancer", "digits", "circles", "moons", "spirals")
"""The bundled data sets ``--dataset`` accepts."""


def bundled(name: str, seed: int = 0, task: str | None = None) -> Dataset:
    """Return a bundled data set as a seeded train/test split.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`.
    seed : int, default=0
        Seeds the split (and the synthetic sets' points).
    task : str, optional
        Must be "classification" when given: every bundled set is.
    """
    check_seed(seed)
    if name not in DATASETS:
        raise InvalidArgumentError(
            f"--dataset: got {name!r}, expected one of {', '.join(DATASETS)}"
        )
    if task not in (None, "classification"):
        raise InvalidArgumentError(f"--task: got {task!r}, but {name} is a classification data set")
    from gradprobe.nn import datasets

    split = getattr(datasets, name)(seed=seed)
    classes = sorted(
        {int(label) for label in split.y_train} | {int(label) for label in split.y_test}
    )
    return Dataset(
        name=name,
        task="classification",
        feature_names=datasets.feature_names(name),
        X_train=split.X_train,
        X_test=split.X_test,
        y_train=split.y_train,
        y_test=split.y_test,
        classes=[str(label) for label in classes],
    )
