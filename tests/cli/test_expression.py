"""The formula whitelist behind ``gradprobe derivative``: what it accepts, refuses and computes."""

from __future__ import annotations

import math

import pytest
import sympy

from gradprobe.cli._expression import FUNCTIONS, parse_expression
from gradprobe.errors import InvalidArgumentError


@pytest.mark.parametrize(
    ("text", "at", "exact"),
    [
        ("x**3", 1.0, 3.0),
        ("sin(x)", 0.3, math.cos(0.3)),
        ("tanh(2*x) + exp(-x)", 0.5, 2 / math.cosh(1.0) ** 2 - math.exp(-0.5)),
        ("sigmoid(x)", 0.0, 0.25),
        ("log(x) / x", 2.0, (1 - math.log(2.0)) / 4),
        ("-x + pi*e", 1.0, -1.0),
        ("sqrt(x)", 4.0, 0.25),
    ],
)
def test_exact_derivative_matches_closed_form(text: str, at: float, exact: float) -> None:
    expression = parse_expression(text)
    assert expression.exact_derivative(at) == pytest.approx(exact, rel=1e-12, abs=1e-15)


def test_numerical_function_and_symbolic_expression_agree() -> None:
    expression = parse_expression("x**3 - 2*cos(x) + abs(x) / (1 + x**2)")
    symbol = sympy.Symbol("x", real=True)
    for point in (-1.5, 0.2, 3.0):
        symbolic = float(expression.symbolic.subs(symbol, point))
        assert expression(point) == pytest.approx(symbolic, rel=1e-13)


def test_complex_step_is_supported() -> None:
    value = parse_expression("x**3")(complex(1.0, 1e-20))
    assert value.imag / 1e-20 == pytest.approx(3.0)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('true')",
        "x.real",
        "(lambda: 1)()",
        "[x for x in ()]",
        "'x'",
        "x if x else 1",
        "x < 1",
        "y + 1",
        "open('f')",
        "sin(x, 2)",
        "sin(x=1)",
        "sin(*x)",
        "().__class__",
        "x[0]",
        "True + x",
        "1j * x",
        "1e400 * x",
        "x @ x",
        "x // 2",
        "x % 2",
        "9**9**9",
        "(10**200)**10",
    ],
)
def test_anything_outside_the_whitelist_is_refused(text: str) -> None:
    with pytest.raises(InvalidArgumentError, match="expression: .* is not allowed"):
        parse_expression(text)


def test_caret_gets_a_hint() -> None:
    with pytest.raises(InvalidArgumentError, match=r"write powers as \*\*"):
        parse_expression("x^2")


@pytest.mark.parametrize("text", ["x +", "", "x" * 400, "(" * 200 + "x" + ")" * 200])
def test_syntax_errors_and_overlong_input_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgumentError, match="expression: "):
        parse_expression(text)


def test_sympy_string_parsers_are_never_called(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a string reached sympy's eval-based parser")

    monkeypatch.setattr(sympy, "sympify", forbidden)
    monkeypatch.setattr(sympy, "parse_expr", forbidden)
    assert parse_expression("exp(x) * sin(x)").exact_derivative(0.0) == pytest.approx(1.0)


def test_other_variable_names() -> None:
    assert parse_expression("θ**2", variable="θ").exact_derivative(3.0) == pytest.approx(6.0)
    with pytest.raises(InvalidArgumentError, match="variable: got 'sin'"):
        parse_expression("sin", variable="sin")


def test_non_differentiable_point_is_an_error() -> None:
    with pytest.raises(InvalidArgumentError, match="expected a finite real number"):
        parse_expression("sqrt(x)").exact_derivative(0.0)


def test_function_table_is_documented_in_the_refusal_message() -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        parse_expression("foo(x)")
    for name in FUNCTIONS:
        assert name in str(caught.value)
