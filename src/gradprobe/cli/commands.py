"""The ``gradprobe`` command line: ``diagnose``, ``check``, ``depth`` and ``derivative``.

Each command reads its options, calls the library and prints; exit codes and error
lines come from :mod:`gradprobe.cli._runtime`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from gradprobe._version import __version__
from gradprobe.check.checker import check_gradients
from gradprobe.check.comparison import DEFAULT_THRESHOLDS
from gradprobe.cli._runtime import (
    EXIT_FAILED,
    Command,
    Debug,
    Group,
    check_out,
    console,
    error_console,
    exit_codes,
    state,
    writing,
)
from gradprobe.cli.usercode import load_problem
from gradprobe.diagnose.pipeline import DiagnoseConfig, parse_layers, run_diagnosis
from gradprobe.diagnose.tabular import DATASETS, bundled, load_csv
from gradprobe.errors import GradprobeError, InvalidArgumentError, LossEvaluationError
from gradprobe.nn.scale import recommend_scale
from gradprobe.nn.sweep import depth_sweep
from gradprobe.numdiff.derivative import METHODS, Derivative, derivative
from gradprobe.report.jsonout import to_json
from gradprobe.report.page import write_depth_plot, write_page
from gradprobe.report.terminal import (
    ProgressBars,
    print_depth_sweep,
    print_derivatives,
    print_diagnosis,
)

__all__ = ["app", "main"]

app = typer.Typer(
    name="gradprobe",
    cls=Group,
    help="Make deep networks trainable and correct: diagnose, check gradients, sweep depth.",
    no_args_is_help=True,
    add_completion=False,
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

    Exit codes: 0 ok, 1 a gradient check failed, 2 usage or input error.
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
    from gradprobe.cli._expression import parse_expression  # sympy is slow to import

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


@app.command("derivative", cls=Command)
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
    with exit_codes(debug):
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
    print_derivatives(console(), expression, variable, slope, at, exact, results)


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


def _pytorch_name(flag: str, role: str) -> Any:
    return typer.Option(flag, help=f"PyTorch: the name of the {role} in the file.")


@app.command("check", cls=Command)
def check_command(
    target: Annotated[
        str,
        typer.Argument(
            metavar="FILE.py[:NAME]",
            help="A file defining params, loss(params), grads(params); or NAME() returning "
            "(loss, params, grads); or a PyTorch file with a model, its inputs x and "
            "optionally a criterion and targets y.",
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
    mode: Annotated[
        str, typer.Option("--mode", help="auto, full (every value) or localize (group tests).")
    ] = "auto",
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Processes for a NumPy loss (it must be picklable); threads for a PyTorch model.",
        ),
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include", help="PyTorch: check only parameters matching this glob, e.g. 'fc.*'."
        ),
    ] = None,
    module: Annotated[str | None, _pytorch_name("--module", "model")] = None,
    loss: Annotated[str | None, _pytorch_name("--loss", "criterion")] = None,
    inputs: Annotated[str | None, _pytorch_name("--inputs", "input tensor(s)")] = None,
    targets: Annotated[str | None, _pytorch_name("--targets", "targets")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON.", metavar="")
    ] = False,
    debug: Debug = False,
) -> None:
    """Check the gradients of your own code; exit 0 when ok, 1 when suspicious or wrong.

    A PyTorch file is recognised by its nn.Module instance (model, net, module, or the only
    one); its inputs are x or inputs, its criterion criterion or loss_fn, its targets y or
    targets (--module, --inputs, --loss, --targets name others). The first line says which
    names were taken.
    """
    with exit_codes(debug):
        names = {"module": module, "loss": loss, "inputs": inputs, "targets": targets}
        problem = load_problem(target)
        if isinstance(problem, dict):
            from gradprobe.torch import check_namespace

            report = check_namespace(
                problem,
                module=module,
                loss=loss,
                inputs=inputs,
                targets=targets,
                include=include,
                method=method,
                eps=eps,
                thresholds=thresholds,
                sample=sample,
                seed=seed,
                mode=mode,
                workers=workers,
            )
        else:
            given = [f"--{key}" for key, value in {**names, "include": include}.items() if value]
            if given:
                raise InvalidArgumentError(
                    f"{given[0]}: applies to a PyTorch file, got a file with params, loss and "
                    "grads; leave it out"
                )
            loss_fn, params, grads = problem
            report = check_gradients(
                loss_fn,
                params,
                grads,
                eps=eps,
                method=method,
                thresholds=thresholds,
                sample=sample,
                seed=seed,
                mode=mode,
                workers=workers,
            )
    if as_json:
        typer.echo(to_json(report.to_dict()), nl=False)
    else:
        if isinstance(problem, dict) and report.notes and report.notes[0].startswith("took "):
            typer.echo(f"PyTorch file: {report.notes[0]}")
        typer.echo(str(report))
    if not report.passed:
        raise typer.Exit(EXIT_FAILED)


# ------------------------------------------------------------------------------ diagnose


@app.command("diagnose", cls=Command)
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
    """Walk the course notes' steps on a data set: inputs, depth and init, gradient check, result.

    Writes OUT/report.html (self-contained, opens offline) and OUT/report.json.
    """
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
        stderr = error_console()
        # Off when stderr is a file or a pipe: there the bars would only leave a blank line.
        with Progress(
            TextColumn("{task.description:<32}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
            disable=not stderr.is_terminal,
        ) as bars:
            diagnosis = run_diagnosis(chosen, config, ProgressBars(bars))
        with writing("--out", "a writable folder"):
            paths = write_page(diagnosis, out)
    print_diagnosis(console(), diagnosis, paths, time.perf_counter() - started)


# --------------------------------------------------------------------------------- depth


@app.command("depth", cls=Command)
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
    with exit_codes(debug):
        sweep = depth_sweep(depth, width, activation, inits=init or None, seed=seed)
        scale = recommend_scale(activation)
        if plot is not None:
            with writing("--plot", "a writable path for a PNG file"):
                write_depth_plot(sweep, plot)
    if as_json:
        typer.echo(to_json({**sweep.to_dict(), "recommendation": scale.to_dict()}), nl=False)
        return
    print_depth_sweep(console(), sweep, scale, activation, seed, plot)


def main() -> None:
    """Run the command line (the ``gradprobe`` console script)."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
