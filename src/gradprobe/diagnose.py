"""The ``gradprobe diagnose`` pipeline: the seed's steps on one data set, as data.

1. **Inputs**: per-feature mean and spread of the training split; a
   :class:`~gradprobe.nn.Normalizer` fitted on the training split only and applied
   to the test split; the same network trained on raw and on normalized inputs.
2. **Depth and initialization**: :func:`gradprobe.propagation` of the chosen
   network, a :func:`gradprobe.depth_sweep` for its activation and the scale
   :func:`gradprobe.recommend_scale` gives.
3. **Gradient check** of the network's backprop at random initialization and
   after training, L2 included, dropout off.
4. **Result**: the test metric and findings in plain words.

:func:`run_diagnosis` returns a :class:`Diagnosis`; rendering it (HTML, JSON, the
terminal summary) is the job of :mod:`gradprobe.report`.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from gradprobe import __version__
from gradprobe.errors import InvalidArgumentError, NonFiniteError
from gradprobe.gradcheck import GradCheckReport
from gradprobe.nn import MLP, History, Normalizer
from gradprobe.nn.check import check_model

__all__ = [
    "DATASETS",
    "Dataset",
    "Diagnosis",
    "DiagnoseConfig",
    "Progress",
    "Training",
    "bundled",
    "load_csv",
    "feature_statistics",
    "findings",
    "parse_layers",
    "run_diagnosis",
]

Array = NDArray[np.floating[Any]]

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as each stage advances."""

# A column with at most this many distinct integer values is read as class labels.
_MAX_CLASSES = 20
# The gradient check looks at this many examples and at most this many values per parameter:
# a full check of every value costs 2N loss evaluations; a seeded sample finds a wrong
# parameter just as surely, since a backprop bug spoils all or most of its entries.
_CHECK_EXAMPLES = 64
# The depth sweep's probe batch: 64 rows of a 64-wide layer estimate its spread well enough.
_SWEEP_BATCH = 64
_CHECK_SAMPLE = 40


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


@dataclass(frozen=True)
class DiagnoseConfig:
    """The options of ``gradprobe diagnose``; the defaults finish in seconds on two cores."""

    layers: tuple[int, ...] = (64, 32)
    activation: str = "relu"
    init: str = "auto"
    l2: float = 0.01
    dropout: float = 0.0
    epochs: int = 200
    lr: float = 0.01
    optimizer: str = "adam"
    seed: int = 0
    depth: int = 30
    width: int = 64


@dataclass(frozen=True)
class Training:
    """One training run: its loss curve, test metric and whether it diverged."""

    label: str
    history: History
    test_metric: float | None
    diverged_at: int | None

    def to_dict(self) -> dict[str, Any]:
        """Return the run as JSON-ready data."""
        return {
            "label": self.label,
            "loss": list(self.history.loss),
            "train_metric": list(self.history.metric),
            "test_metric": self.test_metric,
            "epochs": self.history.epochs,
            "diverged_at": self.diverged_at,
        }


