"""Tabular data for ``gradprobe diagnose``: a CSV file or a bundled set, as a train/test split.

:func:`load_csv` reads a CSV with a header row (its delimiter sniffed), infers
classification or regression from the target column and says why, and splits the
rows with a seed, stratified by class; :func:`bundled` wraps the
data sets of :mod:`gradprobe.nn.datasets` the same way. Both return a :class:`Dataset`.
"""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._text import plural
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
    task_reason : str
        Why the task is what it is ("inferred: 'label' has 2 distinct integer values").
    """

    name: str
    task: str
    feature_names: list[str]
    X_train: Array
    X_test: Array
    y_train: NDArray[Any]
    y_test: NDArray[Any]
    classes: list[str] = field(default_factory=list)
    task_reason: str = ""


def load_csv(
    path: str | Path,
    target: str,
    task: str | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Read a CSV with a header row into a seeded, stratified train/test split.

    The delimiter (comma, semicolon, tab or bar) is sniffed from the file's start
    (:class:`csv.Sniffer`); the numbers are read by :func:`numpy.loadtxt`. When that
    fails, the file is read again cell by cell to say which line and column are wrong.

    Parameters
    ----------
    path : str or Path
        The file; every column but ``target`` must be numeric.
    target : str
        The column to predict.
    task : {"classification", "regression"}, optional
        By default a target with at most 20 distinct integer values, or any
        non-numeric target, is classification; anything else regression. A target of
        continuous values is refused for classification.
    test_fraction : float, default=0.2
        The share of rows held out for testing; for classification each class keeps
        its share in both splits (:func:`sklearn.model_selection.train_test_split`
        with ``stratify``) when every class has at least two rows.
    seed : int, default=0
        Seeds the shuffle before the split.

    Returns
    -------
    Dataset

    Raises
    ------
    InvalidArgumentError
        For a missing or unreadable file, a missing target column, a non-numeric or
        missing feature value, too few rows, a negative seed, or a continuous target
        with ``task="classification"``; the message says where and what to do.
    """
    check_seed(seed)
    if task not in (None, "classification", "regression"):
        raise InvalidArgumentError(
            f"--task: got {task!r}, expected 'classification' or 'regression'"
        )
    file = Path(path)
    if not file.is_file():
        raise InvalidArgumentError(f"--data: {file}: no such file; give the path of a CSV file")
    try:
        with file.open(newline="", encoding="utf-8-sig") as stream:
            delimiter = _sniff(stream.read(_SNIFF_CHARACTERS))
            stream.seek(0)
            header = [name.strip() for name in next(csv.reader(stream, delimiter=delimiter), [])]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InvalidArgumentError(
            f"--data: {file} cannot be read as a UTF-8 CSV file ({error}); save it as CSV "
            "with a header row"
        ) from error
    if target not in header:
        raise InvalidArgumentError(
            f"--target: no column {target!r} in {file}; its columns are {', '.join(header)}"
        )
    check_unique(header, f"--data: {file}")
    column = header.index(target)
    names = [name for i, name in enumerate(header) if i != column]
    if not names:
        raise InvalidArgumentError(f"--data: {file} has no feature columns besides {target!r}")
    read = _fast_read(file, delimiter, header, column)
    X, labels = read if read is not None else _careful_read(file, delimiter, header, column)
    check_magnitude(X, f"--data: {file}", names, first_line=2)
    if len(labels) < 10:
        raise InvalidArgumentError(
            f"--data: {file} has {plural(len(labels), 'data row')} after the header, expected "
            "at least 10"
        )
    if np.all(X == X[0]):
        raise InvalidArgumentError(
            f"--data: every feature column of {file} is constant ({', '.join(names[:5])}"
            f"{', …' if len(names) > 5 else ''}), expected at least one that varies: there "
            "is nothing to learn from"
        )
    y, classes, task, reason = _targets(labels, task, file, target)
    train, test = _split(len(labels), y if task == "classification" else None, test_fraction, seed)
    return Dataset(
        file.name, task, names, X[train], X[test], y[train], y[test], classes, task_reason=reason
    )


# Characters read to guess the delimiter, and the delimiters it may be.
_SNIFF_CHARACTERS = 64 * 1024
_DELIMITERS = ",;\t|"


def _sniff(sample: str) -> str:
    """Return the delimiter of a CSV from its first lines; a comma when unsure."""
    header = sample.splitlines()[0] if sample else ""
    try:
        found = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        found = ","
    # A lone column has no delimiter to find: never split a header on one it lacks.
    return found if found in header else ","


