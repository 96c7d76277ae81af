"""The ``gradprobe`` command line: ``diagnose``, ``check``, ``depth`` and ``derivative``.

Each command reads its options, calls the library and prints; exit codes and error
lines come from :mod:`gradprobe.cli._runtime`. Libraries that are slow to import
(NumPy and the library itself, matplotlib, scikit-learn, sympy, rich's progress bars) are
imported by the command that uses them, so ``gradprobe --help`` and shell completion
answer at once; the choice lists come from :mod:`~gradprobe.cli._options`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gradprobe._version import __version__
from gradprobe.cli._check import check_command
from gradprobe.cli._options import (
    ACTIVATIONS,
    DATASETS,
    DEFAULT_INITS,
    INITIALIZERS,
    METHODS,
    NETWORK_INITS,
    OPTIMIZERS,
    SWEEP_INITS,
    TASKS,
    choice,
    choices,
    completer,
    parse_names,
)
from gradprobe.cli._runtime import (
    Command,
    Debug,
    Group,
    Quiet,
    check_out,
    console,
    error_console,
    exit_codes,
    state,
    writing,
)
from gradprobe.diagnose.config import DiagnoseConfig
from gradprobe.errors import GradprobeError, InvalidArgumentError, LossEvaluationError

if TYPE_CHECKING:
    from gradprobe.numdiff.derivative import Derivative

__all__ = ["app", "main"]

app = typer.Typer(
    name="gradprobe",
    cls=Group,
    help="Make deep networks trainable and correct: diagnose, check gradients, sweep depth.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
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

    Exit codes: 0 ok, 1 a gradient check failed, 2 usage or input error, 130 interrupted.
    """
    state["debug"] = debug


# ---------------------------------------------------------------------------- derivative


def _derivative_rows(
    text: str, at: float, eps: float | None, methods: list[str], variable: str
) -> tuple[str, float, list[tuple[str, Derivative | str]]]:
    """Parse the formula, differentiate it exactly and with each method.

    A method that does not apply to this function (the complex step on ``abs``) gives
    the reason instead of a result; only when every method fails is that an error.
    """
    from gradprobe._validate.numbers import finite_real
    from gradprobe.cli._expression import parse_expression  # sympy is slow to import
    from gradprobe.numdiff.derivative import derivative

    expression = parse_expression(text, variable)
    value = expression(at)
    if not finite_real(value):
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


