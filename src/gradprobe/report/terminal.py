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

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from gradprobe._text import MARKS, level_of, plural

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

# The fewest characters per line a folded name keeps.
_NAME_WIDTH = 10
_STYLES = {"ok": "green", "warn": "yellow", "bad": "red"}
_TOPICS = (
    ("inputs", "1. Inputs"),
    ("depth", "2. Depth and init"),
    ("gradients", "3. Gradient check"),
    ("result", "4. Result"),
)


def emit(console: Console, *renderables: RenderableType) -> None:
    """Print renderables at the console's width with the spaces that end lines removed.

    Rich pads table cells to their column's width; copied or piped output should
    not carry that padding, and a test can compare lines exactly.
    """
    for renderable in renderables:
        for line in console.render_lines(renderable, console.options, pad=False):
            text = Text()
            for segment in line:
                if not segment.control:
                    text.append(segment.text, segment.style)
            text.rstrip()
            console.print(text, soft_wrap=True)


def _mark(level: str) -> Text:
    return Text(MARKS[level], style=_STYLES[level])


def _verdict(verdict: str) -> Text:
    return Text(verdict, style=_STYLES[level_of(verdict)])


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) or "scalar"


def _table(*headers: str, right: Sequence[str] = (), names: Sequence[str] = ()) -> Table:
    """Return a table whose ``names`` columns fold onto more lines when space runs out.

    Every other column keeps its width (a number is never broken); a name is folded,
    never cut, and keeps at least a few characters per line.
    """
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for header in headers:
        table.add_column(
            header,
            justify="right" if header in right else "left",
            overflow="fold",
            no_wrap=header not in names,
        )
    return table


def _table_or_lines(console: Console, table: Table, rows: list[list[str]]) -> list[RenderableType]:
    """Return ``table``, or each row as wrapped lines when the console is too narrow for it.

    A narrow terminal would make rich crop columns; a list of "header value" lines
    loses nothing.
    """
    headers = [str(column.header) for column in table.columns]
    for k, column in enumerate(table.columns):
        if not column.no_wrap:  # a folded name keeps a few characters per line
            longest = max(len(headers[k]), *(len(row[k]) for row in rows))
            column.min_width = min(_NAME_WIDTH, longest)
    # The width the table needs: whole cells in no-wrap columns, a few characters of
    # the folding ones, and a space either side of every inner column edge.
    needed = 2 * (len(headers) - 1) + sum(
        (column.min_width or 0)
        if not column.no_wrap
        else max(len(header), *(len(row[k]) for row in rows))
        for k, (column, header) in enumerate(zip(table.columns, headers, strict=True))
    )
    if needed <= console.width:
        return [table]
    lines: list[RenderableType] = []
    for row in rows:
        lines.append(Text(row[0], style="bold", overflow="fold"))
        details = ", ".join(f"{h} {v}" for h, v in zip(headers[1:], row[1:], strict=True) if v)
        lines.append(Text(f"  {details}", overflow="fold"))
    return lines


def print_check(console: Console, report: GradCheckReport) -> None:
    """Print a gradient check: verdict and summary, one row per parameter, worst entries.

    Every parameter and coordinate name is shown whole, folded onto a second line when
    the terminal is too narrow; the diagnosis and notes wrap at the console's width.
    """
    lines = report.summary(notes=False)
    level = level_of(report.verdict)
    headline = Text.assemble(_mark(level), " gradient check: ", (lines[0], "bold"))
    rows = _table(
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
                _shape(row.shape),
                f"{row.checked:,}",
                f"{row.difference:.2e}",
                row.verdict,
                f"{row.largest_error:.2e}",
                at,
            ]
        )
        rows.add_row(*(Text(c) for c in cells[-1][:4]), _verdict(row.verdict), *cells[-1][5:])
    emit(
        console,
        headline,
        *(Text(line) for line in lines[1:]),
        Text(),
        *_table_or_lines(console, rows, cells),
    )
    if not report.passed and report.checked:
        worst = _table(
            "worst entries",
            "analytic",
            "numerical",
            "relative error",
            "",
            right=("analytic", "numerical", "relative error"),
            names=("worst entries",),
        )
        entries = [
            [
                entry.name,
                f"{entry.analytic:.6g}",
                f"{entry.numerical:.6g}",
                f"{entry.relative_error:.1e}",
                "kink" if entry.kink else "",
            ]
            for entry in report.worst(5)
        ]
        for entry_cells in entries:
            worst.add_row(Text(entry_cells[0]), *entry_cells[1:])
        emit(console, Text(), *_table_or_lines(console, worst, entries))
    diagnosed = [row for row in report.parameters if row.diagnosis]
    if diagnosed or report.notes:
        emit(console, Text())
    for row in diagnosed:
        emit(console, Text.assemble((row.name, "bold"), f": {row.diagnosis}"))
    for note in report.notes:
        emit(console, Text(f"note: {note}"))


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
    table = _table(
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
            grid.add_row(label, _mark(finding["level"]), Text(finding["text"]))
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
    table = _table(*headers, right=headers[2:], names=("init",))
    for row in sweep.rows:
        table.add_row(
            Text(row["init"]),
            _verdict(row["verdict"]),
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
