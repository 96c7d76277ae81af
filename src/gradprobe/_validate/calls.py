"""The user's own function: what it may return, and what becomes of what it raises.

It may return only a finite real scalar. Whatever it raises, ``SystemExit`` and a
``KeyboardInterrupt`` it raises itself included, becomes a
:class:`~gradprobe.errors.LossEvaluationError` that names it; a real Ctrl-C still
interrupts.
"""

from __future__ import annotations

import dis
import math
import signal
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._validate.numbers import kind
from gradprobe.errors import InvalidTypeError, LossEvaluationError

__all__ = [
    "check_finite_gradient",
    "check_instance",
    "check_progress",
    "loss_value",
    "unless_interrupt",
]

_RAISES = {dis.opmap["RAISE_VARARGS"], dis.opmap.get("RERAISE", -1)}


def _real_interrupt(error: BaseException) -> bool:
    """Tell a Ctrl-C (a signal) from a ``KeyboardInterrupt`` that code raised on purpose."""
    if not isinstance(error, KeyboardInterrupt) or error.__traceback__ is None:
        return isinstance(error, KeyboardInterrupt)
    handler = getattr(signal.getsignal(signal.SIGINT), "__code__", None)
    trace = error.__traceback__
    while True:
        if trace.tb_frame.f_code is handler:
            return True  # raised by the installed SIGINT handler: a real Ctrl-C
        if trace.tb_next is None:
            break
        trace = trace.tb_next
    code = trace.tb_frame.f_code.co_code
    # A signal is raised where the interpreter checks for it (a call, a loop's jump),
    # never at a ``raise`` statement.
    return trace.tb_lasti >= len(code) or code[trace.tb_lasti] not in _RAISES


def unless_interrupt(error: BaseException) -> BaseException:
    """Return what the user's function raised, to chain under a :class:`LossEvaluationError`.

    Anything counts, ``SystemExit`` and a ``KeyboardInterrupt`` raised by the code
    itself included, except a real Ctrl-C, which is re-raised here so that it
    interrupts. Call it as ``raise LossEvaluationError(...) from unless_interrupt(error)``
    in an ``except BaseException as error`` clause.
    """
    if _real_interrupt(error):
        raise error
    return error


def loss_value(value: Any, where: str, argument: str = "the function") -> float:
    """Turn one value of the user's function into a float, or explain why not.

    A finite real scalar is accepted (Python or NumPy, an int, a 0-d array, a complex
    with zero imaginary part); a bool, a string, an array or an object whose
    ``float()`` fails is refused with a :class:`LossEvaluationError`.
    """
    detach = getattr(value, "detach", None)  # a tensor that requires grad: read its value
    if callable(detach) and getattr(value, "requires_grad", False):
        value = detach()
    try:
        code = np.asarray(value).dtype.kind
        shape = np.shape(value)
    except BaseException as error:  # noqa: BLE001 - unreadable to NumPy: float() judges it
        unless_interrupt(error)
        code, shape = "O", ()
    if shape != ():
        raise LossEvaluationError(
            f"{argument} returned an array of shape {shape} {where}, expected a "
            "scalar; reduce it with .sum() or .mean()"
        )
    if code in "bSUV" or isinstance(value, (str, bytes)):
        raise LossEvaluationError(
            f"{argument} returned {kind(value)} {where}, expected a real number"
        )
    if code == "c" and np.imag(value) != 0:
        raise LossEvaluationError(
            f"{argument} returned the complex value {complex(value)} {where}, expected a real "
            "scalar (complex inputs are only for method='complex')"
        )
    try:
        with np.errstate(all="ignore"):
            number = float(np.real(value)) if code != "O" else float(value)
    except BaseException as error:  # noqa: BLE001 - the user's __float__ may raise anything
        raise LossEvaluationError(
            f"{argument} returned {kind(value)} {where}, which float() cannot read "
            f"({type(error).__name__}: {error}); expected a finite real number"
        ) from unless_interrupt(error)
    if not math.isfinite(number):
        raise LossEvaluationError(f"{argument} returned {number} {where}, expected a finite value")
    return number


def check_progress(progress: object) -> object:
    """Return a progress hook as given: None, a callable ``(done, total)`` or an ``update(n)`` bar.

    Examples
    --------
    >>> check_progress(None) is None
    True
    """
    if progress is None or callable(progress) or callable(getattr(progress, "update", None)):
        return progress
    raise InvalidTypeError(
        f"progress: got {type(progress).__name__}, expected a callable progress(done, total), "
        "an object with update(n) such as tqdm.auto.tqdm(), or None"
    )


def check_instance(
    value: object,
    expected_type: type,
    argument: str,
    expected: str,
    *,
    torch_route: str = "",
    otherwise: str = "",
) -> None:
    """Refuse a value that is not a ``kind``, saying where the user's object goes instead.

    Parameters
    ----------
    value : object
        What the caller was given as ``argument``.
    expected_type : type
        The type expected.
    argument, expected : str
        The argument's name and the expected type in words (``"a gradprobe MLP"``).
    torch_route : str, optional
        Where a PyTorch object should go instead (``"gradprobe.torch.propagation(model,
        x)"``); said when ``value`` comes from torch.
    otherwise : str, optional
        What to say after the refusal of anything else (starting with ``"; "``).

    Raises
    ------
    InvalidTypeError
        When ``value`` is not an instance of ``expected_type``.
    """
    if isinstance(value, expected_type):
        return
    given = f"{argument}: got {type(value).__name__}, expected {expected}"
    if torch_route and type(value).__module__.split(".")[0] == "torch":
        raise InvalidTypeError(f"{given}; for a PyTorch module call {torch_route}")
    raise InvalidTypeError(given + otherwise)


def check_finite_gradient(
    gradient: NDArray[np.float64], name: Callable[[int], str], source: str, inputs: str, code: str
) -> None:
    """Refuse an analytic gradient with an inf or NaN, naming the entry and where to look.

    Parameters
    ----------
    gradient : ndarray of float64, shape (size,)
        The flattened gradient.
    name : callable
        ``name(i)``: the name of entry ``i`` (``layout.coordinate_name``).
    source : str
        What computed it, with the arguments it came from (``"jax.vjp of f at args"``).
    inputs, code : str
        The arguments that may hold inf or NaN, and the code that may divide by 0.

    Raises
    ------
    LossEvaluationError
        When an entry is not finite.
    """
    bad = np.flatnonzero(~np.isfinite(gradient))
    if len(bad):
        raise LossEvaluationError(
            f"{source} returned a non-finite gradient at {name(int(bad[0]))}, expected finite "
            f"values: look for inf or NaN in {inputs} and for log(0), 0/0 or an overflow in {code}"
        )
