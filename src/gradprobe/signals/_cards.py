"""How the signal reports show themselves: a one-line repr and a notebook card.

Kept apart from the report types so they stay about what was measured; each function
takes the report (or its rows) and returns text.
"""

from __future__ import annotations

from typing import Any

from gradprobe._text import html_card, level_of

__all__ = ["propagation_card", "propagation_repr", "sweep_card"]


def propagation_repr(report: Any) -> str:
    """Return a :class:`~gradprobe.signals.propagation.PropagationReport` in one short line."""
    verdict = f"verdict={report.verdict!r}, trouble_layer={report.trouble_layer}"
    return f"PropagationReport(depth={report.depth}, activation={report.activation!r}, {verdict})"


def propagation_card(report: Any) -> str:
    """Return a propagation report as a notebook card: verdict, advice, one row per layer."""
    rows = [
        [
            layer.label,
            f"{layer.std:.3g}",
            f"{layer.dead:.0%}",
            f"{layer.saturated:.0%}",
            f"{layer.gradient_norm:.3g}",
        ]
        for layer in report.layers
    ]
    return html_card(
        f"signal propagation through {report.depth} layers ({report.activation})",
        level_of(report.verdict),
        [report.summary, report.advice, *report.findings],
        ["layer", "std of A", "dead", "saturated", "‖dW‖"],
        rows,
    )


def sweep_card(title: str, rows: list[dict[str, Any]]) -> str:
    """Return a sweep as a notebook card: one row per initialization, healthy ones named."""
    cells = [
        [
            row["init"],
            row["verdict"],
            "—" if row["trouble_layer"] is None else str(row["trouble_layer"]),
            f"{row['first_std']:.3g}",
            f"{row['last_std']:.3g}",
        ]
        for row in rows
    ]
    healthy = [row["init"] for row in rows if row["verdict"] == "healthy"]
    return html_card(
        title,
        "ok" if healthy else "warn",
        [f"healthy: {', '.join(healthy)}" if healthy else "no initialization is healthy"],
        ["init", "verdict", "from layer", "std layer 1", "std layer L"],
        cells,
    )
