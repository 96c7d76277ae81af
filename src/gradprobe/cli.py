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

import importlib.util
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from gradprobe import __version__
from gradprobe.diagnose import (
    DATASETS,
    DiagnoseConfig,
    Diagnosis,
    bundled,
    load_csv,
    parse_layers,
    run_diagnosis,
)
from gradprobe.errors import GradprobeError, InvalidArgumentError
from gradprobe.gradcheck import DEFAULT_THRESHOLDS, check_gradients
from gradprobe.numdiff import METHODS, Derivative, derivative
from gradprobe.propagation import depth_sweep
from gradprobe.report.html import write_depth_plot, write_report
from gradprobe.scale import recommend_scale

__all__ = ["app", "main"]


class UserCodeError(InvalidArgumentError):
    """The user's file for ``gradprobe check`` raised on import or lacks the protocol's names."""


EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="gradprobe",
    help="Make deep networks trainable and correct: diagnose, check gradients, sweep depth.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_state = {"debug": False}

Debug = Annotated[
    bool, typer.Option("--debug", help="Show the full traceback of an error.", show_default=False)
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


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gradprobe {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Debug = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Make deep networks trainable and correct.

    Exit codes: 0 ok, 1 a gradient check failed, 2 usage or input error.
    """
    _state["debug"] = debug


# ---------------------------------------------------------------------------- derivative

# How each method's error shrinks with ε, and its formula, for the table.
_METHOD_NOTES = {
    "forward": ("O(ε)", "(f(x+ε)−f(x))/ε"),
    "backward": ("O(ε)", "(f(x)−f(x−ε))/ε"),
    "central": ("O(ε²)", "(f(x+ε)−f(x−ε))/2ε"),
    "complex": ("O(ε²)", "Im f(x+iε)/ε"),
    "richardson": ("O(ε⁸)", "extrapolated central"),
}


def _derivative_rows(
    text: str, at: float, eps: float | None, methods: list[str], variable: str
) -> tuple[str, float, list[Derivative]]:
    """Parse the formula, differentiate it exactly and with each method."""
    from gradprobe._expression import parse_expression  # sympy is slow to import

    expression = parse_expression(text, variable)
    value = expression(at)
    if not (abs(complex(value)) < float("inf")) or complex(value).imag != 0:
        raise InvalidArgumentError(
            f"the function {text} is {value} at {variable} = {at:g}, expected a finite real "
            "value; pick a point inside its domain"
        )
    exact = expression.exact_derivative(at)
    results = [
        derivative(expression, at, eps=eps, method=method, full_output=True) for method in methods
    ]
    return expression.derivative_text, exact, results


@app.command("derivative")
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
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
            "methods": [
                {
                    "method": r.method,
                    "step": r.step,
                    "value": r.value,
                    "error": abs(r.value - exact),
                    "error_estimate": r.error,
                    "evaluations": r.evaluations,
                }
                for r in results
            ],
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    console = _console()
    console.print(f"f({variable}) = {expression}    f'({variable}) = {slope}")
    console.print(f"exact f'({at:g}) = {exact:.12g}  (sympy)")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("method", "formula", "ε", "estimate", "error", "order"):
        table.add_column(header, justify="right" if header in {"ε", "error"} else "left")
    for r in results:
        order, formula = _METHOD_NOTES[r.method]
        table.add_row(
            r.method,
            formula,
            f"{r.step:.3g}",
            f"{r.value:.12g}",
            f"{abs(r.value - exact):.2e}",
            order,
        )
    console.print(table)
    by_method = {r.method: abs(r.value - exact) for r in results}
    if "forward" in by_method and "central" in by_method and by_method["central"] > 0:
        ratio = by_method["forward"] / by_method["central"]
        console.print(
            f"two-sided (central) is {ratio:.3g}× more accurate than one-sided (forward) here"
        )


# --------------------------------------------------------------------------------- check

_PROTOCOL = (
    "define params, loss(params) and grads(params) in the file, or give FILE.py:NAME "
    "with NAME() returning (loss, params, grads); see examples/two_layer_net.py (or, for "
    "PyTorch, define module and inputs: examples/torch_module.py)"
)


def _import_file(path: Path) -> ModuleType:
    """Import a user's Python file as a fresh module, its folder importable meanwhile."""
    if not path.is_file():
        raise InvalidArgumentError(
            f"{path}: no such file; give the path of a Python file ({_PROTOCOL})"
        )
    spec = importlib.util.spec_from_file_location(f"_gradprobe_user_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise InvalidArgumentError(f"{path}: cannot be imported as Python; expected a .py file")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: BLE001 - user code may raise anything, SystemExit too
        raise UserCodeError(
            f"{path} raised {type(error).__name__} on import: {_first_line(error)}; fix the "
            "file (run it with python to see where) or use --debug for the traceback"
        ) from error
    finally:
        sys.path.remove(folder)
    return module


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"


def _load_problem(target: str) -> tuple[Callable[..., Any], Any, Any] | dict[str, Any]:
    """Return ``(loss, params, grads)`` from ``FILE.py`` or ``FILE.py:NAME``.

    A file that defines a PyTorch ``module`` (and ``inputs``) instead gives its namespace.
    """
    file_part, _, name = target.rpartition(":") if _has_name(target) else (target, "", "")
    path = Path(file_part)
    module = _import_file(path)
    if name:
        factory = getattr(module, name, None)
        if not callable(factory):
            raise UserCodeError(f"{path} defines no function {name!r}; {_PROTOCOL}")
        try:
            produced = factory()
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # noqa: BLE001 - reported as the user's error
            raise UserCodeError(
                f"{name}() in {path} raised {type(error).__name__}: {_first_line(error)}"
            ) from error
        if not isinstance(produced, tuple) or len(produced) != 3:
            raise UserCodeError(
                f"{name}() in {path} returned {type(produced).__name__}, expected a tuple "
                "(loss, params, grads)"
            )
        loss, params, grads = produced
    else:
        if hasattr(module, "module") and not hasattr(module, "loss"):
            return vars(module)
        missing = [key for key in ("params", "loss", "grads") if not hasattr(module, key)]
        if missing:
            raise UserCodeError(f"{path} defines no {', '.join(missing)}; {_PROTOCOL}")
        loss, params, grads = module.loss, module.params, module.grads
    if not callable(loss):
        raise UserCodeError(f"loss in {path} is {type(loss).__name__}, expected a function")
    return loss, params, grads


def _has_name(target: str) -> bool:
    """Tell ``FILE.py:NAME`` from a plain path (which, on Windows, may hold ``C:``)."""
    head, separator, tail = target.rpartition(":")
    return bool(separator) and tail.isidentifier() and not Path(target).exists() and bool(head)


@app.command("check")
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    debug: Debug = False,
) -> None:
    """Check the gradients of your own code; exit 0 when ok, 1 when suspicious or wrong."""
    with _exit_codes(debug):
        problem = _load_problem(target)
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
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        typer.echo(str(report))
    if not report.passed:
        raise typer.Exit(EXIT_FAILED)


# ------------------------------------------------------------------------------ diagnose

_MARKS = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "bad": "[red]✗[/]"}
_TOPICS = (
    ("inputs", "1. Inputs"),
    ("depth", "2. Depth and init"),
    ("gradients", "3. Gradient check"),
    ("result", "4. Result"),
)


class _ProgressBars:
    """``progress(stage, done, total)`` shown as one rich progress bar per stage."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=total)
        self.progress.update(self.tasks[stage], completed=done, total=total)


def _summary(diagnosis: Diagnosis, paths: tuple[Path, Path]) -> None:
    console = _console()
    d = diagnosis
    data = d.dataset
    console.print(
        f"[bold]gradprobe diagnose[/]: {escape(data.name)} ({data.task}, "
        f"{data.X_train.shape[0]} train / {data.X_test.shape[0]} test, "
        f"{data.X_train.shape[1]} features)\nnetwork {'-'.join(map(str, d.layer_sizes))} "
        f"{d.config.activation}, {d.config.optimizer} lr {d.config.lr:g}, {d.config.epochs} epochs"
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
    console.print(f"report: {paths[0]}  data: {paths[1]}  ({d.seconds:.1f} s)")


@app.command("diagnose")
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
        with Progress(
            TextColumn("{task.description:<32}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=_error_console(),
            transient=True,
        ) as bars:
            diagnosis = run_diagnosis(chosen, config, _ProgressBars(bars))
        paths = write_report(diagnosis, out)
    _summary(diagnosis, paths)


# --------------------------------------------------------------------------------- depth


@app.command("depth")
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the sweep as JSON.")] = False,
    debug: Debug = False,
) -> None:
    """Sweep initializations through a deep network to see whether signals vanish or explode."""
    with _exit_codes(debug):
        sweep = depth_sweep(depth, width, activation, inits=init or None, seed=seed)
        scale = recommend_scale(activation)
        if plot is not None:
            write_depth_plot(sweep, plot)
    if as_json:
        typer.echo(json.dumps({**sweep.to_dict(), "recommendation": scale.to_dict()}, indent=2))
        return
    console = _console()
    console.print(f"depth sweep: {depth} layers of {width} units, {activation} (seed {seed})")
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


def main() -> None:
    """Run the command line (the ``gradprobe`` console script)."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
