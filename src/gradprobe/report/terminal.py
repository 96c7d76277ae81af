"""The command line's terminal output: rich tables, the diagnose summary, progress bars.

Rendering only, as everywhere in :mod:`gradprobe.report`: each function prints
results it is given on the console it is given and computes nothing. Output is laid
out at the console's width (the command line gives 100 columns when piped), long
names wrap instead of being cut, and no line ends in spaces (:func:`emit`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gradprobe._console import emit, folding_table, mark, verdict_text
from gradprobe._text import plural
from gradprobe.check.report import print_report

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from gradprobe.check.report import GradCheckReport
    from gradprobe.diagnose.result import Diagnosis
    from gradprobe.nn.scale import ScaleRecommendation
    from gradprobe.numdiff.derivative import Derivative
    from gradprobe.signals.sweep import DepthSweep

__all__ = [
    "ProgressBars",
    "emit",
    "print_check",
    "print_depth_sweep",
    "print_derivatives",
    "print_diagnosis",
    "progress_bars",
]

# How each method's error shrinks with ε, and its formula, for the table.
_METHOD_NOTES = {
    "forward": ("O(ε)", "(f(x+ε)−f(x))/ε"),
    "backward": ("O(ε)", "(f(x)−f(x−ε))/ε"),
    "central": ("O(ε²)", "(f(x+ε)−f(x−ε))/2ε"),
    "complex": ("O(ε²)", "Im f(x+iε)/ε"),
    "richardson": ("O(ε⁸)", "extrapolated central"),
}

_TOPICS = (
    ("inputs", "1. Inputs"),
    ("depth", "2. Depth and init"),
    ("gradients", "3. Gradient check"),
    ("result", "4. Result"),
)


def print_check(console: Console, report: GradCheckReport) -> None:
    """Print a gradient check as ``str(report)`` reads it (one renderer: ``print_report``).

    Every parameter and coordinate name is shown whole, folded onto a second line when
    the terminal is too narrow; the diagnosis and notes wrap at the console's width.
    """
    print_report(console, report)


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

    def stage(self, name: str) -> Any:
        """Return ``progress(done, total)`` for one stage, the form checks take."""
        return lambda done, total: self(name, done, total)


@contextmanager
def progress_bars(console: Console, enabled: bool = True) -> Iterator[ProgressBars]:
    """Show progress bars with count, rate and time left on ``console`` while in the block.

    Off when ``enabled`` is False or the console is not a terminal: in a file or a
    pipe the bars would only leave blank lines. The bars vanish when the block ends.
    """
    from rich.progress import (  # imported here: the command line starts faster
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    class Rate(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.3g}/s", style="progress.data.speed")

    with Progress(
        TextColumn("{task.description:<30}"),
        BarColumn(),
        MofNCompleteColumn(),
        Rate(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not (enabled and console.is_terminal),
    ) as bars:
        yield ProgressBars(bars)


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
    emit(
        console,
        Text(f"f({variable}) = {expression}    f'({variable}) = {slope}"),
        Text(f"exact f'({at:g}) = {exact:.12g}  (sympy)"),
    )
    table = folding_table(
        "method",
        "formula",
        "ε",
        "estimate",
        "error",
        "order",
        right=("ε", "error"),
        names=("formula",),
    )
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
    emit(console, table, *(Text(reason) for reason in reasons))
    if "forward" in errors and "central" in errors and errors["central"] > 0:
        ratio = errors["forward"] / errors["central"]
        emit(
            console,
            Text(
                f"two-sided (central) is {ratio:.3g}× more accurate than one-sided (forward) here"
            ),
        )


def print_diagnosis(
    console: Console, diagnosis: Diagnosis, paths: tuple[Path, Path], seconds: float
) -> None:
    """Print the findings of ``gradprobe diagnose`` by topic, and where the report went.

    ``seconds`` is the command's time from its start, loading the data and writing the
    report included; ``diagnosis.seconds`` the analysis's alone.
    """
    d = diagnosis
    data = d.dataset
    # "classification, inferred: 'label' has 2 distinct integer values; 426 train / …"
    task = f"{data.task}, {data.task_reason};" if data.task_reason else f"{data.task},"
    emit(
        console,
        Text.assemble(
            ("gradprobe diagnose", "bold"),
            f": {data.name} ({task} {data.X_train.shape[0]:,} train / "
            f"{data.X_test.shape[0]:,} test, {plural(data.X_train.shape[1], 'feature')})",
        ),
        Text(
            f"network {'-'.join(map(str, d.layer_sizes))} {d.config.activation}, "
            f"{d.config.optimizer} lr {d.config.lr:g}, {plural(d.config.epochs, 'epoch')}"
        ),
    )
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=18)
    grid.add_column(width=1)
    grid.add_column()
    for topic, title in _TOPICS:
        items = [f for f in d.findings if f["topic"] == topic]
        for number, finding in enumerate(items):
            label = title if number == 0 else ""
            grid.add_row(label, mark(finding["level"]), Text(finding["text"]))
    emit(console, grid)
    # One line however long the paths: they are meant to be copied.
    where = f"report: {paths[0]}  data: {paths[1]}  ({seconds:.1f} s, analysis {d.seconds:.1f} s)"
    console.print(Text(where), soft_wrap=True)


def print_depth_sweep(
    console: Console,
    sweep: DepthSweep,
    scale: ScaleRecommendation,
    activation: str,
    seed: int,
    plot: Path | None,
) -> None:
    """Print a depth sweep's verdict per initialization and the recommended weight scale."""
    emit(
        console,
        Text(
            f"depth sweep: {plural(sweep.depth, 'layer')} of {plural(sweep.width, 'unit')}, "
            f"{activation} (seed {seed})"
        ),
    )
    headers = ("init", "verdict", "from layer", "std layer 1", "std layer L", "‖dW1‖/‖dWL‖")
    table = folding_table(*headers, right=headers[2:], names=("init",))
    for row in sweep.rows:
        table.add_row(
            Text(row["init"]),
            verdict_text(row["verdict"]),
            "—" if row["trouble_layer"] is None else str(row["trouble_layer"]),
            f"{row['first_std']:.3g}",
            f"{row['last_std']:.3g}",
            f"{row['gradient_ratio']:.3g}",
        )
    lines = [
        f"recommended for {activation}: Var(W) = {scale.forward:.3g}/fan_in (forward), "
        f"{scale.backward:.3g}/fan_in (backward)"
    ]
    if plot is not None:
        lines.append(f"figure: {plot}")
    emit(console, table, *(Text(line) for line in lines))
