"""The result of a sweep over initializations: one propagation report per scheme."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gradprobe._text import html_card
from gradprobe.signals.propagation import PropagationReport

__all__ = ["DepthSweep"]


@dataclass(frozen=True)
class DepthSweep:
    """Propagation reports of fresh networks, one per initialization.

    Attributes
    ----------
    depth, width : int
        Every network has ``depth`` layers of ``width`` units (input included).
    activation : str
        The hidden activation.
    reports : dict of str to PropagationReport
        By initialization name, in the order given.
    """

    depth: int
    width: int
    activation: str
    reports: dict[str, PropagationReport]

    @property
    def rows(self) -> list[dict[str, Any]]:
        """One row per initialization.

        Keys: ``init``, ``verdict``, ``trouble_layer``, ``first_std`` and ``last_std``
        (activation std at layers 1 and L) and ``gradient_ratio`` (``‖dW1‖ / ‖dWL‖``).
        """
        rows = []
        for name, report in self.reports.items():
            first, last = report.layers[0], report.layers[-1]
            with np.errstate(all="ignore"):
                ratio = (
                    first.gradient_norm / last.gradient_norm if last.gradient_norm > 0 else np.nan
                )
            rows.append(
                {
                    "init": name,
                    "verdict": report.verdict,
                    "trouble_layer": report.trouble_layer,
                    "first_std": first.std,
                    "last_std": last.std,
                    "gradient_ratio": float(ratio),
                }
            )
        return rows

    @property
    def data(self) -> dict[str, dict[str, list[float]]]:
        """The per-layer series for plots, by initialization.

        Keys: ``layer``, ``activation_std``, ``second_moment``, ``gradient_norm``, each a
        list over layers ``1..L``.
        """
        return {
            name: {
                "layer": list(range(1, report.depth + 1)),
                "activation_std": report.column("std").tolist(),
                "second_moment": report.column("second_moment").tolist(),
                "gradient_norm": report.column("gradient_norm").tolist(),
            }
            for name, report in self.reports.items()
        }

    def to_dict(self) -> dict[str, Any]:
        """Return everything as plain Python objects."""
        return {
            "depth": self.depth,
            "width": self.width,
            "activation": self.activation,
            "rows": self.rows,
            "reports": {name: report.to_dict() for name, report in self.reports.items()},
        }

    def __str__(self) -> str:
        lines = [
            f"depth sweep: {self.depth} layers of {self.width} units, {self.activation}",
            f"{'init':<12} {'verdict':<10} {'from':>5} {'std layer 1':>12} "
            f"{'std layer L':>12} {'‖dW1‖/‖dWL‖':>12}",
        ]
        for row in self.rows:
            start = "" if row["trouble_layer"] is None else row["trouble_layer"]
            lines.append(
                f"{row['init'][:12]:<12} {row['verdict']:<10} {start:>5} {row['first_std']:>12.3g} "
                f"{row['last_std']:>12.3g} {row['gradient_ratio']:>12.3g}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        verdicts = {name: report.verdict for name, report in self.reports.items()}
        return (
            f"DepthSweep(depth={self.depth}, width={self.width}, "
            f"activation={self.activation!r}, verdicts={verdicts!r})"
        )

    def _repr_html_(self) -> str:
        """Show the sweep in a notebook: one row per initialization."""
        rows = [
            [
                row["init"],
                row["verdict"],
                "—" if row["trouble_layer"] is None else str(row["trouble_layer"]),
                f"{row['first_std']:.3g}",
                f"{row['last_std']:.3g}",
            ]
            for row in self.rows
        ]
        healthy = [row["init"] for row in self.rows if row["verdict"] == "healthy"]
        return html_card(
            f"depth sweep: {self.depth} layers of {self.width} {self.activation} units",
            "ok" if healthy else "warn",
            [f"healthy: {', '.join(healthy)}" if healthy else "no initialization is healthy"],
            ["init", "verdict", "from layer", "std layer 1", "std layer L"],
            rows,
        )
