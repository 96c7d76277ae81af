"""Plain-text tables of gradprobe results, at most 100 columns wide."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gradprobe.gradreport import GradCheckReport

__all__ = ["format_gradcheck", "plural"]

WIDTH = 100


def plural(count: int, noun: str) -> str:
    """Return ``count`` and ``noun``, the noun with an "s" unless the count is 1.

    Examples
    --------
    >>> plural(1, "kink"), plural(2_500, "value")
    ('1 kink', '2,500 values')
    """
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _wrap(text: str, indent: str, continuation: str = "    ") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=continuation)


def format_gradcheck(report: GradCheckReport) -> str:
    """Render a gradient-check report as a readable table.

    Parameters
    ----------
    report : GradCheckReport
        The report to render.

    Returns
    -------
    str
        Lines of at most 100 characters: the verdict and difference, how the check
        was run, one row per parameter, the worst entries and the diagnoses.
    """
    ok, suspicious = report.thresholds
    eps = "auto" if report.eps is None else f"{report.eps:.3g}"
    lines = [
        f"gradient check: {report.verdict.upper()}   difference {report.difference:.2e}   "
        f"(ok < {ok:.0e}, suspicious < {suspicious:.0e})",
        f"method {report.method}, eps {eps} (steps {report.steps[0]:.2g} to "
        f"{report.steps[1]:.2g}), {report.dtype}, {plural(report.evaluations, 'loss evaluation')}, "
        f"{report.seconds:.2f} s",
        f"checked {report.checked:,} of {plural(report.total, 'value')} ({report.mode}); "
        f"{plural(report.kinks, 'kink')}",
        "",
        f"{'parameter':<16} {'shape':<14} {'checked':>8} {'difference':>11}  {'verdict':<11}"
        f" {'largest error':>13}  at",
    ]
    for row in report.parameters:
        lines.append(
            f"{row.name[:16]:<16} {_shape(row.shape)[:14]:<14} {row.checked:>8,} "
            f"{row.difference:>11.2e}  {row.verdict:<11} {row.largest_error:>13.2e}  "
            f"{row.largest_error_at}"[:WIDTH]
        )
    if not report.passed:
        lines += ["", "worst entries:"]
        for entry in report.worst(5):
            lines.append(
                f"  {entry.name[:24]:<24} analytic {entry.analytic:>12.5g}  numerical "
                f"{entry.numerical:>12.5g}  relative error {entry.relative_error:.1e}"
                + ("  kink" if entry.kink else "")
            )
        diagnosed = [row for row in report.parameters if row.diagnosis]
        if diagnosed:
            lines += ["", "diagnosis:"]
            for row in diagnosed:
                lines += _wrap(f"{row.name}: {row.diagnosis}", "  ")
    if report.notes:
        lines += ["", "notes:"]
        for note in report.notes:
            lines += _wrap(note, "  - ")
    return "\n".join(lines)
