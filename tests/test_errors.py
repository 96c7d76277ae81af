"""The exception hierarchy: one base class, and the built-in category where one fits."""

from __future__ import annotations

import numpy as np
import pytest

import gradprobe
from gradprobe import errors
from gradprobe.errors import (
    GradprobeError,
    InvalidArgumentError,
    InvalidTypeError,
    LossEvaluationError,
    NondeterministicLossError,
    NonFiniteError,
    NotFittedError,
    ShapeMismatchError,
)

CATEGORIES = {
    InvalidArgumentError: ValueError,
    InvalidTypeError: TypeError,
    ShapeMismatchError: ValueError,
    NonFiniteError: ValueError,
    LossEvaluationError: RuntimeError,
    NondeterministicLossError: RuntimeError,
    NotFittedError: ValueError,
}


def test_every_public_error_is_a_gradprobe_error_and_exported() -> None:
    classes = [getattr(errors, name) for name in errors.__all__]
    assert set(classes) == {GradprobeError, *CATEGORIES}
    for cls in classes:
        assert issubclass(cls, GradprobeError)
        assert getattr(gradprobe, cls.__name__) is cls
        assert cls.__name__ in gradprobe.__all__
        assert cls.__doc__


@pytest.mark.parametrize(("cls", "builtin"), CATEGORIES.items())
def test_each_error_has_its_builtin_category(cls: type[Exception], builtin: type) -> None:
    assert issubclass(cls, builtin)
    with pytest.raises(builtin, match="the message"):
        raise cls("the message")


def test_value_and_type_errors_stay_apart() -> None:
    assert not issubclass(InvalidTypeError, ValueError)
    assert not issubclass(InvalidArgumentError, TypeError)
    assert issubclass(ShapeMismatchError, InvalidArgumentError)
    assert issubclass(NonFiniteError, InvalidArgumentError)
    assert not issubclass(LossEvaluationError, ValueError)


def test_code_that_knows_only_builtins_catches_gradprobe_errors() -> None:
    # Real calls, not constructed errors: what callers without gradprobe imports see.
    with pytest.raises(ValueError, match="method: got 'sideways'"):
        gradprobe.derivative(np.sin, 0.0, method="sideways")
    with pytest.raises(TypeError, match="eps: got str"):
        gradprobe.derivative(np.sin, 0.0, eps="small")  # type: ignore[call-overload]
    with pytest.raises(RuntimeError, match="loss raised ZeroDivisionError"):
        gradprobe.numerical_gradient(lambda p: 1 / 0, np.ones(2))
    with pytest.raises(ValueError, match="fit") as caught:
        gradprobe.Normalizer().transform(np.ones((2, 2)))
    assert type(caught.value) is NotFittedError


def test_a_random_loss_raises_the_nondeterministic_error() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(NondeterministicLossError) as caught:
        gradprobe.check_gradients(lambda p: float(np.sum(p) + rng.random()), np.ones(3), np.ones(3))
    assert isinstance(caught.value, RuntimeError)


def test_a_transposed_gradient_raises_the_shape_error() -> None:
    W = np.ones((2, 3))
    with pytest.raises(ShapeMismatchError, match=r"\(3, 2\), expected \(2, 3\)"):
        gradprobe.check_gradients(lambda p: float(np.sum(p["W"])), {"W": W}, {"W": W.T})
