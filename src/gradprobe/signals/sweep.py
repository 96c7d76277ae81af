"""The results of sweeps over initializations: one propagation report per scheme.

:class:`DepthSweep` holds fresh gradprobe MLPs (:func:`gradprobe.depth_sweep`);
:class:`InitSweep` a user's own architecture re-initialized each way
(:func:`gradprobe.torch.init_sweep`). Both share their table and plot data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gradprobe.signals._cards import sweep_card
from gradprobe.signals.propagation import PropagationReport

__all__ = ["DepthSweep", "InitSweep"]


def _rows(reports: dict[str, PropagationReport]) -> list[dict[str, Any]]:
    rows = []
    for name, report in reports.items():
        first, last = report.layers[0], report.layers[-1]
        with np.errstate(all="ignore"):
            ratio = first.gradient_norm / last.gradient_norm if last.gradient_norm > 0 else np.nan
        rows.append(
            {
                "init": name,
                "verdict": report.verdict,
                "trouble_layer": report.trouble_layer,
                "trouble_name": report.trouble_name,
                "first_std": first.std,
                "last_std": last.std,
                "gradient_ratio": float(ratio),
            }
        )
    return rows


def _data(reports: dict[str, PropagationReport]) -> dict[str, dict[str, list[Any]]]:
    return {
        name: {
            "layer": list(range(1, report.depth + 1)),
            "name": report.names,
            "activation_std": report.column("std").tolist(),
            "second_moment": report.column("second_moment").tolist(),
            "gradient_norm": report.column("gradient_norm").tolist(),
        }
        for name, report in reports.items()
    }


def _table(title: str, rows: list[dict[str, Any]]) -> str:
    lines = [
        title,
        f"{'init':<12} {'verdict':<10} {'from':>12} {'std layer 1':>12} "
        f"{'std layer L':>12} {'‖dW1‖/‖dWL‖':>12}",
    ]
    for row in rows:
        start = "" if row["trouble_name"] is None else row["trouble_name"]
        lines.append(
            f"{row['init'][:12]:<12} {row['verdict']:<10} {start[:12]:>12} "
            f"{row['first_std']:>12.3g} {row['last_std']:>12.3g} {row['gradient_ratio']:>12.3g}"
        )
    return "\n".join(lines)


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

        Keys: ``init``, ``verdict``, ``trouble_layer`` (and its ``trouble_name``),
        ``first_std`` and ``last_std`` (activation std at layers 1 and L) and
        ``gradient_ratio`` (``‖dW1‖ / ‖dWL‖``).
        """
        return _rows(self.reports)

    @property
    def data(self) -> dict[str, dict[str, list[Any]]]:
        """The per-layer series for plots, by initialization.

        Keys: ``layer``, ``name``, ``activation_std``, ``second_moment``,
        ``gradient_norm``, each a list over layers ``1..L``.
        """
        return _data(self.reports)

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
        title = f"depth sweep: {self.depth} layers of {self.width} units, {self.activation}"
        return _table(title, self.rows)

    def __repr__(self) -> str:
        verdicts = {name: report.verdict for name, report in self.reports.items()}
        return (
            f"DepthSweep(depth={self.depth}, width={self.width}, "
            f"activation={self.activation!r}, verdicts={verdicts!r})"
        )

    def _repr_html_(self) -> str:
        """Show the sweep in a notebook: one row per initialization."""
        title = f"depth sweep: {self.depth} layers of {self.width} {self.activation} units"
        return sweep_card(title, self.rows)


@dataclass(frozen=True)
class InitSweep:
    """Propagation reports of one architecture re-initialized several ways.

    Attributes
    ----------
    model : str
        What was swept, e.g. ``"Sequential with 24 weight layers"``.
    reports : dict of str to PropagationReport
        By initialization name, in the order given.
    """

    model: str
    reports: dict[str, PropagationReport]

    @property
    def rows(self) -> list[dict[str, Any]]:
        """One row per initialization, with the keys of :attr:`DepthSweep.rows`."""
        return _rows(self.reports)

    @property
    def data(self) -> dict[str, dict[str, list[Any]]]:
        """The per-layer series for plots, as :attr:`DepthSweep.data`."""
        return _data(self.reports)

    def to_dict(self) -> dict[str, Any]:
        """Return everything as plain Python objects."""
        return {
            "model": self.model,
            "rows": self.rows,
            "reports": {name: report.to_dict() for name, report in self.reports.items()},
        }

    def __str__(self) -> str:
        return _table(f"initialization sweep: {self.model}", self.rows)

    def __repr__(self) -> str:
        verdicts = {name: report.verdict for name, report in self.reports.items()}
        return f"InitSweep(model={self.model!r}, verdicts={verdicts!r})"

    def _repr_html_(self) -> str:
        """Show the sweep in a notebook: one row per initialization."""
        return sweep_card(f"initialization sweep: {self.model}", self.rows)
