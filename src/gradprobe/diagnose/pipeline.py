"""The ``gradprobe diagnose`` pipeline: the course notes' steps on one data set, as data.

1. **Inputs**: per-feature mean and spread of the training split; a
   :class:`~gradprobe.nn.InputNormalizer` fitted on the training split only and applied
   to the test split; the same network trained on raw and on normalized inputs.
2. **Depth and initialization**: :func:`gradprobe.propagation` of the chosen
   network, a :func:`gradprobe.depth_sweep` for its activation and the scale
   :func:`gradprobe.recommend_scale` gives.
3. **Gradient check** of the network's backprop at random initialization and
   after training, L2 included, dropout off.
4. **Result**: the test metric and findings in plain words.

:func:`run_diagnosis` takes a :class:`~gradprobe.diagnose.tabular.Dataset` (from a CSV file or
a bundled set, see :mod:`gradprobe.diagnose.tabular`) and returns a :class:`Diagnosis` whose
findings :mod:`gradprobe.diagnose.findings` words; rendering it (HTML, JSON, the terminal
summary) is the job of :mod:`gradprobe.report`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe.check.report import GradCheckReport
from gradprobe.diagnose.findings import findings
from gradprobe.diagnose.illustrations import cost_surface, step_errors
from gradprobe.diagnose.result import DiagnoseConfig, Diagnosis, Training
from gradprobe.diagnose.tabular import Dataset, feature_statistics
from gradprobe.errors import InvalidArgumentError, NonFiniteError
from gradprobe.nn import MLP, History
from gradprobe.nn.check import check_model

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


def _check_rows(X: Array, seed: int) -> NDArray[np.intp]:
    """Return the seeded examples the gradient check looks at."""
    return np.random.default_rng(seed).permutation(X.shape[0])[:_CHECK_EXAMPLES]


def _check(net: MLP, X: Array, y: NDArray[Any], seed: int) -> GradCheckReport:
    """Check the network's backprop on a few examples: L2 included, dropout off."""
    rows = _check_rows(X, seed)
    report = check_model(net, X[rows], y[rows], sample=_CHECK_SAMPLE, seed=seed)
    if report.partial:  # Ctrl-C: stop the whole run, not just the check
        raise KeyboardInterrupt
    return report


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
    """Walk the course notes' steps on one data set and return what was found.

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
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    # Every matrix here is at most a few hundred wide: BLAS threads only add
    # synchronization, and on a busy two-core machine they made a run ten times slower.
    with threadpool_limits(limits=1, user_api="blas"):
        return _run(dataset, config or DiagnoseConfig(), progress)


def _run(dataset: Dataset, config: DiagnoseConfig, progress: Progress | None) -> Diagnosis:
    from gradprobe.nn.probe import propagation
    from gradprobe.nn.scale import recommend_scale
    from gradprobe.nn.sweep import depth_sweep
    from gradprobe.signals.deep_linear import deep_linear

    started = time.perf_counter()
    report = progress or (lambda stage, done, total: None)
    from gradprobe.nn.normalization import InputNormalizer

    normalizer = InputNormalizer().fit(dataset.X_train)
    scaled = (normalizer.transform(dataset.X_train), normalizer.transform(dataset.X_test))
    raw_net = _network(config, dataset)
    net = _network(config, dataset)
    stages = ("propagation", "depth sweep", "gradient check")
    report(stages[0], 0, 1)
    spread = propagation(net, scaled[0], seed=config.seed)
    report(stages[0], 1, 1)
    report(stages[1], 0, 1)
    sweep = depth_sweep(
        config.depth,
        config.width,
        config.activation,
        seed=config.seed,
        batch_size=_SWEEP_BATCH,
        progress=lambda done, total: report(stages[1], done, total),
    )
    report(stages[2], 0, 2)
    check_initial = _check(net, scaled[0], dataset.y_train, config.seed)
    report(stages[2], 1, 2)
    rows = _check_rows(scaled[0], config.seed)
    errors = step_errors(net, scaled[0][rows], dataset.y_train[rows])
    surface = cost_surface(
        net, (dataset.X_train, dataset.y_train), scaled[0], dataset.feature_names
    )
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
        surface=surface,
        step_errors=errors,
        deep_linear=(deep_linear(1.5, config.depth), deep_linear(0.5, config.depth)),
    )
    diagnosis.findings = findings(diagnosis)
    diagnosis.seconds = time.perf_counter() - started
    return diagnosis
