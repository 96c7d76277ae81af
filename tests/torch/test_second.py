"""Second-order checks: check_function(order=2) beside torch.autograd.gradgradcheck."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.autograd import Function

from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.torch import check_function
from gradprobe.torch._second import second_order

torch.set_num_threads(1)


class Cube(Function):
    """x³ whose backward is written with tensor operations, so double backward exists."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx: Any, grad: Any) -> Any:
        (x,) = ctx.saved_tensors
        return grad * 3 * x**2


class DetachedCube(Function):
    """The same backward computed from a detached x: first order right, second order wrong."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx: Any, grad: Any) -> Any:
        (x,) = ctx.saved_tensors
        return grad * 3 * x.detach() ** 2


def _x() -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    return torch.randn(4, dtype=torch.float64, generator=generator).requires_grad_(True)


def test_second_order_passes_a_correct_double_backward_and_pins_a_wrong_one() -> None:
    x = _x()
    assert check_function(Cube.apply, x).verdict == "ok"
    assert check_function(DetachedCube.apply, x).verdict == "ok"  # first order cannot see it
    good = check_function(Cube.apply, x, order=2)
    assert good.verdict == "ok", str(good)
    assert [row.name for row in good.parameters] == ["input0", "grad_output0"]
    bad = check_function(DetachedCube.apply, x, order=2)
    assert bad.verdict == "wrong"
    assert bad.wrong_parameters == ["input0"]  # ∂²/∂x² is missing; ∂/∂v is still right
    assert torch.autograd.gradgradcheck(Cube.apply, (x,), raise_exception=False)
    assert not torch.autograd.gradgradcheck(DetachedCube.apply, (x,), raise_exception=False)


def test_given_grad_outputs_are_used_and_checked() -> None:
    x = _x()
    v = torch.linspace(-1, 1, 4, dtype=torch.float64)
    fixed = check_function(torch.tanh, x, order=2, grad_outputs=v)
    assert fixed.verdict == "ok"
    assert [row.name for row in fixed.parameters] == ["input0"]  # v does not require grad
    both = check_function(torch.tanh, x, order=2, grad_outputs=v.requires_grad_(True))
    assert [row.name for row in both.parameters] == ["input0", "grad_output0"]


def test_second_order_arguments_are_checked() -> None:
    x = _x()
    with pytest.raises(InvalidArgumentError, match="grad_outputs: got 2 tensors, expected 1"):
        check_function(torch.tanh, x, order=2, grad_outputs=(x, x))
    with pytest.raises(InvalidArgumentError, match=r"grad_outputs\[0\]: got shape \(2,\)"):
        check_function(torch.tanh, x, order=2, grad_outputs=torch.ones(2))
    with pytest.raises(InvalidTypeError, match=r"grad_outputs\[0\]: got int"):
        second_order(torch.tanh, (x,), {}, [3], 0, [])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError, match="order: got 3"):
        check_function(torch.tanh, x, order=3)
    with pytest.raises(InvalidArgumentError, match="grad_outputs: got tensors with order=1"):
        check_function(torch.tanh, x, grad_outputs=x)


def test_the_vector_jacobian_product_is_autograds() -> None:
    x = _x()
    vjp, positional, keywords = second_order(torch.sin, (x,), {}, None, 0, [])
    (gradient,) = vjp(*positional, **keywords)
    v = keywords["grad_output0"]
    assert torch.allclose(gradient, torch.cos(x) * v)
    assert positional[0].requires_grad and v.requires_grad


CUDA = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device here: the CUDA route is not run"
)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_second_order_on_each_device(device: str) -> None:
    x = _x().detach().to(device).requires_grad_(True)
    assert check_function(Cube.apply, x, order=2).verdict == "ok"
    assert check_function(DetachedCube.apply, x, order=2).verdict == "wrong"
