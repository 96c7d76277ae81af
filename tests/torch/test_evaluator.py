"""The evaluator: analytic gradients twice (nondeterminism), batched localize evaluations."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.autograd import Function

from gradprobe.errors import LossEvaluationError, NondeterministicLossError
from gradprobe.torch import check_function, check_module

torch.set_num_threads(1)


class Jittery(Function):
    """tanh whose backward adds a deterministic, ever-changing amount (an atomic-add stand-in)."""

    calls = 0
    amplitude = 1e-13

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        ctx.save_for_backward(x)
        return torch.tanh(x)

    @staticmethod
    def backward(ctx: Any, grad: Any) -> Any:
        (x,) = ctx.saved_tensors
        Jittery.calls += 1
        return grad * (1 - torch.tanh(x) ** 2) + Jittery.amplitude * (Jittery.calls % 3)


def test_a_nondeterministic_backward_is_refused_by_default_and_checked_within_nondet_tol() -> None:
    x = torch.linspace(-1, 1, 5, dtype=torch.float64)
    with pytest.raises(NondeterministicLossError, match=r"backward: two identical backward"):
        check_function(Jittery.apply, x)
    report = check_function(Jittery.apply, x, nondet_tol=1e-11)
    assert report.verdict == "ok"
    assert any("identical backward passes differ by up to 1e-13" in n for n in report.notes)
    Jittery.amplitude = 1e-9
    try:
        with pytest.raises(NondeterministicLossError, match="nondet_tol=1e-11"):
            check_function(Jittery.apply, x, nondet_tol=1e-11)
    finally:
        Jittery.amplitude = 1e-13


def test_a_nondeterministic_forward_within_nondet_tol_is_checked_a_random_one_refused() -> None:
    counter = iter(range(10**6))

    def last_digits(v: Any) -> Any:  # the forward's last digits change from call to call
        return torch.sin(v).sum() + 1e-14 * (next(counter) % 2)

    x = torch.linspace(0, 1, 4, dtype=torch.float64)
    with pytest.raises(NondeterministicLossError, match="same parameters"):
        check_function(last_digits, x)
    assert check_function(last_digits, x, nondet_tol=1e-12).verdict == "ok"
    with pytest.raises(NondeterministicLossError, match="same parameters"):
        check_function(lambda v: nn.functional.dropout(v, 0.5).sum(), x, nondet_tol=1e-12)


def test_localize_group_tests_are_batched_and_give_the_serial_numbers() -> None:
    class Buggy(Function):
        @staticmethod
        def forward(ctx: Any, x: Any, w: Any) -> Any:
            ctx.save_for_backward(x, w)
            return x @ w.T

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            x, w = ctx.saved_tensors
            grad_w = grad.T @ x
            grad_w[7, 3] *= 1.5
            return grad @ w, grad_w

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(20, 10) / 4)

        def forward(self, x: Any) -> Any:
            return torch.tanh(Buggy.apply(x, self.weight))

    module, x = Layer(), torch.randn(5, 10)
    batched = check_module(module, x, mode="localize")
    one = check_module(module, x, mode="localize", batch_size=2)
    assert batched.worst(1)[0].name == "weight[7, 3]" == one.worst(1)[0].name
    numbers = np.array([g.numerical for g in batched.groups])
    assert np.allclose(numbers, [g.numerical for g in one.groups], rtol=1e-9, atol=1e-12)


def test_the_forward_spread_within_nondet_tol_is_reported() -> None:
    counter = iter(range(10**6))

    def last_digits(v: Any) -> Any:
        return torch.sin(v).sum() + 1e-14 * (next(counter) % 2)

    report = check_function(
        last_digits, torch.linspace(0, 1, 4, dtype=torch.float64), nondet_tol=1e-12
    )
    assert any("identical forward passes differ by up to 1e-14" in note for note in report.notes)


def test_a_complex_module_parameter_is_refused_clearly() -> None:
    class Phase(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.phase = nn.Parameter(torch.ones(3, dtype=torch.complex64))

        def forward(self, x: Any) -> Any:
            return (x * self.phase).abs().sum()

    from gradprobe.errors import InvalidTypeError

    with pytest.raises(InvalidTypeError, match="parameter phase is complex"):
        check_module(Phase(), torch.randn(2, 3))


def test_a_non_finite_backward_names_the_arguments_it_may_come_from() -> None:
    with pytest.raises(LossEvaluationError, match=r"^the backward of fn on inputs returned"):
        check_function(lambda x: x * float("nan"), torch.ones(3, dtype=torch.float64))
    model = nn.Linear(3, 2).double()
    with pytest.raises(LossEvaluationError, match=r"module \(with loss_fn, on inputs\)"):
        check_module(model, torch.full((4, 3), float("inf"), dtype=torch.float64))


def test_a_random_backward_names_fn() -> None:
    with pytest.raises(NondeterministicLossError, match=r"^the backward of fn on inputs: two"):
        check_function(lambda x: x * torch.rand(()), torch.ones(3, dtype=torch.float64))
