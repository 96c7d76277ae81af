"""The ``gradprobe`` command line: ``diagnose``, ``check``, ``depth`` and ``derivative``.

This is the one place where an error becomes an exit code:

* 0: the command ran and, for ``check``, the gradients are "ok";
* 1: ``check`` found gradients "suspicious" or "wrong";
* 2: a usage or input error (a missing file, a bad CSV, a formula outside the
  whitelist, user code that raises on import...): one line on stderr that says what
  is wrong and what to do; ``--debug`` shows the traceback instead;
* 130: interrupted with Ctrl-C (reports are written atomically, so none is left
  half-written).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from typer.core import TyperCommand, TyperGroup

from gradprobe import __version__
from gradprobe.comparison import DEFAULT_THRESHOLDS
from gradprobe.depth import depth_sweep
from gradprobe.diagnose import DiagnoseConfig, parse_layers, run_diagnosis
from gradprobe.errors import GradprobeError, InvalidArgumentError, LossEvaluationError
from gradprobe.gradcheck import check_gradients
from gradprobe.numdiff import METHODS, Derivative, derivative
from gradprobe.report.html import write_depth_plot, write_report
from gradprobe.report.jsonout import to_json
from gradprobe.report.terminal import (
    ProgressBars,
    print_depth_sweep,
    print_derivatives,
    print_diagnosis,
)
from gradprobe.scale import recommend_scale
from gradprobe.tabular import DATASETS, bundled, load_csv
from gradprobe.usercode import load_problem

__all__ = ["app", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _without_type(option: Any) -> Any:
    # typer labels every option with its type; a flag takes no value, so "<bool>" misleads.
    if option is not None:
        option.metavar = ""
    return option


class _Group(TyperGroup):
    """The ``gradprobe`` group, whose ``--help`` shows no ``<bool>``."""

    def get_help_option(self, ctx: Any) -> Any:
        """Return the ``--help`` option without a type label."""
        return _without_type(super().get_help_option(ctx))


class _Command(TyperCommand):
    """A ``gradprobe`` command, whose ``--help`` shows no ``<bool>``."""

    def get_help_option(self, ctx: Any) -> Any:
        """Return the ``--help`` option without a type label."""
        return _without_type(super().get_help_option(ctx))


app = typer.Typer(
    name="gradprobe",
    cls=_Group,
    help="Make deep networks trainable and correct: diagnose, check gradients, sweep depth.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_state = {"debug": False}

# metavar="" keeps typer from showing "<bool>" after a flag that takes no value.
Debug = Annotated[
    bool,
    typer.Option(
        "--debug", help="Show the full traceback of an error.", show_default=False, metavar=""
    ),
]


def _console() -> Console:
    # Built per call so tests that swap sys.stdout (typer's runner) are honoured; 100
    # columns when piped, the width gradprobe's text reports are laid out for.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 100)


def _error_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def _exit_codes(debug: bool) -> Iterator[None]:
    """Turn gradprobe's errors into one line on stderr and exit code 2."""
    try:
        yield
    except GradprobeError as error:
        if debug or _state["debug"]:
            traceback.print_exc()
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        _error_console().print(f"gradprobe: error: {message}", markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        _error_console().print("gradprobe: interrupted; no report was written", markup=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None


@contextmanager
def _writing(option: str, expected: str) -> Iterator[None]:
    """Turn a failure to write a file into an error that names the option and the path."""
    try:
        yield
    except OSError as error:
        where = error.filename if error.filename is not None else "the file"
        raise InvalidArgumentError(
            f"{option}: cannot write {where} ({error.strerror or error}); expected {expected}"
        ) from error


def _check_out(folder: Path) -> None:
    """Fail before the run, not after a minute of it, when ``--out`` cannot hold the report."""
    for path in (folder, *folder.parents):
        if not path.exists():
            continue
        if not path.is_dir():
            reason = f"{path} is a file, not a folder"
        elif not os.access(path, os.W_OK | os.X_OK):
            reason = f"{path} is not writable"
        else:
            return
        raise InvalidArgumentError(
            f"--out: cannot write {folder / 'report.html'} ({reason}); expected a writable folder"
        )


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gradprobe {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Debug = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version.", metavar=""
        ),
    ] = False,
) -> None:
    """Make deep networks trainable and correct.

    Exit codes: 0 ok, 1 a gradient check failed, 2 usage or input error.
    """
    _state["debug"] = debug


# ---------------------------------------------------------------------------- derivative