@dataclass
class Diagnosis:
    """Everything ``gradprobe diagnose`` found, as objects (for plots) and as data.

    Attributes
    ----------
    config : DiagnoseConfig
    dataset : Dataset
    layer_sizes : list of int
        ``[n_0, n_1, …, n_L]`` of the network.
    output : str
        The output layer ("sigmoid", "softmax" or "linear").
    metric_name : str
        "accuracy" or "r2".
    features : list of dict
        Per-feature statistics of the raw training split.
    normalizer : Normalizer
        Fitted on the training split only.
    raw, normalized : Training
        The same network trained without and with normalization.
    propagation, sweep, recommendation : object
        From :func:`gradprobe.propagation`, :func:`gradprobe.depth_sweep` and
        :func:`gradprobe.recommend_scale`.
    check_initial, check_trained : GradCheckReport
        The gradient check at random initialization and after training.
    findings : list of dict
        ``{"level": "ok" | "warn" | "bad", "topic": str, "text": str}``.
    seconds : float
        Wall time of the whole run.
    """

    config: DiagnoseConfig
    dataset: Dataset
    layer_sizes: list[int]
    output: str
    metric_name: str
    features: list[dict[str, Any]]
    normalizer: Normalizer
    raw: Training
    normalized: Training
    propagation: Any
    sweep: Any
    recommendation: Any
    check_initial: GradCheckReport
    check_trained: GradCheckReport
    findings: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def test_metric(self) -> float | None:
        """The test metric of the network trained on normalized inputs."""
        return self.normalized.test_metric

    @property
    def scale_ratio(self) -> float:
        """The largest feature spread over the smallest non-zero one."""
        spreads = [f["std"] for f in self.features if f["std"] > 0]
        return max(spreads) / min(spreads) if spreads else 1.0

    def to_dict(self) -> dict[str, Any]:
        """Return the findings as JSON-ready data (see ``report.schema.json``)."""
        c = self.config
        return {
            "gradprobe_version": __version__,
            "seconds": self.seconds,
            "data": {
                "name": self.dataset.name,
                "task": self.dataset.task,
                "n_train": int(self.dataset.X_train.shape[0]),
                "n_test": int(self.dataset.X_test.shape[0]),
                "n_features": int(self.dataset.X_train.shape[1]),
                "classes": list(self.dataset.classes),
            },
            "network": {
                "layer_sizes": list(self.layer_sizes),
                "activation": c.activation,
                "init": c.init,
                "output": self.output,
                "l2": c.l2,
                "dropout": c.dropout,
                "epochs": c.epochs,
                "lr": c.lr,
                "optimizer": c.optimizer,
                "seed": c.seed,
            },
            "inputs": {
                "features": self.features,
                "scale_ratio": self.scale_ratio,
                "normalizer": {
                    "fitted_on": "train",
                    "applied_to": ["train", "test"],
                    "mean": self.normalizer.mean_.tolist(),
                    "std": self.normalizer.std_.tolist(),
                },
                "raw": self.raw.to_dict(),
                "normalized": self.normalized.to_dict(),
            },
            "depth": {
                "propagation": _as_data(self.propagation),
                "sweep": _as_data(self.sweep),
                "recommendation": _as_data(self.recommendation),
            },
            "gradient_check": {
                "at_initialization": self.check_initial.to_dict(),
                "after_training": self.check_trained.to_dict(),
            },
            "result": {
                "metric": self.metric_name,
                "test": self.test_metric,
                "test_without_normalization": self.raw.test_metric,
                "findings": list(self.findings),
            },
        }


def _as_data(result: Any) -> dict[str, Any]:
    data: dict[str, Any] = result.to_dict()
    return data


# ------------------------------------------------------------------------------ inputs


def parse_layers(spec: str) -> tuple[int, ...]:
    """Parse a ``--layers`` spec such as ``"64,32"`` into hidden-layer widths.

    Examples
    --------
    >>> parse_layers("64, 32")
    (64, 32)
    """
    parts = [part.strip() for part in spec.split(",")]
    if not spec.strip() or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise InvalidArgumentError(
            f"--layers: got {spec!r}, expected positive hidden-layer widths separated by "
            "commas, e.g. --layers 64,32"
        )
    return tuple(int(part) for part in parts)


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
        missing feature value, or too few rows; the message says where and what to do.
    """
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
    if name not in DATASETS:
        raise InvalidArgumentError(
            f"--dataset: got {name!r}, expected one of {', '.join(DATASETS)}"
        )
    if task not in (None, "classification"):
        raise InvalidArgumentError(f"--task: got {task!r}, but {name} is a classification data set")
    from gradprobe import datasets

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


# ---------------------------------------------------------------------------- pipeline


def _train(
    label: str,
    net: MLP,
    data: tuple[Array, NDArray[Any], Array, NDArray[Any]],
    config: DiagnoseConfig,
    progress: Progress,
) -> Training:
    """Train ``net`` in place; a divergence is a finding, not an error."""
    X_train, y_train, X_test, y_test = data
    seen: list[History] = []

    def report(epoch: int, history: History) -> None:
        if not seen:
            seen.append(history)
        progress(label, epoch + 1, config.epochs)

    try:
        history = net.fit(
            X_train,
            y_train,
            epochs=config.epochs,
            lr=config.lr,
            optimizer=config.optimizer,
            callback=report,
        )
    except NonFiniteError:
        history = seen[0] if seen else History(net.metric_name)
        progress(label, config.epochs, config.epochs)
        return Training(label, history, None, history.epochs + 1)
    net.eval()
    with np.errstate(all="ignore"):
        metric = net.score(X_test, y_test)
    net.train()
    return Training(label, history, metric if math.isfinite(metric) else None, None)


def _check(net: MLP, X: Array, y: NDArray[Any], seed: int) -> GradCheckReport:
    """Check the network's backprop on a few examples: L2 included, dropout off."""
    rows = np.random.default_rng(seed).permutation(X.shape[0])[:_CHECK_EXAMPLES]
    return check_model(net, X[rows], y[rows], sample=_CHECK_SAMPLE, seed=seed)