def _fast_read(
    file: Path, delimiter: str, header: list[str], column: int
) -> tuple[Array, list[str]] | None:
    """Read the features with NumPy's loader, or return None to read cell by cell."""
    features = [i for i in range(len(header)) if i != column]
    options: dict[str, Any] = {
        "delimiter": delimiter,
        "skiprows": 1,
        "encoding": "utf-8-sig",
        "comments": None,
        "quotechar": '"',
        "ndmin": 2,
    }
    try:
        with warnings.catch_warnings():  # NumPy notes that blank lines are skipped
            warnings.simplefilter("ignore", UserWarning)
            X = np.loadtxt(file, usecols=features, dtype=np.float64, **options)
            labels = np.loadtxt(file, usecols=[column], dtype=str, **options)[:, 0]
    except (ValueError, IndexError):
        return None
    if X.shape[0] != len(labels) or not np.all(np.isfinite(X)):
        return None  # NaN or infinity: the careful reader says where
    return X, [label.strip() for label in labels.tolist()]


def _careful_read(
    file: Path, delimiter: str, header: list[str], column: int
) -> tuple[Array, list[str]]:
    """Read cell by cell: slower, but every error names its line and column."""
    with file.open(newline="", encoding="utf-8-sig") as stream:
        rows = list(csv.reader(stream, delimiter=delimiter))
    body = [
        (number, row) for number, row in enumerate(rows[1:], start=2) if any(c.strip() for c in row)
    ]
    for number, row in body:
        if len(row) != len(header):
            raise InvalidArgumentError(
                f"--data: line {number} of {file} has {len(row)} fields, expected "
                f"{len(header)} as in the header"
            )
    names = [name for i, name in enumerate(header) if i != column]
    X = np.empty((len(body), len(names)))
    for position, (number, row) in enumerate(body):
        cells = [cell for i, cell in enumerate(row) if i != column]
        for j, cell in enumerate(cells):
            X[position, j] = _number(cell, file, number, names[j])
    return X, [row[column].strip() for _, row in body]


def _split(
    count: int, classes: NDArray[Any] | None, test_fraction: float, seed: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Return seeded train and test rows, stratified by class when every class allows it."""
    from sklearn.model_selection import train_test_split  # slow to import: only for CSVs

    n_test = max(1, int(round(test_fraction * count)))
    stratify = None
    if classes is not None:
        counts = np.bincount(np.asarray(classes, dtype=np.int64))
        counts = counts[counts > 0]
        if counts.min() >= 2 and len(counts) <= min(n_test, count - n_test):
            stratify = classes
    train, test = train_test_split(
        np.arange(count), test_size=n_test, random_state=seed, stratify=stratify
    )
    return np.sort(train), np.sort(test)


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
) -> tuple[NDArray[Any], list[str], str, str]:
    """Turn the target column into class indices or real values; infer and explain the task."""
    if any(not label or label.lower() == "nan" for label in labels):
        raise NonFiniteError(
            f"--target: column {target!r} of {file} has missing values; drop those rows"
        )
    try:
        values = np.array([float(label) for label in labels])
        numeric = bool(np.all(np.isfinite(values)))
    except ValueError:
        numeric = False
    distinct = len(np.unique(values)) if numeric else len(set(labels))
    integral = numeric and bool(np.all(values == np.round(values)))
    if task is None:
        if not numeric:
            task, reason = "classification", f"inferred: {target!r} holds labels, not numbers"
        elif integral and distinct <= _MAX_CLASSES:
            task = "classification"
            reason = f"inferred: {target!r} has {distinct} distinct integer values"
        else:
            task = "regression"
            kind = "integer " if integral else ""
            reason = f"inferred: {target!r} has {distinct:,} distinct {kind}values"
    else:
        reason = "as given by --task"
    if task == "regression":
        if not numeric:
            raise InvalidArgumentError(
                f"--target: column {target!r} of {file} is not numeric, expected numbers for "
                "regression; use --task classification"
            )
        return values, [], task, reason
    if numeric and (not integral or distinct > max(_MAX_CLASSES, len(labels) // 2)):
        raise InvalidArgumentError(
            f"--task: classification needs class labels, but column {target!r} of {file} "
            f"holds {distinct:,} distinct {'integer' if integral else 'continuous'} values in "
            f"{len(labels):,} rows; use --task regression, or leave --task out"
        )
    classes = sorted(
        set(labels), key=lambda label: (not numeric, float(label) if numeric else 0, label)
    )
    if len(classes) < 2:
        raise InvalidArgumentError(
            f"--target: column {target!r} of {file} has one class, expected at least two"
        )
    index = {label: position for position, label in enumerate(classes)}
    return np.array([index[label] for label in labels]), classes, task, reason


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
        task_reason="",
    )
