"""The difference rules: steps, formulas, Richardson's order, the complex step, reading values."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy.differentiate import derivative as scipy_derivative

from gradprobe.errors import InvalidArgumentError, InvalidTypeError, LossEvaluationError
from gradprobe.numdiff.rules import (
    METHODS,
    as_scalar,
    check_eps,
    check_method,
    complex_step,
    default_step,
    one_difference,
    richardson,
    richardson_weights,
)

UNIT = float(np.finfo(np.float64).eps)


class TestSteps:
    def test_default_steps_follow_the_method(self) -> None:
        u = np.finfo(np.float64).eps
        assert default_step("forward", 0.5) == pytest.approx(math.sqrt(u))
        assert default_step("central", 0.5) == pytest.approx(u ** (1 / 3))
        assert default_step("central", 100.0) == pytest.approx(100 * u ** (1 / 3))

    def test_float32_steps_are_larger(self) -> None:
        assert default_step("central", 1.0, np.float32) > 100 * default_step("central", 1.0)


@pytest.mark.parametrize(
    ("method", "base"),
    [
        ("forward", UNIT**0.5),
        ("backward", UNIT**0.5),
        ("central", UNIT ** (1 / 3)),
        ("complex", 1e-20),
    ],
)
def test_each_step_grows_with_the_point_but_never_shrinks_below_its_base(
    method: str, base: float
) -> None:
    x = np.array([0.0, 1e-3, -0.5, 1.0, -3.0, 1e4])
    np.testing.assert_allclose(default_step(method, x), base * np.maximum(1, np.abs(x)))
    assert default_step(method, -3.0) == pytest.approx(3 * base)


def test_the_richardson_step_scales_with_the_point_below_one_too() -> None:
    # Its reach is large (u^(1/9) ≈ 0.018): scaled with |x| it keeps x ± ε on the side of 0
    # that x is on, so log, sqrt or 1/x near 0 are evaluated where they are defined.
    x = np.array([0.0, 1e-5, 1e-3, -0.5, 1.0, -3.0, 1e4])
    step = default_step("richardson", x)
    np.testing.assert_allclose(step, UNIT ** (1 / 9) * np.maximum(np.abs(x), UNIT ** (2 / 9)))
    assert np.all(step[1:] < np.abs(x[1:]))


def test_methods_are_checked() -> None:
    for method in METHODS:
        check_method(method)
    with pytest.raises(InvalidArgumentError, match="method: got 'secant', expected one of"):
        check_method("secant")
    with pytest.raises(InvalidTypeError, match="method: got None"):  # not a name at all
        default_step(None, 1.0)  # type: ignore[arg-type]


def test_eps_is_a_positive_finite_number_or_none() -> None:
    assert check_eps(None) is None
    assert check_eps(1) == 1.0 and type(check_eps(np.float32(0.5))) is float
    for bad in (0, -1e-3, np.inf, np.nan):
        with pytest.raises(InvalidArgumentError, match="eps: got"):
            check_eps(bad)
    for wrong in (True, "1e-3", [1e-3]):
        with pytest.raises(InvalidTypeError, match="eps: got"):
            check_eps(wrong)


# ------------------------------------------------------------------ difference quotients


def test_the_seed_example_by_each_one_sided_and_central_rule() -> None:
    # f(θ) = θ³ at 1 with ε = 0.01: (1.01³ − 1)/0.01, (1 − 0.99³)/0.01 and the central quotient.
    cube = lambda t: t**3  # noqa: E731
    assert one_difference(cube, 1.0, 0.01, "forward") == pytest.approx(3.0301, abs=1e-12)
    assert one_difference(cube, 1.0, 0.01, "backward") == pytest.approx(2.9701, abs=1e-12)
    assert one_difference(cube, 1.0, 0.01, "central") == pytest.approx(3.0001, abs=1e-12)


@pytest.mark.parametrize("method", ["forward", "backward", "central"])
def test_the_quotient_divides_by_the_step_actually_taken(method: str) -> None:
    # 1 + 1.5e-16 rounds to 1 + 2.2e-16: the slope of the identity is still exactly 1,
    # while dividing by the nominal step would give 1.48 (or 0.74 backward).
    assert one_difference(lambda t: t, 1.0, 1.5e-16, method) == 1.0


def _richardson(f: Any, x: float, h: float) -> tuple[float, float]:
    """Richardson's value and change from central differences at h, h/2, h/4, h/8."""
    steps = h / 2.0 ** np.arange(4)
    upper, lower = x + steps, x - steps
    quotients = (np.array([f(t) for t in upper]) - np.array([f(t) for t in lower])) / (
        upper - lower
    )
    value, change = richardson(quotients[np.newaxis, :])
    return float(value[0]), float(change[0])