def _derivative_rows(
    text: str, at: float, eps: float | None, methods: list[str], variable: str
) -> tuple[str, float, list[tuple[str, Derivative | str]]]:
    """Parse the formula, differentiate it exactly and with each method.

    A method that does not apply to this function (the complex step on ``abs``) gives
    the reason instead of a result; only when every method fails is that an error.
    """
    from gradprobe._expression import parse_expression  # sympy is slow to import

    expression = parse_expression(text, variable)
    value = expression(at)
    if not (abs(complex(value)) < float("inf")) or complex(value).imag != 0:
        raise InvalidArgumentError(
            f"the function {text} is {value} at {variable} = {at:g}, expected a finite real "
            "value; pick a point inside its domain"
        )
    exact = expression.exact_derivative(at)
    results: list[tuple[str, Derivative | str]] = []
    failures: list[GradprobeError] = []
    for method in methods:
        try:
            results.append(
                (method, derivative(expression, at, eps=eps, method=method, full_output=True))
            )
        except GradprobeError as error:
            failures.append(error)
            results.append((method, _why_not(method, error)))
    if len(failures) == len(methods):
        method, reason = results[0]
        raise InvalidArgumentError(
            f"--method: no method could differentiate {text} at {variable} = {at:g}; "
            f"{method}: {reason}"
        ) from failures[0]
    return expression.derivative_text, exact, results


def _why_not(method: str, error: GradprobeError) -> str:
    """Say in a few words why ``method`` cannot differentiate this function."""
    if method == "complex" and isinstance(error, LossEvaluationError):
        return (
            "not analytic: the complex step needs a function that keeps the imaginary part "
            "of f(x + iε) (abs, comparisons and float() drop it); use central"
        )
    return str(error).splitlines()[0] if str(error) else type(error).__name__


@app.command("derivative", cls=_Command)
def derivative_command(
    expression: Annotated[
        str, typer.Argument(help="A formula in one variable, e.g. 'x**3' or 'tanh(2*x)'.")
    ],
    at: Annotated[float, typer.Option("--at", help="The point x.")] = 1.0,
    eps: Annotated[
        float | None, typer.Option("--eps", help="The step ε (default: each method's own).")
    ] = None,
    method: Annotated[
        list[str] | None,
        typer.Option("--method", "-m", help=f"Methods to compare: {', '.join(METHODS)}."),
    ] = None,
    variable: Annotated[str, typer.Option("--var", help="The variable's name.")] = "x",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as JSON.", metavar="")
    ] = False,
    debug: Debug = False,
) -> None:
    """Compare one-sided and two-sided differences (and more) with the exact derivative.

    The formula is checked against a whitelist (numbers, the variable, + - * / **,
    pi, e and sin cos tan asin acos atan sinh cosh tanh exp log sqrt abs sigmoid);
    the exact derivative comes from sympy.
    """
    with _exit_codes(debug):
        methods = method or list(METHODS)
        for name in methods:
            if name not in METHODS:
                raise InvalidArgumentError(
                    f"--method: got {name!r}, expected one of {', '.join(METHODS)}"
                )
        if eps is not None and not eps > 0:
            raise InvalidArgumentError(f"--eps: got {eps}, expected a positive step")
        slope, exact, results = _derivative_rows(expression, at, eps, methods, variable)
    if as_json:
        payload = {
            "expression": expression,
            "at": at,
            "derivative": slope,
            "exact": exact,
            "methods": [_method_data(method, result, exact) for method, result in results],
        }
        typer.echo(to_json(payload), nl=False)
        return
    print_derivatives(_console(), expression, variable, slope, at, exact, results)


def _method_data(method: str, result: Derivative | str, exact: float) -> dict[str, object]:
    if isinstance(result, str):
        return {"method": method, "value": None, "error": None, "not_available": result}
    return {
        "method": method,
        "step": result.step,
        "value": result.value,
        "error": abs(result.value - exact),
        "error_estimate": result.error,
        "evaluations": result.evaluations,
    }


# --------------------------------------------------------------------------------- check


