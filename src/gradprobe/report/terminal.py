"""The command line's terminal output: rich tables, the diagnose summary, progress bars.

Rendering only, as everywhere in :mod:`gradprobe.report`: each function prints
results it is given on the console it is given and computes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from gradprobe._text import plural

if TYPE_CHECKING:
    from gradprobe.diagnose.result import Diagnosis
    from gradprobe.nn.scale import ScaleRecommendation
    from gradprobe.numdiff.derivative import Derivative
    from gradprobe.signals.sweep import DepthSweep

__all__ = ["ProgressBars", "print_depth_sweep", "print_derivatives", "print_diagnosis"]

# How each method's error shrinks with ε, and its formula, for the table.
_METHOD_NOTES = {
    "forward": ("O(ε)", "(f(x+ε)−f(x))/ε"),
    "backward": ("O(ε)", "(f(x)−f(x−ε))/ε"),
    "central": ("O(ε²)", "(f(x+ε)−f(x−ε))/2ε"),
    "complex": ("O(ε²)", "Im f(x+iε)/ε"),
    "richardson": ("O(ε⁸)", "extrapolated central"),
}

_MARKS = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "bad": "[red]✗[/]"}
_TOPICS = (
    ("inputs", "1. Inputs"),
    ("depth", "2. Depth and init"),
    ("gradients", "3. Gradient check"),
    ("result", "4. Result"),
)


def print_derivatives(
    console: Console,
    expression: str,
    variable: str,
    slope: str,
    at: float,
    exact: float,
    results: Sequence[tuple[str, Derivative | str]],
) -> None:
    """Print each method's estimate of ``f'(at)`` with its error against the exact value.

    Parameters
    ----------
    console : rich.console.Console
        Where to print.
    expression, variable : str
        The formula as the user wrote it and its variable.
    slope : str
        The exact derivative as a formula.
    at, exact : float
        The point and the exact derivative there.
    results : sequence of (str, Derivative or str)
        One per method: its name and the result of :func:`gradprobe.derivative` with
        ``full_output=True``, or why the method does not apply here (shown as "n/a").
    """
    console.print(f"f({variable}) = {expression}    f'({variable}) = {slope}")
    console.print(f"exact f'({at:g}) = {exact:.12g}  (sympy)")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("method", "formula", "ε", "estimate", "error", "order"):
        table.add_column(header, justify="right" if header in {"ε", "error"} else "left")
    errors: dict[str, float] = {}
    reasons: list[str] = []
    for method, result in results:
        order, formula = _METHOD_NOTES[method]
        if isinstance(result, str):
            table.add_row(method, formula, "—", "n/a", "n/a", order)
            reasons.append(f"{method}: n/a, {result}")
            continue
        errors[method] = abs(result.value - exact)
        table.add_row(
            method,
            formula,
            f"{result.step:.3g}",
            f"{result.value:.12g}",
            f"{errors[method]:.2e}",
            order,
        )
    console.print(table)
    for reason in reasons:
        console.print(escape(reason))
    if "forward" in errors and "central" in errors and errors["central"] > 0:
        ratio = errors["forward"] / errors["central"]
        console.print(
            f"two-sided (central) is {ratio:.3g}× more accurate than one-sided (forward) here"
        )


class ProgressBars:
    """``progress(stage, done, total)`` shown as one rich progress bar per stage."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        """Show that ``stage`` has ``done`` of ``total`` steps behind it."""
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)


def print_diagnosis(
    console: Console, diagnosis: Diagnosis, paths: tuple[Path, Path], seconds: float
) -> None:
    """Print the findings of ``gradprobe diagnose`` by topic, and where the report went.

    ``seconds`` is the command's time from its start, loading the data and writing the
    report included; ``diagnosis.seconds`` the analysis's alone.
    """
    d = diagnosis
    data = d.dataset
    console.print(
        f"[bold]gradprobe diagnose[/]: {escape(data.name)} ({data.task}, "
        f"{data.X_train.shape[0]:,} train / {data.X_test.shape[0]:,} test, "
        f"{plural(data.X_train.shape[1], 'feature')})\nnetwork "
        f"{'-'.join(map(str, d.layer_sizes))} {d.config.activation}, {d.config.optimizer} lr "
        f"{d.config.lr:g}, {plural(d.config.epochs, 'epoch')}"
    )
    for topic, title in _TOPICS:
        items = [f for f in d.findings if f["topic"] == topic]
        for number, finding in enumerate(items):
            label = title if number == 0 else ""
            grid = Table.grid(padding=(0, 1))
            grid.add_column(width=18)
            grid.add_column(width=1)
            grid.add_column()
            grid.add_row(label, _MARKS[finding["level"]], escape(finding["text"]))
            console.print(grid)
    console.print(
        f"report: {paths[0]}  data: {paths[1]}  ({seconds:.1f} s, analysis {d.seconds:.1f} s)"
    )


def print_depth_sweep(
    console: Console,
    sweep: DepthSweep,
    scale: ScaleRecommendation,
    activation: str,
    seed: int,
    plot: Path | None,
) -> None:
    """Print a depth sweep's verdict per initialization and the recommended weight scale."""
    console.print(
        f"depth sweep: {plural(sweep.depth, 'layer')} of {plural(sweep.width, 'unit')}, "
        f"{activation} (seed {seed})"
    )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("init", "verdict", "from layer", "std layer 1", "std layer L", "‖dW1‖/‖dWL‖"):
        table.add_column(header, justify="left" if header in {"init", "verdict"} else "right")
    colours = {"healthy": "green", "vanishing": "yellow", "exploding": "red"}
    for row in sweep.rows:
        table.add_row(
            row["init"],
            f"[{colours.get(row['verdict'], 'white')}]{row['verdict']}[/]",
            "—" if row["trouble_layer"] is None else str(row["trouble_layer"]),
            f"{row['first_std']:.3g}",
            f"{row['last_std']:.3g}",
            f"{row['gradient_ratio']:.3g}",
        )
    console.print(table)
    console.print(
        f"recommended for {activation}: Var(W) = {scale.forward:.3g}/fan_in (forward), "
        f"{scale.backward:.3g}/fan_in (backward)"
    )
    if plot is not None:
        console.print(f"figure: {plot}")