def test_richardson_is_exact_for_polynomials_of_degree_eight() -> None:
    # Four levels remove the h², h⁴ and h⁶ terms of the central difference; a degree-8
    # polynomial has no h⁸ term, so even a huge step gives its derivative to rounding.
    value, error = _richardson(lambda t: t**8 - 3 * t**5 + t, 0.9, 0.5)
    exact = 8 * 0.9**7 - 15 * 0.9**4 + 1
    assert value == pytest.approx(exact, abs=1e-12)
    assert error >= abs(value - exact)


def test_richardson_weights_give_its_value() -> None:
    rows = np.random.default_rng(0).normal(size=(5, 4))
    np.testing.assert_allclose(richardson(rows)[0], rows @ richardson_weights(), rtol=1e-12)


def test_richardson_error_is_of_eighth_order() -> None:
    exact = 9 * 0.3**8
    errors = [abs(_richardson(lambda t: t**9, 0.3, h)[0] - exact) for h in (1.0, 0.5, 0.25)]
    assert errors[0] / errors[1] == pytest.approx(2**8, rel=1e-3)
    assert errors[1] / errors[2] == pytest.approx(2**8, rel=1e-3)


@pytest.mark.parametrize(
    ("f", "x"), [(np.sin, 0.7), (np.exp, -1.2), (lambda t: np.log1p(t * t), 0.4)]
)
def test_richardson_agrees_with_scipy_and_bounds_its_error(f: Any, x: float) -> None:
    reference = scipy_derivative(f, x)
    assert reference.success
    value, error = _richardson(f, x, default_step("richardson", x))
    assert value == pytest.approx(float(reference.df), abs=1e-10)
    assert abs(value - float(reference.df)) <= 2 * error + 1e-13


@pytest.mark.parametrize("h", [1e-8, 1e-12, 1e-20, 1e-100])
def test_the_complex_step_is_exact_to_rounding_whatever_the_step(h: float) -> None:
    # Im f(x + ih)/h = f'(x) − h²·f'''(x)/6 + …: nothing is subtracted, no digit cancels.
    assert complex_step(np.exp, 1.0, h)[0] == pytest.approx(math.e, rel=2 * UNIT)
    # The real part, f(x) to rounding, comes back too: it sets the rounding's scale.
    assert complex_step(np.exp, 1.0, h)[1] == pytest.approx(math.e, rel=1e-12)
    x = 0.3
    assert complex_step(lambda z: z**5 / (1 + z * z), x, h)[0] == pytest.approx(
        (5 * x**4 * (1 + x * x) - 2 * x**6) / (1 + x * x) ** 2, rel=1e-14
    )


@pytest.mark.parametrize(
    ("function", "fragment"),
    [
        (math.sin, "raised TypeError"),
        (lambda z: abs(z) ** 2, "keeps the imaginary part"),
        (lambda z: float(z.real), "keeps the imaginary part"),
        (lambda z: np.array([z, z]), "shape (2,)"),
    ],
)
def test_functions_that_cannot_take_the_complex_step_are_told_why(
    function: Any, fragment: str
) -> None:
    with pytest.raises(LossEvaluationError) as caught:
        complex_step(function, 1.0, 1e-20)
    assert fragment in str(caught.value)


# ---------------------------------------------------------------------- reading values


@pytest.mark.parametrize(
    "value", [1.5, np.float32(1.5), np.array(1.5), np.float16(1.5), 1.5 + 0j, np.int64(1) + 0.5]
)
def test_a_real_scalar_in_any_form_becomes_a_float(value: Any) -> None:
    number = as_scalar(value, "at θ")
    assert type(number) is float and number == 1.5


@pytest.mark.parametrize(
    ("value", "fragments"),
    [
        (np.ones(3), ["the function returned an array of shape (3,) at θ", ".sum()"]),
        (np.ones((1, 1)), ["shape (1, 1)"]),
        (1 + 2j, ["complex value (1+2j)", "method='complex'"]),
        (None, ["returned NoneType at θ"]),
        (float("nan"), ["returned nan at θ", "finite"]),
        (-np.inf, ["returned -inf at θ"]),
    ],
)
def test_values_that_are_not_finite_real_scalars(value: Any, fragments: list[str]) -> None:
    with pytest.raises(LossEvaluationError) as caught:
        as_scalar(value, "at θ")
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_the_message_names_the_argument_and_the_place() -> None:
    with pytest.raises(LossEvaluationError, match=r"^loss returned nan at θ with W\[0\] moved"):
        as_scalar(float("nan"), "at θ with W[0] moved", "loss")
