"""Properties of the PyTorch entry points: misbehaving code and odd options, module untouched."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import MISBEHAVING, PROPERTY, odd_values, outcome
from torch import nn

from gradprobe.errors import GradprobeError
from gradprobe.torch import check_function, check_module

torch.set_num_threads(1)


def _state(module: nn.Module) -> Any:
    tensors = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    return (
        module.training,
        {name: (t.dtype, t.requires_grad, t.detach().clone()) for name, t in tensors.items()},
    )


def _same(before: Any, after: Any) -> bool:
    if before[0] != after[0] or before[1].keys() != after[1].keys():
        return False
    return all(
        b[0] == a[0] and b[1] == a[1] and torch.equal(b[2], a[2])
        for b, a in zip(before[1].values(), after[1].values(), strict=True)
    )


class _Misbehaving(nn.Module):
    """A linear layer whose forward pass calls one of the misbehaving functions."""

    def __init__(self, function: Any) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)
        self.function = function

    def forward(self, x: torch.Tensor) -> Any:
        self.function(x)
        return self.linear(x)


@PROPERTY
@given(function=st.sampled_from(MISBEHAVING[:6]))
def test_a_module_that_raises_anything_is_a_gradprobe_error(function: Any) -> None:
    torch.manual_seed(0)
    module = _Misbehaving(function).train()
    before = _state(module)
    with pytest.raises(GradprobeError, match="raised"):
        check_module(module, torch.randn(4, 3))
    assert _same(before, _state(module))


@PROPERTY
@given(function=st.sampled_from(MISBEHAVING))
def test_a_misbehaving_function_is_a_gradprobe_error(function: Any) -> None:
    x = torch.randn(3, dtype=torch.float64, requires_grad=True)
    before = x.detach().clone()
    outcome(lambda: check_function(function, x), "fn", "function", "tensor", "output")
    assert torch.equal(x.detach(), before) and x.requires_grad


@PROPERTY
@given(
    argument=st.sampled_from(["eps", "thresholds", "sample", "seed", "mode", "batch_size"]),
    value=odd_values,
)
def test_check_module_names_any_odd_option(argument: str, value: Any) -> None:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    inputs = torch.randn(5, 3)
    before = _state(module), inputs.clone()
    report = outcome(lambda: check_module(module, inputs, **{argument: value}), argument, "loss")
    if report is not None:
        assert str(report) and report.to_dict()
    assert _same(before[0], _state(module)) and torch.equal(before[1], inputs)
