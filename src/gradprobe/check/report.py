"""The report of a gradient check: one row per parameter, one entry per checked value.

:class:`GradCheckReport` is what :func:`gradprobe.check_gradients` (and every other
check: structure-aware, localizing, PyTorch) returns; it is built in one place,
:func:`gradprobe.check.comparison.assemble_report`. Its text, :func:`print_report`, is
the one the command line prints too; :mod:`gradprobe.report` draws the other views.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from gradprobe._console import (
    emit,
    folding_table,
    mark,
    plain_text,
    shape_text,
    table_or_lines,
    verdict_text,
)
from gradprobe._text import html_card, level_of, plural
from gradprobe.check.entries import Entry, EntryTable, GroupTest, ParameterResult
from gradprobe.errors import InvalidArgumentError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["GradCheckReport", "format_table", "print_report"]


@dataclass(frozen=True)
class GradCheckReport:
    """Everything a gradient check found.

    Attributes
    ----------
    difference : float
        The course notes' ``‖dθ_approx − dθ‖₂ / (‖dθ_approx‖₂ + ‖dθ‖₂)`` over all checked values
        (kinks where the analytic value lies between the one-sided slopes excluded), the
        headline number; :func:`~gradprobe.check.comparison.verdict_for` bands it as the
        notes do.
    verdict : {"ok", "inconclusive", "suspicious", "wrong"}
        The worst verdict of the rows, never better than any of them: every row follows
        from its entries, each judged against its own error bound (see
        :mod:`gradprobe.check.bounds`). "inconclusive" when some entries could be told
        neither right nor wrong even after re-checks; ``advice`` says what to try.
    thresholds : tuple of float
        ``(ok_below, suspicious_below)``.
    parameters : tuple of ParameterResult
        One row per named parameter, in θ order.
    method : str
        The difference formula.
    eps : float or None
        The step given, or None when chosen automatically.
    steps : tuple of float
        The smallest and largest step used.
    dtype : str
        The dtype(s) the parameters came in; the check itself runs in float64.
    evaluations : int
        Loss evaluations used.
    seconds : float
        Wall time of the check.
    checked : int
        Values of θ checked.
    total : int
        Values in θ.
    mode : str
        How the values were chosen: "full", "sampled", or "localize".
    notes : tuple of str
        What the check did that a reader should know (promotion, dropout off, …).
    table : EntryTable
        Every value checked one by one, as arrays; :attr:`entries` names them.
    groups : tuple of GroupTest
        With ``mode="localize"``, every random-sign group test, in the order made.
    noise : float
        The standard deviation of the loss's computational noise measured at θ (the
        ECnoise method, see :mod:`gradprobe.numdiff.noise`); 0 when not measured.
    advice : tuple of str
        For an inconclusive check, what to try.
    """

    difference: float
    verdict: str
    thresholds: tuple[float, float]
    parameters: tuple[ParameterResult, ...]
    method: str
    eps: float | None
    steps: tuple[float, float]
    dtype: str
    evaluations: int
    seconds: float
    checked: int
    total: int
    mode: str
    notes: tuple[str, ...]
    table: EntryTable = field(repr=False)
    groups: tuple[GroupTest, ...] = field(default=(), repr=False)
    noise: float = 0.0
    advice: tuple[str, ...] = ()

    @cached_property
    def entries(self) -> tuple[Entry, ...]:
        """Every value checked one by one, in θ order."""
        return tuple(self.table.entry(position) for position in range(len(self.table)))

    @property
    def passed(self) -> bool:
        """True when the verdict is "ok": every row is ok."""
        return self.verdict == "ok" and all(row.verdict == "ok" for row in self.parameters)

    @property
    def sampled(self) -> bool:
        """True when only some values of θ were checked."""
        return self.checked < self.total

    @property
    def kinks(self) -> int:
        """How many checked entries sit within ±ε of a kink of the loss."""
        return sum(row.kinks for row in self.parameters)

    @property
    def wrong_parameters(self) -> list[str]:
        """Names of the parameters found wrong or suspicious."""
        return [row.name for row in self.parameters if row.verdict in ("suspicious", "wrong")]

    @property
    def inconclusive_parameters(self) -> list[str]:
        """Names of the parameters whose check stayed inconclusive."""
        return [row.name for row in self.parameters if row.verdict == "inconclusive"]

    def parameter(self, name: str) -> ParameterResult:
        """Return the row of parameter ``name``."""
        for row in self.parameters:
            if row.name == name:
                return row
        raise InvalidArgumentError(
            f"name: got {name!r}, expected one of {[row.name for row in self.parameters]}"
        )

    def worst(self, k: int = 5) -> list[Entry]:
        """Return the ``k`` checked entries with the largest error over bound, worst first."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise InvalidArgumentError(f"k: got {k!r}, expected a non-negative int")
        return self.table.ranked(k)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-serializable data (the 10 worst entries included)."""
        return {
            "difference": self.difference,
            "verdict": self.verdict,
            "passed": self.passed,
            "thresholds": list(self.thresholds),
            "method": self.method,
            "eps": self.eps,
            "steps": list(self.steps),
            "dtype": self.dtype,
            "evaluations": self.evaluations,
            "seconds": self.seconds,
            "checked": self.checked,
            "total": self.total,
            "mode": self.mode,
            "sampled": self.sampled,
            "kinks": self.kinks,
            "notes": list(self.notes),
            "wrong_parameters": self.wrong_parameters,
            "inconclusive_parameters": self.inconclusive_parameters,
            "noise": self.noise,
            "advice": list(self.advice),
            "parameters": [row.to_dict() for row in self.parameters],
            "worst": [entry.to_dict() for entry in self.worst(10)],
        }

    def __str__(self) -> str:
        return format_table(self)

    @property
    def partial(self) -> bool:
        """True when Ctrl-C stopped the check before every chosen value was differentiated."""
        return self.mode == "partial"

    def __repr__(self) -> str:
        return (
            f"GradCheckReport(verdict={self.verdict!r}, difference={self.difference:.2e}, "
            f"checked={self.checked}, total={self.total}, mode={self.mode!r}, "
            f"wrong_parameters={self.wrong_parameters!r})"
        )

    def summary(self, notes: bool = True) -> list[str]:
        """Return the report's headline as a few sentences, for every renderer.

        The verdict and difference against the bands, what was checked and how, the
        worst entries of a partial or failing check, then (with ``notes``) the notes.
        """
        ok, suspicious = self.thresholds
        lines = [
            f"{self.verdict.upper()}, relative difference {self.difference:.2e} (ok below "
            f"{ok:.0e}, wrong above {suspicious:.0e}).",
            f"Checked {self.checked:,} of {plural(self.total, 'value')} ({self.mode}) with "
            f"{self.method} differences: {plural(self.evaluations, 'loss evaluation')}, "
            f"{self.seconds:.2f} s, {plural(self.kinks, 'kink')}.",
        ]
        if self.partial and self.checked:
            worst = self.worst(1)[0]
            lines.append(
                f"Interrupted: checked {self.checked:,} of {self.total:,}; worst so far "
                f"{worst.name}, relative error {worst.relative_error:.1e}."
            )
        elif not self.passed and self.checked:
            names = ", ".join(entry.name for entry in self.worst(3))
            lines.append(f"Worst entries: {names}.")
        return lines + [note[:1].upper() + note[1:] + "." for note in self.notes if notes]

    def _repr_html_(self) -> str:
        """Show the report in a notebook: the verdict, then one row per parameter."""
        rows = [
            [
                row.name,
                shape_text(row.shape),
                f"{row.checked:,}",
                f"{row.difference:.2e}",
                row.verdict,
            ]
            for row in self.parameters
        ]
        return html_card(
            "gradient check",
            level_of(self.verdict),
            self.summary(),
            ["parameter", "shape", "checked", "difference", "verdict"],
            rows,
        )


def print_report(console: Console, report: GradCheckReport) -> None:
    """Print a gradient check: verdict and summary, one row per parameter, worst entries.

    The one rendering of a check, in the command line and in ``str(report)`` alike.
    Every parameter and coordinate name is shown whole, folded onto a second line when
    the console is too narrow; the diagnosis, advice and notes wrap at its width.

    Parameters
    ----------
    console : rich.console.Console
        Where to print, at its width.
    report : GradCheckReport
        The report to print.
    """
    from rich.text import Text  # rich is imported when a report is first printed

    lines = report.summary(notes=False)
    eps = "auto" if report.eps is None else f"{report.eps:.3g}"
    lines.insert(
        2,
        f"Step ε {eps} ({report.steps[0]:.2g} to {report.steps[1]:.2g}), {report.dtype} "
        "parameters, checked in float64.",
    )
    level = level_of(report.verdict)
    headline = Text.assemble(mark(level), " gradient check: ", (lines[0], "bold"))
    rows = folding_table(
        "parameter",
        "shape",
        "checked",
        "difference",
        "verdict",
        "largest error",
        "at",
        right=("checked", "difference", "largest error"),
        names=("parameter", "at"),
    )
    cells = []
    for row in report.parameters:
        # "W1[3, 2]" in the row of W1 reads "[3, 2]": the name is in the first column.
        at = row.largest_error_at
        at = at[len(row.name) :] if at.startswith(row.name + "[") else at
        cells.append(
            [
                row.name,
                shape_text(row.shape),
                f"{row.checked:,}",
                f"{row.difference:.2e}",
                row.verdict,
                f"{row.largest_error:.2e}",
                at,
            ]
        )
        texts = [Text(cell) for cell in cells[-1]]
        rows.add_row(*texts[:4], verdict_text(row.verdict), *texts[5:])
    emit(
        console,
        headline,
        *(Text(line) for line in lines[1:]),
        Text(),
        *table_or_lines(console, rows, cells),
    )
    if not report.passed and report.checked:
        worst = folding_table(
            "worst entries",
            "analytic",
            "numerical",
            "relative error",
            "error/bound",
            "",
            right=("analytic", "numerical", "relative error", "error/bound"),
            names=("worst entries",),
        )
        entries = [
            [
                entry.name,
                f"{entry.analytic:.6g}",
                f"{entry.numerical:.6g}",
                f"{entry.relative_error:.1e}",
                _times(entry.significance),
                "kink" if entry.kink else "",
            ]
            for entry in report.worst(5)
        ]
        for entry_cells in entries:
            worst.add_row(*(Text(cell) for cell in entry_cells))
        emit(console, Text(), *table_or_lines(console, worst, entries))
    diagnosed = [row for row in report.parameters if row.diagnosis]
    if diagnosed or report.advice or report.notes:
        emit(console, Text())
    if diagnosed:
        emit(console, Text("diagnosis:", style="bold"))
    for row in diagnosed:
        emit(console, Text.assemble((row.name, "bold"), f": {row.diagnosis}"))
    for line in report.advice:
        emit(console, Text.assemble(("what to try: ", "bold"), line))
    for note in report.notes:
        emit(console, Text(f"note: {note}"))


def format_table(report: GradCheckReport, width: int | None = None) -> str:
    """Render a gradient-check report as plain text: what ``str(report)`` returns.

    Parameters
    ----------
    report : GradCheckReport
        The report to render.
    width : int, optional
        Columns; by default the terminal's width, or 100 when output is not a terminal.

    Returns
    -------
    str
        :func:`print_report`'s lines without colour codes or trailing spaces: the
        verdict and how the check ran, one row per parameter, the worst entries, the
        diagnoses, advice and notes. Names are folded onto more lines, never cut.
    """
    return plain_text(lambda console: print_report(console, report), width)


def _times(significance: float) -> str:
    """Write an error over bound in words: ``"3.2e+02×"``, ``"≤1×"``."""
    if not np.isfinite(significance):
        return "∞×"
    return "≤1×" if significance <= 1 else f"{significance:.1e}×"