@app.command("derivative", cls=Command)
def derivative_command(
    expression: Annotated[
        str, typer.Argument(help="A formula in one variable, e.g. 'x**3' or 'tanh(2*x)'.")
    ],
    at: Annotated[float, typer.Option("--at", help="The point where f' is wanted.")] = 1.0,
    eps: Annotated[
        float | None,
        typer.Option("--eps", help="The step ε (default: each method's own best step)."),
    ] = None,
    method: Annotated[
        list[str] | None,
        choice("--method", "Methods to compare (default: all), separated by commas", METHODS, "-m"),
    ] = None,
    variable: Annotated[
        str, typer.Option("--var", help="The name of the formula's variable.")
    ] = "x",
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
    with exit_codes(debug):
        methods = parse_names(method, "--method", METHODS) or list(METHODS)
        if eps is not None and not eps > 0:
            raise InvalidArgumentError(f"--eps: got {eps}, expected a positive step")
        slope, exact, results = _derivative_rows(expression, at, eps, methods, variable)
    if as_json:
        from gradprobe.report.jsonout import derivative_data, to_json

        payload = {
            "expression": expression,
            "at": at,
            "derivative": slope,
            "exact": exact,
            "methods": [derivative_data(method, result, exact) for method, result in results],
        }
        typer.echo(to_json(payload), nl=False)
        return
    from gradprobe.report.terminal import print_derivatives

    print_derivatives(console(), expression, variable, slope, at, exact, results)


# --------------------------------------------------------------------------------- check

app.command("check", cls=Command)(check_command)


# ------------------------------------------------------------------------------ diagnose


@app.command("diagnose", cls=Command)
def diagnose_command(
    dataset: Annotated[
        str,
        choice("--dataset", "A bundled data set", DATASETS),
    ] = "breast_cancer",
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Your own CSV file: a header row, numeric features; the delimiter "
            "(comma, semicolon, tab) is detected.",
        ),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="The CSV column to predict.")
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            help=f"{' or '.join(TASKS)} (default: inferred from the target column; "
            "the summary says how).",
            autocompletion=completer(TASKS),
        ),
    ] = None,
    layers: Annotated[
        str, typer.Option("--layers", help="Hidden-layer widths, separated by commas.")
    ] = ",".join(map(str, DiagnoseConfig.layers)),
    activation: Annotated[
        str,
        choice("--activation", "The hidden layers' activation", ACTIVATIONS),
    ] = DiagnoseConfig.activation,
    init: Annotated[
        str,
        typer.Option(
            "--init",
            help="The weights' initialization: auto (He for ReLU-like activations, Xavier "
            f"otherwise) or one of {choices(INITIALIZERS)}.",
            autocompletion=completer(NETWORK_INITS),
        ),
    ] = DiagnoseConfig.init,
    l2: Annotated[
        float, typer.Option("--l2", help="L2 regularization strength λ (0 for none).")
    ] = DiagnoseConfig.l2,
    dropout: Annotated[
        float,
        typer.Option(
            "--dropout",
            help="Probability of dropping a hidden unit while training, in [0, 1) (checks "
            "switch it off).",
        ),
    ] = DiagnoseConfig.dropout,
    epochs: Annotated[
        int, typer.Option("--epochs", help="Passes over the training split, each run.")
    ] = DiagnoseConfig.epochs,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.")] = DiagnoseConfig.lr,
    optimizer: Annotated[
        str,
        choice("--optimizer", "The update rule", OPTIMIZERS),
    ] = DiagnoseConfig.optimizer,
    seed: Annotated[
        int,
        typer.Option("--seed", help="Seeds the split, the initial weights and the sampled checks."),
    ] = DiagnoseConfig.seed,
    out: Annotated[Path, typer.Option("--out", help="Folder for report.html and report.json.")] = (
        Path("gradprobe-report")
    ),
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Walk the course notes' steps on a data set: inputs, depth and init, gradient check, result.

    Writes OUT/report.html (self-contained, opens offline) and OUT/report.json.
    """
    from gradprobe.diagnose.pipeline import parse_layers, run_diagnosis
    from gradprobe.diagnose.tabular import bundled, load_csv
    from gradprobe.report.page import write_page
    from gradprobe.report.terminal import print_diagnosis, progress_bars

    started = time.perf_counter()
    with exit_codes(debug):
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
        check_out(out)
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
        with progress_bars(error_console(), enabled=not quiet) as bars:
            diagnosis = run_diagnosis(chosen, config, bars)
        with writing("--out", "a writable folder"):
            paths = write_page(diagnosis, out)
    print_diagnosis(console(), diagnosis, paths, time.perf_counter() - started)


# --------------------------------------------------------------------------------- depth


@app.command("depth", cls=Command)
def depth_command(
    activation: Annotated[
        str,
        choice("--activation", "The hidden activation", ACTIVATIONS),
    ] = "relu",
    depth: Annotated[int, typer.Option("--depth", help="Number of layers.")] = 50,
    width: Annotated[int, typer.Option("--width", help="Units per layer.")] = 256,
    init: Annotated[
        list[str] | None,
        typer.Option(
            "--init",
            help="Initializations to compare, separated by commas (default: "
            f"{','.join(DEFAULT_INITS)}); also auto and {choices(INITIALIZERS)}.",
            autocompletion=completer(SWEEP_INITS),
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seeds the weights and the probe inputs.")
    ] = 0,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Save the figure to this PNG file.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the sweep as JSON.", metavar="")
    ] = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Sweep initializations through a deep network to see whether signals vanish or explode."""
    from gradprobe.nn.scale import recommend_scale
    from gradprobe.nn.sweep import depth_sweep
    from gradprobe.report.terminal import progress_bars

    with exit_codes(debug):
        inits = parse_names(init, "--init", SWEEP_INITS)
        with progress_bars(error_console(), enabled=not quiet) as bars:
            progress = bars.stage("initializations measured")
            sweep = depth_sweep(depth, width, activation, inits=inits, seed=seed, progress=progress)
        scale = recommend_scale(activation)
        if plot is not None:
            from gradprobe.report.page import write_depth_plot

            with writing("--plot", "a writable path for a PNG file"):
                write_depth_plot(sweep, plot)
    if as_json:
        from gradprobe.report.jsonout import to_json

        typer.echo(to_json({**sweep.to_dict(), "recommendation": scale.to_dict()}), nl=False)
        return
    from gradprobe.report.terminal import print_depth_sweep

    print_depth_sweep(console(), sweep, scale, activation, seed, plot)


def main() -> None:
    """Run the command line (the ``gradprobe`` console script)."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
