"""What ``gradprobe diagnose`` produced: its options, the two trainings and the diagnosis."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._text import LEVELS, MARKS, html_card
from gradprobe._version import __version__
from gradprobe.check.report import GradCheckReport
from gradprobe.diagnose.config import DiagnoseConfig
from gradprobe.diagnose.tabular import Dataset
from gradprobe.nn import History

__all__ = ["DiagnoseConfig", "Diagnosis", "Training"]

Array = NDArray[np.floating[Any]]


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
    normalizer : InputNormalizer
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
    surface, step_errors : object
        The notes' pictures on this network at initialization
        (:mod:`gradprobe.diagnose.illustrations`).
    deep_linear : tuple of DeepLinearResult
        The notes' deep linear example at the sweep's depth, w = 1.5 and w = 0.5.
    """

    config: DiagnoseConfig
    dataset: Dataset
    layer_sizes: list[int]
    output: str
    metric_name: str
    features: list[dict[str, Any]]
    normalizer: Any
    raw: Training
    normalized: Training
    propagation: Any
    sweep: Any
    recommendation: Any
    check_initial: GradCheckReport
    check_trained: GradCheckReport
    findings: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    surface: Any = None
    step_errors: Any = None
    deep_linear: tuple[Any, ...] = ()

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

    def __repr__(self) -> str:
        levels = [f["level"] for f in self.findings]
        counts = ", ".join(f"{levels.count(level)} {level}" for level in LEVELS)
        return (
            f"Diagnosis(data={self.dataset.name!r}, network={self.layer_sizes}, "
            f"test {self.metric_name}={self.test_metric}, findings: {counts})"
        )

    def _repr_html_(self) -> str:
        """Show the findings in a notebook, worst level first in the card's colour."""
        levels = [f["level"] for f in self.findings]
        worst = max(levels, key=LEVELS.index) if levels else "ok"
        rows = [[MARKS[f["level"]], f["topic"], f["text"]] for f in self.findings]
        return html_card(
            f"gradprobe diagnose: {self.dataset.name}",
            worst,
            [f"network {'-'.join(map(str, self.layer_sizes))}, {self.config.activation}"],
            ["", "topic", "finding"],
            rows,
        )


def _as_data(result: Any) -> dict[str, Any]:
    data: dict[str, Any] = result.to_dict()
    return data
