"""Parse a one-variable formula safely, for ``gradprobe derivative``.

The text is parsed with :func:`ast.parse` and its syntax tree is checked against a
whitelist *before* any library sees it: numbers, the one variable, ``+ - * / **``,
unary minus and calls of a fixed table of functions. Anything else (attributes,
subscripts, lambdas, comprehensions, strings, other names) is refused. Common
symbolic parsers, sympy's ``sympify`` among them, call Python's ``eval`` on their
input, so the string never reaches them: the sympy expression and the numerical
function are both built here, node by node, from the checked tree.

Both are built from one table, so the exact derivative (sympy) and the numbers the
difference formulas see (NumPy, which also accepts the complex step) describe the
same function.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mpmath  # type: ignore[import-untyped]
import numpy as np
import sympy

from gradprobe.errors import InvalidArgumentError

__all__ = ["Expression", "FUNCTIONS", "parse_expression"]

# The longest formula accepted; a bound on parsing and on sympy's work.
_MAX_LENGTH = 300
# Constant powers are computed exactly by sympy: 9**9**9 would hang it, so a power
# whose exponent exceeds this, or whose value would, is refused.
_MAX_EXPONENT = 1000
_MAX_DIGITS = 300

# name -> (sympy function, NumPy function); NumPy's ufuncs accept complex input.
FUNCTIONS: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "sin": (sympy.sin, np.sin),
    "cos": (sympy.cos, np.cos),
    "tan": (sympy.tan, np.tan),
    "asin": (sympy.asin, np.arcsin),
    "acos": (sympy.acos, np.arccos),
    "atan": (sympy.atan, np.arctan),
    "sinh": (sympy.sinh, np.sinh),
    "cosh": (sympy.cosh, np.cosh),
    "tanh": (sympy.tanh, np.tanh),
    "exp": (sympy.exp, np.exp),
    "log": (sympy.log, np.log),
    "sqrt": (sympy.sqrt, np.sqrt),
    "abs": (sympy.Abs, np.abs),
    "sigmoid": (lambda z: 1 / (1 + sympy.exp(-z)), lambda z: 1 / (1 + np.exp(-z))),
}
_CONSTANTS: dict[str, tuple[Any, Any]] = {
    "pi": (sympy.pi, np.float64(np.pi)),
    "e": (sympy.E, np.float64(np.e)),
}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


@dataclass(frozen=True)
class Expression:
    """A checked formula in one variable, as sympy and as a NumPy function.

    Attributes
    ----------
    text : str
        The formula as given.
    variable : str
        The name of its variable.
    symbolic : sympy.Expr
        The formula as a sympy expression of a real symbol named ``variable``.
    """

    text: str
    variable: str
    symbolic: Any
    _tree: ast.expr

    def __call__(self, value: Any) -> Any:
        """Evaluate the formula at ``value`` (a float, or a complex for the complex step)."""
        # NumPy scalars, not Python floats: 1/0 and (-1)**0.5 give inf and nan, not
        # exceptions or a silently complex result.
        point = np.complex128(value) if isinstance(value, complex) else np.float64(value)
        with np.errstate(all="ignore"):
            return _evaluate(self._tree, self.variable, point)

    @property
    def derivative_text(self) -> str:
        """The symbolic derivative, as sympy prints it (``3*x**2`` for ``x**3``)."""
        try:
            return str(sympy.diff(self.symbolic, sympy.Symbol(self.variable, real=True)))
        except RecursionError:
            return "(too deeply nested to print)"

    def exact_derivative(self, at: float) -> float:
        """Return the derivative at ``at`` from sympy's symbolic differentiation.

        Raises
        ------
        InvalidArgumentError
            When the derivative is not a finite real number there.
        """
        symbol = sympy.Symbol(self.variable, real=True)
        try:
            # mpmath at 30 digits, not subs(...).evalf(30), which can take minutes (nested
            # logarithms of negative numbers); lambdify prints the checked sympy expression.
            slope = sympy.lambdify(symbol, sympy.diff(self.symbolic, symbol), modules="mpmath")
            with mpmath.workdps(30):
                number = complex(slope(mpmath.mpf(at)))
        except (ArithmeticError, ValueError, TypeError):
            number = complex("nan")  # overflow or a pole
        except RecursionError as error:
            raise InvalidArgumentError(
                f"expression: {self.text!r} is nested too deeply for sympy to differentiate; "
                "expected fewer functions inside one another"
            ) from error
        if abs(number.imag) > 1e-25 * max(1.0, abs(number.real)) or not np.isfinite(number.real):
            raise InvalidArgumentError(
                f"the derivative of {self.text} at {self.variable} = {at:g} is {number}, expected "
                "a finite real number; pick a point where the function is differentiable"
            )
        return number.real


def parse_expression(text: str, variable: str = "x") -> Expression:
    """Check a formula against the whitelist and build it.

    Parameters
    ----------
    text : str
        A Python-syntax formula such as ``"x**3"`` or ``"tanh(2*x) + exp(-x)"``.
    variable : str, default="x"
        The name of the variable.

    Returns
    -------
    Expression

    Raises
    ------
    InvalidArgumentError
        When the text is not valid syntax or uses anything outside the whitelist.

    Examples
    --------
    >>> f = parse_expression("x**3")
    >>> float(f(2.0)), f.exact_derivative(1.0)
    (8.0, 3.0)
    >>> parse_expression("__import__('os')")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradprobe.errors.InvalidArgumentError: expression: ...
    """
    if not variable.isidentifier() or variable in FUNCTIONS or variable in _CONSTANTS:
        raise InvalidArgumentError(
            f"variable: got {variable!r}, expected a plain name that is not a function or constant"
        )
    if len(text) > _MAX_LENGTH:
        raise InvalidArgumentError(
            f"expression: got {len(text)} characters, expected at most {_MAX_LENGTH}"
        )
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise InvalidArgumentError(
            f"expression: {text!r} is not a formula ({type(error).__name__}); write it in "
            "Python syntax, e.g. 'x**3 - 2*sin(x)'"
        ) from error
    symbol = sympy.Symbol(variable, real=True)
    symbolic = _build(tree.body, variable, symbol, text)
    return Expression(text=text, variable=variable, symbolic=symbolic, _tree=tree.body)


def _refuse(node: ast.AST, text: str, why: str) -> InvalidArgumentError:
    source = ast.get_source_segment(text.strip(), node) or type(node).__name__
    allowed = ", ".join(sorted(FUNCTIONS))
    return InvalidArgumentError(
        f"expression: {source!r} is not allowed ({why}); use numbers, the variable, "
        f"+ - * / **, pi, e and the functions {allowed}"
    )


def _build(node: ast.expr, variable: str, symbol: Any, text: str) -> Any:
    """Return the sympy expression of a whitelisted node, refusing everything else."""
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _refuse(node, text, "only real numbers are constants")
        if not math.isfinite(value):
            raise _refuse(node, text, "numbers must be finite")
        return sympy.Integer(value) if isinstance(value, int) else sympy.Float(value)
    if isinstance(node, ast.Name):
        if node.id == variable:
            return symbol
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id][0]
        raise _refuse(node, text, f"the only variable is {variable}")
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_build(node.operand, variable, symbol, text))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left = _build(node.left, variable, symbol, text)
        right = _build(node.right, variable, symbol, text)
        if isinstance(node.op, ast.Pow) and _too_large(left, right):
            raise _refuse(node, text, f"constant powers are limited to about 1e{_MAX_DIGITS}")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        raise _refuse(node, text, "^ is exclusive or in Python; write powers as **")
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        raise _refuse(node, text, "the operators are + - * / **")
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in FUNCTIONS
        and len(node.args) == 1
        and not node.keywords
        and not isinstance(node.args[0], ast.Starred)
    ):
        return FUNCTIONS[node.func.id][0](_build(node.args[0], variable, symbol, text))
    if isinstance(node, ast.Call):
        raise _refuse(node, text, "only the listed functions, each with one argument")
    raise _refuse(node, text, f"{type(node).__name__} is not arithmetic")


def _too_large(base: Any, exponent: Any) -> bool:
    """Tell whether ``base ** exponent`` is a constant too large to compute exactly."""
    if not exponent.is_number:
        return False
    try:
        power = abs(complex(exponent))
        if power > _MAX_EXPONENT:
            return True
        if not base.is_number:
            return False
        magnitude = abs(complex(base))
    except (TypeError, ValueError, OverflowError):
        return True
    return magnitude > 1 and power * math.log10(magnitude) > _MAX_DIGITS


def _evaluate(node: ast.expr, variable: str, value: Any) -> Any:
    """Evaluate a tree that :func:`_build` has already accepted."""
    if isinstance(node, ast.Constant):
        return np.float64(float(node.value))  # type: ignore[arg-type]
    if isinstance(node, ast.Name):
        return value if node.id == variable else _CONSTANTS[node.id][1]
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, variable, value))
    if isinstance(node, ast.BinOp):
        left = _evaluate(node.left, variable, value)
        right = _evaluate(node.right, variable, value)
        return _BINARY[type(node.op)](left, right)
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    return FUNCTIONS[node.func.id][1](_evaluate(node.args[0], variable, value))
