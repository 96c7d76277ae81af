"""The activation functions, each beside its derivative, in one table.

Like a table of derivative rules, every row pairs a function ``g(z)`` with
``g'(z)``; the MLP's backward pass and the propagation analysis both read this
table, so a function and its derivative can never drift apart. Both act
elementwise on arrays of any shape and never modify their input.

============  ===================================  ===============================
name          g(z)                                 g'(z)
============  ===================================  ===============================
relu          max(0, z)                            1 if z > 0 else 0
leaky_relu    z if z > 0 else 0.01·z               1 if z > 0 else 0.01
tanh          tanh(z)                              1 − tanh(z)²
sigmoid       1 / (1 + e^(−z))                     σ(z)·(1 − σ(z))
linear        z                                    1
gelu          z·(1 + tanh(u)) / 2,                 (1 + tanh u)/2 + z·(1 − tanh²u)·u'/2
              u = √(2/π)·(z + 0.044715·z³)
silu          z·σ(z)                               σ(z)·(1 + z·(1 − σ(z)))
elu           z if z > 0 else e^z − 1              1 if z > 0 else e^z
softplus      log(1 + e^z)                         σ(z)
============  ===================================  ===============================

The sigmoid is evaluated as ``(1 + tanh(z/2)) / 2``, which never overflows; GELU is
its tanh form (PyTorch's ``approximate="tanh"``), which is smooth and needs no erf.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe.errors import InvalidArgumentError, InvalidTypeError

__all__ = ["ACTIVATIONS", "LEAKY_SLOPE", "Activation", "get_activation", "sigmoid"]

Array = NDArray[np.floating[Any]]

LEAKY_SLOPE = 0.01
"""The slope of ``leaky_relu`` for negative inputs."""


@dataclass(frozen=True)
class Activation:
    """One row of the activation table: a function and its derivative.

    Attributes
    ----------
    name : str
        The key in :data:`ACTIVATIONS`.
    function : callable
        ``g(Z) -> A``, elementwise, same shape as ``Z``.
    derivative : callable
        ``g'(Z)``, elementwise, same shape as ``Z``.
    """

    name: str
    function: Callable[[Array], Array]
    derivative: Callable[[Array], Array]


def sigmoid(z: Array) -> Array:
    """Return the logistic function 1 / (1 + e^(−z)) without overflow for any ``z``.

    Parameters
    ----------
    z : ndarray
        Any shape.

    Returns
    -------
    ndarray
        Same shape as ``z``, values in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    # σ(z) = (1 + tanh(z/2)) / 2 exactly; tanh saturates instead of overflowing.
    result: Array = 0.5 + 0.5 * np.tanh(0.5 * z)
    return result


def _sigmoid_derivative(z: Array) -> Array:
    s = sigmoid(z)
    return s * (1.0 - s)


def _tanh_derivative(z: Array) -> Array:
    return 1.0 - np.tanh(z) ** 2


_GELU_SCALE = float(np.sqrt(2.0 / np.pi))
_GELU_CUBIC = 0.044715


def _gelu(z: Array) -> Array:
    result: Array = 0.5 * z * (1.0 + np.tanh(_GELU_SCALE * (z + _GELU_CUBIC * z**3)))
    return result


def _gelu_derivative(z: Array) -> Array:
    t = np.tanh(_GELU_SCALE * (z + _GELU_CUBIC * z**3))
    slope = _GELU_SCALE * (1.0 + 3.0 * _GELU_CUBIC * z**2)
    result: Array = 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t**2) * slope
    return result


def _silu_derivative(z: Array) -> Array:
    s = sigmoid(z)
    result: Array = s * (1.0 + z * (1.0 - s))
    return result


def _elu(z: Array) -> Array:
    # expm1 only sees the non-positive part, so large z cannot overflow it.
    result: Array = np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))
    return result


def _elu_derivative(z: Array) -> Array:
    result: Array = np.where(z > 0, 1.0, np.exp(np.minimum(z, 0.0))).astype(z.dtype)
    return result


ACTIVATIONS: dict[str, Activation] = {
    row.name: row
    for row in (
        Activation("relu", lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype)),
        Activation(
            "leaky_relu",
            lambda z: np.where(z > 0, z, LEAKY_SLOPE * z),
            lambda z: np.where(z > 0, 1.0, LEAKY_SLOPE).astype(z.dtype),
        ),
        Activation("tanh", np.tanh, _tanh_derivative),
        Activation("sigmoid", sigmoid, _sigmoid_derivative),
        Activation("linear", lambda z: z.copy(), np.ones_like),
        Activation("gelu", _gelu, _gelu_derivative),
        Activation("silu", lambda z: z * sigmoid(z), _silu_derivative),
        Activation("elu", _elu, _elu_derivative),
        Activation("softplus", lambda z: np.logaddexp(0.0, z), sigmoid),
    )
}
"""Activation name -> :class:`Activation`; the hidden activations an MLP accepts."""


def get_activation(name: str) -> Activation:
    """Look up an activation by name.

    Parameters
    ----------
    name : str
        One of the keys of :data:`ACTIVATIONS`.

    Returns
    -------
    Activation

    Raises
    ------
    InvalidArgumentError
        For an unknown name; the message lists the valid ones.

    Examples
    --------
    >>> import numpy as np
    >>> relu = get_activation("relu")
    >>> relu.function(np.array([-2.0, 3.0])), relu.derivative(np.array([-2.0, 3.0]))
    (array([0., 3.]), array([0., 1.]))
    """
    if not isinstance(name, str):
        raise InvalidTypeError(
            f"activation: got {type(name).__name__}, expected a name, one of "
            f"{', '.join(ACTIVATIONS)}"
        )
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise InvalidArgumentError(
            f"activation: got {name!r}, expected one of {', '.join(ACTIVATIONS)}"
        ) from None