def _network(config: DiagnoseConfig, dataset: Dataset) -> MLP:
    n_outputs = (
        1 if dataset.task == "regression" or len(dataset.classes) == 2 else len(dataset.classes)
    )
    output = "linear" if dataset.task == "regression" else None
    return MLP(
        [dataset.X_train.shape[1], *config.layers, n_outputs],
        activation=config.activation,
        output=output,
        init=config.init,
        l2=config.l2,
        dropout=config.dropout,
        seed=config.seed,
    )


def run_diagnosis(
    dataset: Dataset, config: DiagnoseConfig | None = None, progress: Progress | None = None
) -> Diagnosis:
    """Walk the seed's steps on one data set and return what was found.

    Parameters
    ----------
    dataset : Dataset
        The train/test split, e.g. from :func:`load_csv` or :func:`bundled`.
    config : DiagnoseConfig, optional
        The network and training options; the defaults finish in seconds.
    progress : callable, optional
        ``progress(stage, done, total)``, called as training epochs and checks finish.

    Returns
    -------
    Diagnosis
    """
    # Every matrix here is at most a few hundred wide: BLAS threads only add
    # synchronization, and on a busy two-core machine they made a run ten times slower.
    with threadpool_limits(limits=1, user_api="blas"):
        return _run(dataset, config or DiagnoseConfig(), progress)


def _run(dataset: Dataset, config: DiagnoseConfig, progress: Progress | None) -> Diagnosis:
    from gradprobe.propagation import depth_sweep, propagation
    from gradprobe.scale import recommend_scale

    started = time.perf_counter()
    report = progress or (lambda stage, done, total: None)
    normalizer = Normalizer().fit(dataset.X_train)
    scaled = (normalizer.transform(dataset.X_train), normalizer.transform(dataset.X_test))
    raw_net = _network(config, dataset)
    net = _network(config, dataset)
    stages = ("propagation", "depth sweep", "gradient check")
    report(stages[0], 0, 1)
    spread = propagation(net, scaled[0], seed=config.seed)
    report(stages[0], 1, 1)
    report(stages[1], 0, 1)
    sweep = depth_sweep(
        config.depth, config.width, config.activation, seed=config.seed, batch_size=_SWEEP_BATCH
    )
    report(stages[1], 1, 1)
    report(stages[2], 0, 2)
    check_initial = _check(net, scaled[0], dataset.y_train, config.seed)
    report(stages[2], 1, 2)
    raw = _train(
        "training on raw inputs",
        raw_net,
        (dataset.X_train, dataset.y_train, dataset.X_test, dataset.y_test),
        config,
        report,
    )
    normalized = _train(
        "training on normalized inputs",
        net,
        (scaled[0], dataset.y_train, scaled[1], dataset.y_test),
        config,
        report,
    )
    check_trained = _check(net, scaled[0], dataset.y_train, config.seed)
    report(stages[2], 2, 2)
    diagnosis = Diagnosis(
        config=config,
        dataset=dataset,
        layer_sizes=list(net.layer_sizes),
        output=net.output,
        metric_name=net.metric_name,
        features=feature_statistics(dataset),
        normalizer=normalizer,
        raw=raw,
        normalized=normalized,
        propagation=spread,
        sweep=sweep,
        recommendation=recommend_scale(config.activation),
        check_initial=check_initial,
        check_trained=check_trained,
    )
    diagnosis.findings = findings(diagnosis)
    diagnosis.seconds = time.perf_counter() - started
    return diagnosis


