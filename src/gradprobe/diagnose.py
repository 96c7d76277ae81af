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

:func:`run_diagnosis` takes a :class:`~gradprobe.tabular.Dataset` (from a CSV file or
a bundled set, see :mod:`gradprobe.tabular`) and returns a :class:`Diagnosis` whose
findings :mod:`gradprobe.findings` words; rendering it (HTML, JSON, the terminal
summary) is the job of :mod:`gradprobe.report`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from gradprobe import __version__
from gradprobe._arguments import check_count
from gradprobe.errors import GradprobeError, InvalidArgumentError, NonFiniteError
from gradprobe.findings import findings
from gradprobe.gradreport import GradCheckReport
from gradprobe.nn import MLP, History, Normalizer
from gradprobe.nn.check import check_model
from gradprobe.tabular import Dataset, feature_statistics

__all__ = [
    "Diagnosis",
    "DiagnoseConfig",
    "Progress",
    "Training",
    "parse_layers",
    "run_diagnosis",
]

Array = NDArray[np.floating[Any]]

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as each stage advances."""

# The gradient check looks at this many examples and at most this many values per parameter:
# a full check of every value costs 2N loss evaluations; a seeded sample finds a wrong
# parameter just as surely, since a backprop bug spoils all or most of its entries.
_CHECK_EXAMPLES = 64
# The depth sweep's probe batch: 64 rows of a 64-wide layer estimate its spread well enough.
_SWEEP_BATCH = 64
_CHECK_SAMPLE = 40
# The options of DiagnoseConfig that the network or the optimizer checks, by their own name.
_OPTIONS = ("activation", "init", "l2", "dropout", "lr", "optimizer", "seed")


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

    def __post_init__(self) -> None:
        """Check every option before any work: a bad value fails at once, not after training.

        The network and its optimizer are built once, so their own checks run; their
        messages name the ``gradprobe diagnose`` option (``--activation: got 'foo'…``).
        """
        if not self.layers:
            raise InvalidArgumentError(
                "--layers: got no hidden layers, expected at least one width, e.g. --layers 64,32"
            )
        for width in self.layers:
            check_count(width, "--layers")
        check_count(self.epochs, "--epochs")
        check_count(self.depth, "depth")
        check_count(self.width, "width")
        try:
            net = MLP(
                [1, *self.layers, 1],
                activation=self.activation,
                init=self.init,
                l2=self.l2,
                dropout=self.dropout,
                seed=self.seed,
            )
            net.fit(np.zeros((1, 1)), [0], epochs=0, lr=self.lr, optimizer=self.optimizer)
        except GradprobeError as error:
            name, colon, rest = str(error).partition(":")
            if colon and name in _OPTIONS:
                raise type(error)(f"--{name}:{rest}") from error
            raise


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


# ----------------------------------------------------------------------------- options


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


# ---------------------------------------------------------------------------- pipeline


def _train(
    label: str,
    net: MLP,
    data: tuple[Array, NDArray[Any], Array, NDArray[Any]],
    config: DiagnoseConfig,
    progress: Progress,
) -> Training:
    """Train ``net`` in place; a divergence is a finding, not an error.

    After a divergence the network gets back the last parameters with a finite
    training loss, so that the gradient check after training has numbers to look at.
    """
    X_train, y_train, X_test, y_test = data
    seen: list[History] = []
    # An epoch's loss is that of the parameters before its update: the parameters after
    # epoch k are known good only once epoch k + 1 reports a finite loss.
    good = {name: value.copy() for name, value in net.params.items()}
    pending = {name: value.copy() for name, value in net.params.items()}

    def report(epoch: int, history: History) -> None:
        if not seen:
            seen.append(history)
        for name, value in net.params.items():
            good[name][...] = pending[name]
            pending[name][...] = value
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
        for name, value in good.items():
            net.params[name][...] = value
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
    from gradprobe.depth import depth_sweep
    from gradprobe.propagation import propagation
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
