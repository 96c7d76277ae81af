"""Numbers, counts, choices and steps: what passes, and how a refusal is worded."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from gradprobe._validate import (
    LIMITS,
    check_batched,
    check_choice,
    check_count,
    check_eps,
    check_notes,
    check_real,
    check_seed,
    check_steps,
    check_thresholds,
    describe,
    finite_real,
)
from gradprobe.errors import GradprobeError, InvalidArgumentError, InvalidTypeError


def _refused(call: Any, error: type[Exception], *fragments: str) -> str:
    with pytest.raises(error) as caught:
        call()
    assert isinstance(caught.value, GradprobeError)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_describe_is_short_and_safe() -> None:
    assert describe(10**400) == "an integer of 401 digits"
    assert describe(10**5000) == "an integer of thousands of digits"  # past str()'s limit
    assert describe(2**70) == "1.18e+21"
    assert describe("12") == "'12'"
    assert len(describe(list(range(1000)))) <= 60

    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    assert describe(Hostile()) == "a Hostile"


@pytest.mark.parametrize(
    ("value", "expected"), [(3, 3.0), (np.float32(0.5), 0.5), (Fraction(1, 4), 0.25)]
)
def test_real_numbers_come_back_as_floats(value: Any, expected: float) -> None:
    result = check_real(value, "lr")
    assert result == expected and type(result) is float


@pytest.mark.parametrize("value", [True, np.bool_(False), "1.5", b"1", [1.0], np.array(1.0), 1j])
def test_bools_strings_and_arrays_are_not_numbers(value: Any) -> None:
    _refused(lambda: check_real(value, "lr"), InvalidTypeError, "lr: got", "expected")


@pytest.mark.parametrize("value", [10**400, -(10**400), Fraction(10**400, 3)])
def test_numbers_too_big_for_a_float_are_named(value: Any) -> None:
    _refused(lambda: check_real(value, "l2"), InvalidArgumentError, "l2: got", "too large")


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan, 1e309])
def test_non_finite_numbers_are_refused(value: float) -> None:
    _refused(lambda: check_real(value, "x"), InvalidArgumentError, "x: got")


def test_finite_real_never_raises() -> None:
    assert finite_real(1) and finite_real(np.complex128(2.0))
    for value in (np.nan, np.inf, 1 + 1j, "x", None, 10**400, np.float64("nan")):
        assert not finite_real(value)


def test_thresholds_refuse_a_string_of_two_digits() -> None:
    # '12' iterates as '1', '2': it was read as (1, 2).
    _refused(lambda: check_thresholds("12"), InvalidArgumentError, "thresholds: got '12'")
    _refused(lambda: check_thresholds((True, 1)), InvalidArgumentError, "two numbers")
    _refused(lambda: check_thresholds((1e-6, 10**400)), InvalidArgumentError, "< inf")


def test_counts_named_in_the_limits_are_bounded() -> None:
    assert check_count(LIMITS["depth"], "depth") == LIMITS["depth"]
    message = _refused(
        lambda: check_count(LIMITS["depth"] + 1, "depth"), InvalidArgumentError, "at most 100,000"
    )
    assert "depth: got 100001" in message
    _refused(lambda: check_count(10**400, "epochs"), InvalidArgumentError, "401 digits")
    assert check_count(0, "epochs", minimum=0) == 0
    assert check_count(10**400, "unlisted") == 10**400  # no limit but memory's elsewhere


@pytest.mark.parametrize("seed", [-1, 1.5, "0", None])
def test_seeds_name_their_argument(seed: Any) -> None:
    with pytest.raises(GradprobeError, match="rng: got"):
        check_seed(seed, "rng")


def test_choices_refuse_arrays_and_unknown_names() -> None:
    assert check_choice("full", "mode", ("auto", "full")) == "full"
    _refused(
        lambda: check_choice(np.array(["full", "auto"]), "mode", ("auto", "full")),
        InvalidTypeError,
        "mode: got array",
    )
    _refused(lambda: check_choice("fast", "mode", ("auto", "full")), InvalidArgumentError, "auto")


def test_notes_are_the_callers_own_list() -> None:
    lines = ["dropout off"]
    assert check_notes(lines) is lines  # an adapter may add to it during the check
    assert check_notes(None) == ()
    _refused(lambda: check_notes([1, 2]), InvalidTypeError, "notes: got the line int 1")
    _refused(lambda: check_notes("one line"), InvalidTypeError, "list of strings")


def test_batched_is_a_flag_and_refuses_the_complex_step() -> None:
    assert check_batched(np.bool_(True), "central") is True
    _refused(lambda: check_batched(1, "central"), InvalidTypeError, "batched: got int")
    _refused(lambda: check_batched(True, "complex"), InvalidArgumentError, "batched=True")


def test_eps_none_and_positive_steps() -> None:
    assert check_eps(None) is None and check_eps(1) == 1.0
    for bad in (0, -1e-3, np.inf, 1e-400):
        _refused(lambda bad=bad: check_eps(bad), InvalidArgumentError, "eps: got")
    _refused(lambda: check_eps("1e-6"), InvalidTypeError, "eps: got str")


def test_a_step_that_does_not_move_x_is_refused_in_plain_words() -> None:
    message = _refused(
        lambda: check_steps(1.0, 1e-17, "central"), InvalidArgumentError, "does not move x = 1"
    )
    assert "1 + 1e-17 == 1" in message and "at least 2.2e-16" in message
    assert check_steps(0.0, 1e-17, "central") == 1e-17  # 0 + 1e-17 moves 0
    assert check_steps(1.0, 1e-17, "complex") == 1e-17  # x + iε moves x whatever ε
    assert check_steps(1.0, None, "central") is None


def test_richardson_needs_its_smallest_step_to_move_x() -> None:
    # Richardson evaluates x ± ε/8: 5e-16 moves 1.0, 5e-16/8 does not.
    assert check_steps(1.0, 5e-16, "central") == 5e-16
    _refused(lambda: check_steps(1.0, 5e-16, "richardson"), InvalidArgumentError, "does not move")


def test_every_coordinate_must_move() -> None:
    theta = np.array([0.0, 1e-3, 1e6])
    _refused(
        lambda: check_steps(theta, 1e-11, "forward", "θᵢ"), InvalidArgumentError, "θᵢ = 1000000"
    )


@pytest.mark.parametrize("method", ["central", "forward", "backward", "richardson"])
def test_a_step_beyond_float_range_is_refused(method: str) -> None:
    with pytest.raises(InvalidArgumentError, match="eps: got 1e\\+308"):
        check_steps(np.array([1.0, -1.7e308]), 1e308, method)
