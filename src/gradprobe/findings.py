"""The findings of ``gradprobe diagnose`` in plain words, one topic at a time.

:func:`findings` reads a finished :class:`~gradprobe.diagnose.Diagnosis` and says,
for the inputs, depth and initialization, the gradient check and the result, what
was found and what to do, as ``{"level", "topic", "text"}`` rows for the reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gradprobe.diagnose import Diagnosis

__all__ = ["findings"]


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
