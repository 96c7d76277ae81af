"""What the property tests feed gradprobe, and how they judge what comes back.

Odd values (huge integers, bools, strings, NaN, arrays where a number belongs), odd
arrays (int, bool, object, complex and float16 dtypes, non-contiguous and read-only,
ragged lists) and callables that misbehave (raise anything, ``SystemExit`` and
``KeyboardInterrupt`` included, or return what is not a finite real scalar). Every
property runs with :data:`PROPERTY`: seeded (``derandomize=True``), no example
database, a bounded number of examples.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from gradprobe.errors import GradprobeError

PROPERTY = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ODD_NUMBERS: list[Any] = [
    -1, 0, 1, 2.5, -0.0, 1e-300, 1e300, 1e308, -1e308, 10**400, -(10**400), 2**70,
    float("nan"), float("inf"), -float("inf"), True, False, np.bool_(True), np.float16(3),
    np.int8(-3), np.uint64(2**63), 1j, Fraction(1, 3), Decimal("0.5"), "1.5", "12", "", b"1",
    None, [1e-6, 1e-4], (1, 2, 3), np.array([1.0, 2.0]), np.array(0.5), np.array(["central"]),
    {"a": 1}, object(),
]  # fmt: skip
"""Values that are wrong somewhere: each is right for some arguments and wrong for others."""

odd_values = st.sampled_from(ODD_NUMBERS) | st.floats(allow_nan=True, allow_infinity=True)

DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int8, np.bool_, np.complex128, object]


@st.composite
def odd_arrays(draw: Any, min_dims: int = 1, max_dims: int = 2) -> Any:
    """An array of any dtype, possibly with NaN, inf or huge values, a view or read-only."""
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=5))
    if dtype is object:
        values = np.empty(shape, dtype=object)
        values.fill(draw(st.sampled_from(["a", None, 1.0, 10**400])))
    else:
        floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([1e308, -1e150])
        integral = np.dtype(dtype).kind in "iub"
        elements = st.integers(-100, 100) if integral else floats
        values = draw(arrays(np.int64 if integral else np.float64, shape, elements=elements))
        with np.errstate(all="ignore"):
            values = values.astype(dtype)
    layout = draw(st.sampled_from(["plain", "view", "read-only", "fortran"]))
    if layout == "view":
        values = np.repeat(values, 2, axis=-1)[..., ::2]  # non-contiguous, same values
    elif layout == "read-only":
        values.setflags(write=False)
    elif layout == "fortran":
        values = np.asfortranarray(values)
    return values


ragged = st.sampled_from([[[1.0, 2.0], [3.0]], [1.0, [2.0, 3.0]], [[[1.0]], [2.0]]])


class _BadFloat:
    def __float__(self) -> float:
        raise ZeroDivisionError("__float__ fails")


def _raises(error: BaseException) -> Callable[..., Any]:
    def function(*args: Any, **kwargs: Any) -> Any:
        raise error

    function.__name__ = f"raises_{type(error).__name__}"
    return function


def _returns(value: Any) -> Callable[..., Any]:
    def function(*args: Any, **kwargs: Any) -> Any:
        return value

    function.__name__ = f"returns_{type(value).__name__}"
    return function


def _exits(*args: Any) -> Any:
    sys.exit(0)


MISBEHAVING: list[Callable[..., Any]] = [
    _raises(RuntimeError("boom")),
    _raises(KeyboardInterrupt()),
    _raises(SystemExit(0)),
    _raises(RecursionError()),
    _raises(MemoryError()),
    _exits,
    _returns("1.5"),
    _returns(True),
    _returns(None),
    _returns(np.ones(3)),
    _returns(float("nan")),
    _returns(float("inf")),
    _returns(10**400),
    _returns(_BadFloat()),
    _returns(1 + 2j),
    _returns([[1.0], [2.0, 3.0]]),
]
"""Functions that raise anything, or return what is not a finite real scalar."""

misbehaving = st.sampled_from(MISBEHAVING)


def snapshot(value: Any) -> Any:
    """Everything about ``value`` a call could change: for arrays dtype, layout, bytes, flags."""
    if isinstance(value, np.ndarray):
        raw = value.tobytes() if value.dtype != object else repr(value.tolist())
        return ("array", value.dtype.str, value.shape, value.strides, value.flags.writeable, raw)
    if isinstance(value, dict):
        return ("dict", [(key, snapshot(item)) for key, item in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [snapshot(item) for item in value])
    return ("other", repr(value))


def outcome(call: Callable[[], Any], *names: str) -> Any:
    """Run ``call``: return its result, or None for a GradprobeError that names one of ``names``.

    Anything but a :class:`GradprobeError` escapes and fails the property, as does a
    refusal whose message names none of the arguments.
    """
    try:
        return call()
    except GradprobeError as error:
        message = str(error)
        assert any(name in message for name in names), f"{names} not named in: {message}"
        return None