def _finding(level: str, topic: str, text: str) -> dict[str, str]:
    return {"level": level, "topic": topic, "text": text}


def _metric_text(name: str, value: float | None) -> str:
    if value is None:
        return "none (training diverged)"
    return f"{value:.1%}" if name == "accuracy" else f"R² {value:.3f}"


def findings(diagnosis: Diagnosis) -> list[dict[str, str]]:
    """Say in plain words what the diagnosis found, most important first in each topic."""
    d = diagnosis
    found = []
    spreads = sorted((f["std"], f["name"]) for f in d.features if f["std"] > 0)
    ratio = d.scale_ratio
    if ratio > 10 and spreads:
        found.append(
            _finding(
                "warn",
                "inputs",
                f"Feature scales differ by a factor of {ratio:,.0f} (std of {spreads[0][1]} "
                f"{spreads[0][0]:.3g}, of {spreads[-1][1]} {spreads[-1][0]:.3g}): normalize "
                "the inputs, with statistics from the training split only.",
            )
        )
    else:
        found.append(_finding("ok", "inputs", f"Feature scales are similar (within ×{ratio:.3g})."))
    name = d.metric_name
    if d.raw.diverged_at is not None:
        found.append(
            _finding(
                "bad",
                "inputs",
                f"Without normalization training diverged at epoch {d.raw.diverged_at}; with "
                f"it the test {name} is {_metric_text(name, d.normalized.test_metric)}.",
            )
        )
    else:
        raw_loss, norm_loss = d.raw.history.loss[-1], d.normalized.history.loss[-1]
        better = norm_loss < raw_loss
        found.append(
            _finding(
                "ok" if better else "warn",
                "inputs",
                f"Final training loss {norm_loss:.3g} with normalization, {raw_loss:.3g} "
                f"without; test {name} {_metric_text(name, d.normalized.test_metric)} vs "
                f"{_metric_text(name, d.raw.test_metric)}.",
            )
        )
    spread = d.propagation
    found.append(
        _finding(
            "ok" if spread.verdict == "healthy" else "bad",
            "depth",
            f"This network ({len(d.layer_sizes) - 1} layers, init {d.config.init!r}): "
            f"{spread.summary}.",
        )
    )
    sweep_rows = d.sweep.rows
    healthy = [row["init"] for row in sweep_rows if row["verdict"] == "healthy"]
    unhealthy = [
        f"{row['init']} {row['verdict']}" for row in sweep_rows if row["verdict"] != "healthy"
    ]
    found.append(
        _finding(
            "ok" if healthy else "warn",
            "depth",
            f"At depth {d.sweep.depth} with {d.sweep.activation}: "
            + (
                f"{', '.join(healthy)} {'keeps' if len(healthy) == 1 else 'keep'} signals healthy"
                if healthy
                else "no initialization keeps signals healthy"
            )
            + (f"; {', '.join(unhealthy)}" if unhealthy else "")
            + f". Recommended weight variance: {d.recommendation.forward:.3g}/fan_in.",
        )
    )
    for when, check in (
        ("at initialization", d.check_initial),
        ("after training", d.check_trained),
    ):
        level = {"ok": "ok", "suspicious": "warn"}.get(check.verdict, "bad")
        wrong = f" (check {', '.join(check.wrong_parameters)})" if check.wrong_parameters else ""
        found.append(
            _finding(
                level,
                "gradients",
                f"Backprop {when}: {check.verdict}, relative difference {check.difference:.1e}"
                f"{wrong}.",
            )
        )
    found.append(
        _finding(
            "ok" if d.normalized.test_metric is not None else "bad",
            "result",
            f"Test {name} on {d.dataset.X_test.shape[0]} held-out examples: "
            f"{_metric_text(name, d.normalized.test_metric)}.",
        )
    )
    return found
