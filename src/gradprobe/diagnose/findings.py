"""The findings of ``gradprobe diagnose`` in plain words, one topic at a time.

:func:`findings` reads a finished :class:`~gradprobe.diagnose.pipeline.Diagnosis` and says,
for the inputs, depth and initialization, the gradient check and the result, what
was found and what to do, as ``{"level", "topic", "text"}`` rows for the reports.
"""

from __future__ import annotations

import numpy as np

from gradprobe._text import plural
from gradprobe.diagnose.result import Diagnosis

__all__ = ["findings"]


def _finding(level: str, topic: str, text: str) -> dict[str, str]:
    return {"level": level, "topic": topic, "text": text}


_LABELS = {"accuracy": "accuracy", "r2": "R²"}


def _value(name: str, value: float | None) -> str:
    if value is None:
        return "none (training diverged)"
    return f"{value:.1%}" if name == "accuracy" else f"{value:.3f}"


def _chance(diagnosis: Diagnosis) -> float:
    """Return the test metric of a model that learned nothing: the majority class or mean.

    The majority class is the training split's; its share of the test split is the
    accuracy of always predicting it. Predicting the mean has an R² of 0.
    """
    data = diagnosis.dataset
    if diagnosis.metric_name != "accuracy":
        return 0.0
    counts = np.bincount(np.asarray(data.y_train, dtype=np.int64))
    return float(np.mean(np.asarray(data.y_test) == int(np.argmax(counts))))


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
    label = _LABELS[name]
    if d.raw.diverged_at is not None:
        found.append(
            _finding(
                "bad",
                "inputs",
                f"Without normalization training diverged at epoch {d.raw.diverged_at}"
                + (
                    f"; with it the test {label} is {_value(name, d.normalized.test_metric)}."
                    if d.normalized.diverged_at is None
                    else "."
                ),
            )
        )
    if d.normalized.diverged_at is not None:
        found.append(
            _finding(
                "bad",
                "inputs",
                f"With normalization training diverged too, at epoch {d.normalized.diverged_at}: "
                "lower the learning rate (--lr).",
            )
        )
    if d.raw.diverged_at is None and d.normalized.diverged_at is None:
        raw_loss, norm_loss = d.raw.history.loss[-1], d.normalized.history.loss[-1]
        better = norm_loss < raw_loss
        found.append(
            _finding(
                "ok" if better else "warn",
                "inputs",
                f"Final training loss {norm_loss:.3g} with normalization, {raw_loss:.3g} "
                f"without; test {label} {_value(name, d.normalized.test_metric)} vs "
                f"{_value(name, d.raw.test_metric)}.",
            )
        )
    spread = d.propagation
    found.append(
        _finding(
            "ok" if spread.verdict == "healthy" else "bad",
            "depth",
            f"This network ({plural(len(d.layer_sizes) - 1, 'layer')}, init {d.config.init!r}): "
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
        # Inconclusive is not a bug found: a warning that says what to try, not a failure.
        level = {"ok": "ok", "suspicious": "warn", "inconclusive": "warn"}.get(check.verdict, "bad")
        wrong = f" (check {', '.join(check.wrong_parameters)})" if check.wrong_parameters else ""
        found.append(
            _finding(
                level,
                "gradients",
                f"Backprop {when}: {check.verdict}, relative difference {check.difference:.1e}"
                f"{wrong}.",
            )
        )
    found.append(_result(d))
    return found


def _result(d: Diagnosis) -> dict[str, str]:
    """Word the test metric; warn when it is no better than a model that learned nothing."""
    name, metric = d.metric_name, d.normalized.test_metric
    examples = plural(d.dataset.X_test.shape[0], "held-out example")
    text = f"Test {_LABELS[name]} on {examples}: {_value(name, metric)}"
    if metric is None:
        return _finding("bad", "result", text + ".")
    chance = _chance(d)
    if metric > chance:
        return _finding("ok", "result", text + ".")
    baseline = (
        f"always predicting the most common class ({chance:.1%})"
        if name == "accuracy"
        else "predicting the mean (R² 0)"
    )
    return _finding(
        "warn",
        "result",
        f"{text}, no better than {baseline}: the network has not learned the task yet; train "
        "longer (--epochs), try another learning rate (--lr) or check that the features "
        "carry information about the target.",
    )
