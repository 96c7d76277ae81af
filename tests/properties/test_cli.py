"""Properties of the command line: an exit code that tells the truth, one line for any error.

Through typer's runner, in this process: exit 0 or 1 only after a command did its
work (``check``: 0 only for a passing report), otherwise exit 2 with exactly one line
``gradprobe: error: ...`` on stderr, and never a traceback, whatever the options,
the formula or the user's file do.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import PROPERTY
from typer.testing import CliRunner

from gradprobe.cli.commands import app

ODD_TEXT = ["1e-17", "1e308", "-1", "0", "nan", "inf", "abc", "", "9" * 400, "0x10", "1_0", "True"]

FUNCTIONS = ["sin", "cos", "tanh", "exp", "log", "sqrt", "abs", "sigmoid", "asin", "sinh"]


def formulas() -> Any:
    """Formulas of the whitelist nested a few deep, and some that are not formulas at all."""
    leaves = st.sampled_from(["x", "2", "0.5", "pi", "e", "1e308", "0"])

    def extend(inner: Any) -> Any:
        return st.one_of(
            st.builds(lambda f, a: f"{f}({a})", st.sampled_from(FUNCTIONS), inner),
            st.builds(lambda a, op, b: f"({a}){op}({b})", inner, st.sampled_from("+-*/^"), inner),
            st.builds(lambda a, n: f"({a})**{n}", inner, st.sampled_from(["2", "1000", "-1"])),
        )

    odd = st.sampled_from(["__import__('os')", "x.real", "lambda: 1", "x[0]", "", "((", "9**9**9"])
    return st.recursive(leaves, extend, max_leaves=12) | odd


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": "100", "NO_COLOR": "1"}).invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _holds_the_contract(code: int, stdout: str, stderr: str, allowed: set[int]) -> None:
    assert "Traceback" not in stdout + stderr
    assert code in allowed | {2}, (code, stdout, stderr)
    if code == 2:
        lines = stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("gradprobe: error: "), stderr


@PROPERTY
@given(formula=formulas(), at=st.sampled_from(["1", "0.5", "-3", *ODD_TEXT]))
def test_derivative_answers_any_formula_with_a_result_or_one_line(formula: str, at: str) -> None:
    _holds_the_contract(*_run("derivative", formula, "--at", at), allowed={0})


@PROPERTY
@given(eps=st.sampled_from(ODD_TEXT), method=st.sampled_from(["central", "complex", "bogus"]))
def test_derivative_steps_and_methods(eps: str, method: str) -> None:
    _holds_the_contract(*_run("derivative", "x**3", "--eps", eps, "-m", method), allowed={0})


@PROPERTY
@given(
    option=st.sampled_from(["--depth", "--width", "--seed", "--activation", "--init", "--bogus"]),
    value=st.sampled_from([*ODD_TEXT, "10000000", "he", "zeros"]),
)
def test_depth_options(option: str, value: str) -> None:
    _holds_the_contract(*_run("depth", "--depth", "3", "--width", "4", option, value), {0})


MISBEHAVIOURS = [
    "import sys; sys.exit(0)",
    "import sys; sys.exit(3)",
    "raise KeyboardInterrupt",
    "raise SystemExit",
    "return '1.5'",
    "return True",
    "return float('nan')",
    "return 10**400",
    "return [[1.0], [2.0, 3.0]]",
    "raise RecursionError",
]


def _user_file(folder: Path, loss: str, grads: str) -> Path:
    source = f"""
        import numpy as np
        params = {{"W": np.array([[1.0, -2.0], [0.5, 3.0]])}}

        def loss(p):
            {loss}

        def grads(p):
            {grads}
    """
    path = folder / "problem.py"
    path.write_text(textwrap.dedent(source))
    return path


@PROPERTY
@given(misbehaviour=st.sampled_from(MISBEHAVIOURS), role=st.sampled_from(["loss", "grads"]))
def test_check_never_exits_0_for_a_misbehaving_loss(
    tmp_path_factory: pytest.TempPathFactory, misbehaviour: str, role: str
) -> None:
    good_loss, good_grads = "return float(np.sum(p['W'] ** 2))", "return {'W': 2 * p['W']}"
    path = _user_file(
        tmp_path_factory.mktemp("check"),
        misbehaviour if role == "loss" else good_loss,
        misbehaviour if role == "grads" else good_grads,
    )
    code, stdout, stderr = _run("check", str(path))
    _holds_the_contract(code, stdout, stderr, allowed=set())
    assert role in stderr


@settings(PROPERTY, max_examples=8)
@given(
    option=st.sampled_from(["--layers", "--l2", "--lr", "--epochs", "--dropout", "--task"]),
    value=st.sampled_from([*ODD_TEXT, "4,4", "-0.5"]),
)
def test_diagnose_options(
    tmp_path_factory: pytest.TempPathFactory, option: str, value: str
) -> None:
    out = tmp_path_factory.mktemp("diagnose")
    small = ["--dataset", "circles", "--epochs", "2", "--layers", "4", "--out", str(out)]
    _holds_the_contract(*_run("diagnose", *small, option, value), allowed={0})
