"""The user's function: what it may return, and a real Ctrl-C told from a raised one."""

from __future__ import annotations

import signal
import sys
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
import torch

from gradprobe._validate import check_finite_gradient, check_instance, loss_value, unless_interrupt
from gradprobe.errors import InvalidTypeError, LossEvaluationError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.5, 1.5),
        (3, 3.0),
        (np.float32(0.25), 0.25),
        (np.array(2.0), 2.0),
        (np.complex128(4.0), 4.0),
        (Decimal("0.5"), 0.5),
        (torch.tensor(1.0, requires_grad=True), 1.0),
    ],
)
def test_finite_real_scalars_are_read(value: Any, expected: float) -> None:
    assert loss_value(value, "at θ", "loss") == expected


class _BadFloat:
    def __float__(self) -> float:
        raise ZeroDivisionError("no float")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("1.5", "returned str '1.5'"),
        (True, "returned bool True"),
        (np.bool_(False), "returned bool"),
        (10**400, "401 digits"),
        (_BadFloat(), "float() cannot read (ZeroDivisionError: no float)"),
        (np.ones(2), "array of shape (2,)"),
        ([[1.0], [2.0, 3.0]], "float() cannot read"),
        (1 + 2j, "complex value"),
        (np.nan, "nan"),
        (None, "NoneType"),
    ],
)
def test_anything_else_is_a_loss_evaluation_error(value: Any, fragment: str) -> None:
    with pytest.raises(LossEvaluationError) as caught:
        loss_value(value, "at θ", "loss")
    assert fragment in str(caught.value) and str(caught.value).startswith("loss returned")


def _caught(function: Any) -> BaseException:
    try:
        function()
    except BaseException as error:  # noqa: BLE001 - the test looks at what was raised
        return error
    raise AssertionError("nothing was raised")


def test_what_code_raises_on_purpose_is_handed_back() -> None:
    def raises_interrupt() -> None:
        raise KeyboardInterrupt

    for function in (raises_interrupt, lambda: sys.exit(0), lambda: 1 / 0):
        error = _caught(function)
        assert unless_interrupt(error) is error


def test_a_real_ctrl_c_is_raised_again() -> None:
    # The default handler raises inside raise_signal, a call: no ``raise`` statement.
    error = _caught(lambda: signal.raise_signal(signal.SIGINT))
    assert isinstance(error, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        unless_interrupt(error)


def test_a_ctrl_c_through_a_python_handler_is_raised_again() -> None:
    def handler(number: int, frame: object) -> None:
        raise KeyboardInterrupt  # a ``raise`` statement, but in the installed handler

    previous = signal.signal(signal.SIGINT, handler)
    try:
        error = _caught(lambda: signal.raise_signal(signal.SIGINT))
        with pytest.raises(KeyboardInterrupt):
            unless_interrupt(error)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_check_instance_accepts_the_type_and_names_the_argument_otherwise() -> None:
    check_instance(3, int, "n", "an integer")
    with pytest.raises(InvalidTypeError, match=r"^n: got str, expected an integer; try int\(\)$"):
        check_instance("3", int, "n", "an integer", otherwise="; try int()")


def test_a_torch_module_is_sent_to_the_torch_adapter() -> None:
    for model in (torch.nn.Linear(2, 3), torch.randn(2)):
        with pytest.raises(InvalidTypeError, match=r"call gradprobe\.torch\.propagation\(model"):
            check_instance(
                model, int, "net", "an MLP", torch_route="gradprobe.torch.propagation(model, x)"
            )


def test_a_non_finite_gradient_is_named_by_its_first_bad_entry() -> None:
    check_finite_gradient(np.zeros(3), str, "f", "x", "f")
    with pytest.raises(LossEvaluationError, match=r"^g returned a non-finite gradient at w\[2\]"):
        check_finite_gradient(
            np.array([0.0, 1.0, np.nan, np.inf]), lambda i: f"w[{i}]", "g", "x", "g"
        )