@app.command("check", cls=_Command)
def check_command(
    target: Annotated[
        str,
        typer.Argument(
            metavar="FILE.py[:NAME]",
            help="A file defining params, loss(params), grads(params); or NAME() returning "
            "(loss, params, grads).",
        ),
    ],
    eps: Annotated[
        float | None, typer.Option("--eps", help="The step ε (default: chosen per value).")
    ] = None,
    method: Annotated[
        str, typer.Option("--method", "-m", help=f"One of {', '.join(METHODS)}.")
    ] = "central",
    sample: Annotated[
        int | None,
        typer.Option("--sample", help="Check this many random values of each parameter."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seeds the sampled values.")] = 0,
    thresholds: Annotated[
        tuple[float, float],
        typer.Option(
            "--thresholds",
            help="OK and WRONG bounds on the relative difference.",
            show_default=True,
        ),
    ] = DEFAULT_THRESHOLDS,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON.", metavar="")
    ] = False,
    debug: Debug = False,
) -> None:
    """Check the gradients of your own code; exit 0 when ok, 1 when suspicious or wrong."""
    with _exit_codes(debug):
        problem = load_problem(target)
        if isinstance(problem, dict):
            from gradprobe.torch import check_namespace

            options = {"eps": eps, "thresholds": thresholds, "sample": sample, "seed": seed}
            report = check_namespace(problem, method=method, **options)
        else:
            loss, params, grads = problem
            report = check_gradients(
                loss,
                params,
                grads,
                eps=eps,
                method=method,
                thresholds=thresholds,
                sample=sample,
                seed=seed,
            )
    if as_json:
        typer.echo(to_json(report.to_dict()), nl=False)
    else:
        typer.echo(str(report))
    if not report.passed:
        raise typer.Exit(EXIT_FAILED)


# ------------------------------------------------------------------------------ diagnose


@app.command("diagnose", cls=_Command)
def diagnose_command(
    dataset: Annotated[
        str, typer.Option("--dataset", help="A bundled data set: " + ", ".join(DATASETS) + ".")
    ] = "breast_cancer",
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Your own CSV file (header row, numeric features)."),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="The CSV column to predict.")
    ] = None,
    task: Annotated[
        str | None,
        typer.Option("--task", help="classification or regression (default: inferred)."),
    ] = None,
    layers: Annotated[str, typer.Option("--layers", help="Hidden-layer widths.")] = ",".join(
        map(str, DiagnoseConfig.layers)
    ),
    activation: Annotated[str, typer.Option("--activation")] = DiagnoseConfig.activation,
    init: Annotated[
        str, typer.Option("--init", help="auto, he, xavier, ...")
    ] = DiagnoseConfig.init,
    l2: Annotated[float, typer.Option("--l2", help="L2 strength λ.")] = DiagnoseConfig.l2,
    dropout: Annotated[float, typer.Option("--dropout")] = DiagnoseConfig.dropout,
    epochs: Annotated[int, typer.Option("--epochs")] = DiagnoseConfig.epochs,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.")] = DiagnoseConfig.lr,
    optimizer: Annotated[str, typer.Option("--optimizer", help="gd, momentum or adam.")] = (
        DiagnoseConfig.optimizer
    ),
    seed: Annotated[int, typer.Option("--seed")] = DiagnoseConfig.seed,
    out: Annotated[Path, typer.Option("--out", help="Folder for report.html and report.json.")] = (
        Path("gradprobe-report")
    ),
    debug: Debug = False,
) -> None:
    """Walk the seed on a data set: inputs, depth and initialization, gradient check, result.

    Writes OUT/report.html (self-contained, opens offline) and OUT/report.json.
    """
    started = time.perf_counter()
    with _exit_codes(debug):
        config = DiagnoseConfig(
            layers=parse_layers(layers),
            activation=activation,
            init=init,
            l2=l2,
            dropout=dropout,
            epochs=epochs,
            lr=lr,
            optimizer=optimizer,
            seed=seed,
        )
        _check_out(out)
        if data is not None:
            if target is None:
                raise InvalidArgumentError(
                    "--data needs --target: name the CSV column to predict, e.g. --target label"
                )
            chosen = load_csv(data, target, task=task, seed=seed)
        elif target is not None:
            raise InvalidArgumentError("--target needs --data: give the CSV file with --data")
        else:
            chosen = bundled(dataset, seed=seed, task=task)
        console = _error_console()
        # Off when stderr is a file or a pipe: there the bars would only leave a blank line.
        with Progress(
            TextColumn("{task.description:<32}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        ) as bars:
            diagnosis = run_diagnosis(chosen, config, ProgressBars(bars))
        with _writing("--out", "a writable folder"):
            paths = write_report(diagnosis, out)
    print_diagnosis(_console(), diagnosis, paths, time.perf_counter() - started)


# --------------------------------------------------------------------------------- depth


@app.command("depth", cls=_Command)
def depth_command(
    activation: Annotated[
        str, typer.Option("--activation", help="The hidden activation.")
    ] = "relu",
    depth: Annotated[int, typer.Option("--depth", help="Number of layers.")] = 50,
    width: Annotated[int, typer.Option("--width", help="Units per layer.")] = 256,
    init: Annotated[
        list[str] | None,
        typer.Option(
            "--init", help="Initializations to compare (default: zeros, small, large, xavier, he)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Save the figure to this PNG.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the sweep as JSON.", metavar="")
    ] = False,
    debug: Debug = False,
) -> None:
    """Sweep initializations through a deep network to see whether signals vanish or explode."""
    with _exit_codes(debug):
        sweep = depth_sweep(depth, width, activation, inits=init or None, seed=seed)
        scale = recommend_scale(activation)
        if plot is not None:
            with _writing("--plot", "a writable path for a PNG file"):
                write_depth_plot(sweep, plot)
    if as_json:
        typer.echo(to_json({**sweep.to_dict(), "recommendation": scale.to_dict()}), nl=False)
        return
    print_depth_sweep(_console(), sweep, scale, activation, seed, plot)


def main() -> None:
    """Run the command line (the ``gradprobe`` console script)."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
