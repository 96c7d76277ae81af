"""``gradprobe check FILE.py``: the gradients of the user's own code, NumPy or PyTorch.

A long check shows a progress bar on stderr (count, rate, time left; off when stderr is
not a terminal or with ``--quiet``); Ctrl-C prints the values checked so far as a
partial report and exits 130.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gradprobe.cli._options import DEFAULT_THRESHOLDS, METHODS, MODES, choice
from gradprobe.cli._runtime import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    Debug,
    Quiet,
    console,
    error_console,
    exit_codes,
)
from gradprobe.errors import InvalidArgumentError

__all__ = ["check_command"]


def _pytorch_name(flag: str, role: str) -> Any:
    return typer.Option(flag, help=f"PyTorch: the name of the {role} in the file.")


def check_command(
    target: Annotated[
        str,
        typer.Argument(
            metavar="FILE.py[:NAME]",
            help="A file defining params, loss(params), grads(params); or NAME() returning "
            "(loss, params, grads); or a PyTorch file with a model, its inputs x and "
            "optionally a criterion and targets y (needs the torch extra: "
            "pip install 'gradprobe\\[torch]').",
        ),
    ],
    eps: Annotated[
        float | None, typer.Option("--eps", help="The step ε (default: chosen per value).")
    ] = None,
    method: Annotated[str, choice("--method", "The difference formula", METHODS, "-m")] = (
        "central"
    ),
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
        str,
        choice("--mode", "auto, full (every value) or localize (group tests), one of", MODES),
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
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Check the gradients of your own code; exit 0 when ok, 1 when not, 130 on Ctrl-C.

    A PyTorch file is recognised by its nn.Module instance (model, net, module, or the only
    one); its inputs are x or inputs, its criterion criterion or loss_fn, its targets y or
    targets (--module, --inputs, --loss, --targets name others). The first line says which
    names were taken. Ctrl-C during a long check prints what was checked so far, marked
    partial.
    """
    from gradprobe.check.checker import check_gradients
    from gradprobe.cli.usercode import load_problem
    from gradprobe.report.jsonout import to_json
    from gradprobe.report.terminal import print_check, progress_bars

    with exit_codes(debug):
        names: dict[str, Any] = {
            "module": module,
            "loss": loss,
            "inputs": inputs,
            "targets": targets,
        }
        problem = load_problem(target)
        options: dict[str, Any] = {"eps": eps, "method": method, "thresholds": thresholds}
        options.update(sample=sample, seed=seed, mode=mode, workers=workers)
        if isinstance(problem, dict):
            from gradprobe.torch import check_namespace

            with progress_bars(error_console(), enabled=not quiet) as bars:
                progress = bars.stage("values differentiated")
                report = check_namespace(
                    problem, **names, include=include, progress=progress, **options
                )
        else:
            given = [f"--{key}" for key, value in {**names, "include": include}.items() if value]
            if given:
                raise InvalidArgumentError(
                    f"{given[0]}: applies to a PyTorch file, got a file with params, loss and "
                    "grads; leave it out"
                )
            loss_fn, params, grads = problem
            with progress_bars(error_console(), enabled=not quiet) as bars:
                progress = bars.stage("values differentiated")
                report = check_gradients(loss_fn, params, grads, progress=progress, **options)
    if as_json:
        typer.echo(to_json(report.to_dict()), nl=False)
    else:
        if isinstance(problem, dict) and report.notes and report.notes[0].startswith("took "):
            typer.echo(f"PyTorch file: {report.notes[0]}")
        print_check(console(), report)
    if report.partial:
        raise typer.Exit(EXIT_INTERRUPTED)
    if not report.passed:
        raise typer.Exit(EXIT_FAILED)
