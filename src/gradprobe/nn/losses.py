"""Output layers paired with their losses, each with the loss's gradient.

An MLP's last layer and its loss belong together: the pairs below are the ones
whose gradient with respect to the last pre-activation ``Z`` (shape ``(m, k)``)
collapses to a difference, so backprop starts from it directly.

=========  ========================  ===================================  ====================
output     loss                      J(Z, Y)                              ∂J/∂Z, with A = g(Z)
=========  ========================  ===================================  ====================
sigmoid    binary cross-entropy      (1/m) Σ softplus(z) − y·z            (A − Y) / m
softmax    categorical cross-ent.    (1/m) Σ y·(logsumexp(z) − z)         (A·ΣY − Y) / m
linear     mean squared error        (1/(m·k)) Σ (z − y)²                 2 (A − Y) / (m·k)
=========  ========================  ===================================  ====================

(``ΣY`` is each row's sum, 1 for one-hot targets.)

The losses are computed from the logits ``Z``, never from probabilities, with
``softplus(z) = log(1 + e^z)`` via ``logaddexp`` and ``logsumexp`` shifted by the
row maximum, so a logit of ±10⁴ gives a finite loss, not NaN or infinity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradprobe._validate import as_array
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, ShapeMismatchError
from gradprobe.nn.activations import sigmoid

__all__ = [
    "OUTPUTS",
    "OutputLoss",
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "encode_targets",
    "get_output",
    "mean_squared_error",
    "softmax",
]

Array = NDArray[np.floating[Any]]


def softmax(z: Array) -> Array:
    """Return the row-wise softmax of logits ``z`` of shape ``(m, k)`` without overflow.

    Examples
    --------
    >>> import numpy as np
    >>> softmax(np.array([[1000.0, 1000.0]]))
    array([[0.5, 0.5]])
    """
    shifted = np.exp(z - z.max(axis=1, keepdims=True))
    result: Array = shifted / shifted.sum(axis=1, keepdims=True)
    return result


def _logsumexp(z: Array) -> Array:
    top = z.max(axis=1, keepdims=True)
    result: Array = top + np.log(np.exp(z - top).sum(axis=1, keepdims=True))
    return result


def binary_cross_entropy(z: Array, y: Array) -> float:
    """Return the mean binary cross-entropy of sigmoid outputs, computed from logits.

    Parameters
    ----------
    z : ndarray of shape (m, k)
        Logits; the predicted probabilities are ``σ(z)``.
    y : ndarray of shape (m, k)
        Targets in [0, 1].

    Returns
    -------
    float
        ``−(1/m) Σ y·log σ(z) + (1 − y)·log(1 − σ(z))``, summed over the ``k`` units.

    Examples
    --------
    >>> import numpy as np
    >>> round(binary_cross_entropy(np.zeros((4, 1)), np.array([[0.0], [1.0], [1.0], [0.0]])), 4)
    0.6931
    """
    # −y·log σ(z) − (1−y)·log(1−σ(z)) = softplus(z) − y·z exactly.
    return float((np.logaddexp(0.0, z) - y * z).sum() / z.shape[0])


def categorical_cross_entropy(z: Array, y: Array) -> float:
    """Return the mean categorical cross-entropy of softmax outputs, computed from logits.

    Parameters
    ----------
    z : ndarray of shape (m, k)
        Logits.
    y : ndarray of shape (m, k)
        One-hot targets (or class probabilities).

    Returns
    -------
    float
        ``−(1/m) Σ y·log softmax(z)``.

    Examples
    --------
    >>> import numpy as np
    >>> round(categorical_cross_entropy(np.zeros((2, 4)), np.eye(4)[:2]), 4)  # log 4
    1.3863
    """
    return float(np.sum(y * (_logsumexp(z) - z)) / z.shape[0])


def mean_squared_error(z: Array, y: Array) -> float:
    """Return the mean over all ``m·k`` entries of ``(z − y)²``.

    Examples
    --------
    >>> import numpy as np
    >>> mean_squared_error(np.array([[1.0], [3.0]]), np.array([[0.0], [0.0]]))
    5.0
    """
    return float(np.mean((z - y) ** 2))


@dataclass(frozen=True)
class OutputLoss:
    """An output activation, its loss and the loss's gradient with respect to the logits.

    Attributes
    ----------
    output : str
        ``"sigmoid"``, ``"softmax"`` or ``"linear"``.
    loss_name : str
        The loss paired with it.
    activate : callable
        ``Z (m, k) -> A (m, k)``, the network's output.
    loss : callable
        ``(Z, Y) -> float``, the mean loss over the ``m`` examples.
    gradient : callable
        ``(A, Y) -> dZ (m, k)``, the gradient of ``loss`` with respect to the logits
        ``Z``, written in terms of the output ``A = activate(Z)`` (no recomputation).
    """

    output: str
    loss_name: str
    activate: Callable[[Array], Array]
    loss: Callable[[Array, Array], float]
    gradient: Callable[[Array, Array], Array]


OUTPUTS: dict[str, OutputLoss] = {
    row.output: row
    for row in (
        OutputLoss(
            "sigmoid",
            "binary cross-entropy",
            sigmoid,
            binary_cross_entropy,
            lambda a, y: (a - y) / a.shape[0],
        ),
        OutputLoss(
            "softmax",
            "categorical cross-entropy",
            softmax,
            categorical_cross_entropy,
            lambda a, y: (a * y.sum(axis=1, keepdims=True) - y) / a.shape[0],
        ),
        OutputLoss(
            "linear",
            "mean squared error",
            lambda z: z.copy(),
            mean_squared_error,
            lambda a, y: 2.0 * (a - y) / a.size,
        ),
    )
}
"""Output name -> :class:`OutputLoss`."""


def get_output(name: str) -> OutputLoss:
    """Look up an output/loss pair by the output's name.

    Raises
    ------
    InvalidArgumentError
        For an unknown name; the message lists the valid ones.

    Examples
    --------
    >>> get_output("softmax").loss_name
    'categorical cross-entropy'
    """
    if not isinstance(name, str) or name not in OUTPUTS:
        raise InvalidArgumentError(f"output: got {name!r}, expected one of {', '.join(OUTPUTS)}")
    return OUTPUTS[name]


def encode_targets(
    y: Any, output: str, n_outputs: int, n_examples: int, argument: str = "y"
) -> NDArray[np.float64]:
    """Turn labels into the float target matrix ``Y`` of shape ``(m, k)`` a loss expects.

    Parameters
    ----------
    y : array_like
        For ``"sigmoid"``: 0/1 labels of shape ``(m,)`` (when ``k = 1``) or ``(m, k)``.
        For ``"softmax"``: integer class labels of shape ``(m,)`` in ``[0, k)``, or
        one-hot rows of shape ``(m, k)``. For ``"linear"``: targets of shape ``(m,)``
        (when ``k = 1``) or ``(m, k)``.
    output : {"sigmoid", "softmax", "linear"}
        The network's output layer.
    n_outputs : int
        ``k``, the width of the output layer.
    n_examples : int
        ``m``, the number of rows of ``X``.
    argument : str, default="y"
        The argument's name, used in error messages.

    Returns
    -------
    ndarray of float64, shape (m, k)
        A new array; ``y`` is not modified.

    Raises
    ------
    ShapeMismatchError
        When ``y`` does not have ``m`` rows or ``k`` columns.
    InvalidArgumentError
        For non-finite values, labels outside ``[0, k)`` or targets outside ``[0, 1]``.

    Examples
    --------
    >>> encode_targets([2, 0], "softmax", n_outputs=3, n_examples=2)
    array([[0., 0., 1.],
           [1., 0., 0.]])
    """
    get_output(output)
    labels = as_array(y, argument)
    if labels.dtype.kind not in "biuf":
        raise InvalidTypeError(f"{argument}: got dtype {labels.dtype}, expected numeric labels")
    if labels.ndim == 0 or labels.ndim > 2 or labels.shape[0] != n_examples:
        raise ShapeMismatchError(
            f"{argument}: got shape {labels.shape}, expected {n_examples} labels, one per row "
            f"of X: shape ({n_examples},) or ({n_examples}, {n_outputs})"
        )
    values = labels.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise InvalidArgumentError(
            f"{argument}: got NaN or infinity at row(s) "
            f"{np.flatnonzero(~np.isfinite(values).reshape(n_examples, -1).all(axis=1))[:5]}, "
            "expected finite targets"
        )
    if output == "softmax" and labels.ndim == 1:
        if np.any(values != np.round(values)) or values.min() < 0 or values.max() >= n_outputs:
            raise InvalidArgumentError(
                f"{argument}: got labels from {values.min():g} to {values.max():g}, expected "
                f"integer class labels 0..{n_outputs - 1} for a softmax of {n_outputs} units"
            )
        return np.eye(n_outputs)[values.astype(np.intp)]
    if labels.ndim == 1:
        if n_outputs != 1:
            raise ShapeMismatchError(
                f"{argument}: got shape {labels.shape}, expected ({n_examples}, {n_outputs}) "
                f"for an output layer of {n_outputs} units"
            )
        values = values.reshape(n_examples, 1)
    if values.shape[1] != n_outputs:
        raise ShapeMismatchError(
            f"{argument}: got shape {labels.shape}, expected ({n_examples}, {n_outputs}) for an "
            f"output layer of {n_outputs} units"
        )
    if output != "linear" and (values.min() < 0 or values.max() > 1):
        raise InvalidArgumentError(
            f"{argument}: got values from {values.min():g} to {values.max():g}, expected "
            f"targets in [0, 1] for a {output} output (0/1 labels or one-hot rows)"
        )
    return values
