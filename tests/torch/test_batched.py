"""Layers applied to a batch as one more leading axis give what torch.vmap gives."""

from __future__ import annotations

import operator
from typing import Any

import pytest
import torch
from torch import nn

from gradprobe.torch._batched import apply

torch.set_num_threads(1)


def _norm() -> nn.Module:
    norm = nn.BatchNorm2d(3).double().eval()
    with torch.no_grad():
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
        norm.weight.uniform_(0.5, 2)
        norm.bias.uniform_(-1, 1)
    return norm


CASES: list[tuple[str, Any, tuple[int, ...], tuple[Any, ...]]] = [
    ("relu", nn.ReLU(), (4, 3, 2, 2), ()),
    ("gelu", nn.GELU(), (4, 5), ()),
    ("linear", nn.Linear(5, 2).double(), (4, 5), ()),
    ("layer_norm", nn.LayerNorm(5).double(), (2, 4, 5), ()),
    ("flatten", nn.Flatten(), (4, 3, 2, 2), ()),
    ("batch_norm", _norm(), (4, 3, 2, 2), ()),
    ("dropout_eval", nn.Dropout(0.5).eval(), (4, 5), ()),
    ("method_tanh", ("method", "tanh"), (4, 5), ()),
    ("method_flatten", ("method", "flatten"), (4, 3, 2), (1,)),
    ("function_leaky", nn.functional.leaky_relu, (4, 5), (0.2,)),
]


@pytest.mark.parametrize(("name", "call", "shape", "extra"), CASES, ids=[c[0] for c in CASES])
def test_each_layer_matches_vmap(
    name: str, call: Any, shape: tuple[int, ...], extra: tuple
) -> None:
    batch = torch.randn(6, *shape, dtype=torch.float64)

    def one(x: Any) -> Any:
        if isinstance(call, tuple):
            return getattr(x, call[1])(*extra)
        return call(x, *extra)

    expected = torch.vmap(one)(batch)
    got = apply(call, [batch, *extra], {}, [True, *([False] * len(extra))], one(batch[0]))
    assert got is not None
    assert torch.allclose(got, expected, rtol=1e-14, atol=1e-15)
    reused = apply(
        call, [batch.clone(), *extra], {}, [True, *([False] * len(extra))], one(batch[0]), True
    )
    assert reused is not None and torch.allclose(reused, expected, rtol=1e-14, atol=1e-15)


def test_arithmetic_lines_the_batch_up_on_the_left() -> None:
    batch = torch.randn(6, 3, 4, dtype=torch.float64)
    constant = torch.randn(4, dtype=torch.float64)
    out = batch[0] + constant
    got = apply(operator.add, [batch, constant], {}, [True, False], out)
    assert got is not None and torch.equal(got, batch + constant)
    swapped = apply(operator.sub, [constant, batch], {}, [False, True], out)
    assert swapped is not None and torch.equal(swapped, constant - batch)
    both = apply(operator.mul, [batch, batch], {}, [True, True], out)
    assert both is not None and torch.equal(both, batch * batch)
    # A batched operand with fewer dimensions than the result would misalign: refused.
    small = torch.randn(6, 4, dtype=torch.float64)
    assert apply(operator.add, [small, batch[0]], {}, [True, False], out) is None


def test_anything_else_is_left_to_vmap() -> None:
    batch = torch.randn(6, 2, 3, 4, 4, dtype=torch.float64)
    conv = nn.Conv2d(3, 2, 3).double()
    assert apply(conv, [batch], {}, [True], conv(batch[0])) is None
    relu = nn.ReLU(inplace=True)
    assert apply(relu, [batch], {}, [True], batch[0]) is None  # in place on a shared value
    hooked = nn.Tanh()
    hooked.register_forward_hook(lambda m, i, o: o * 2)
    assert apply(hooked, [batch], {}, [True], batch[0]) is None


def test_gelu_is_torchs_exact_gelu_to_rounding_and_can_overwrite_its_input() -> None:
    from gradprobe.torch._batched import gelu

    x = torch.linspace(-9, 9, 2001, dtype=torch.float64)
    expected = torch.nn.functional.gelu(x)

    def close(got: torch.Tensor) -> bool:
        # within a few ulp of x: the rounding of x·Φ(x) itself (far left, Φ(x) ≈ 0)
        return bool(((got - expected).abs() <= 4e-16 * (1 + x.abs())).all())

    assert close(gelu(x))
    kept: dict[object, torch.Tensor] = {}
    copy = x.clone()
    out = gelu(copy, kept)
    assert out is copy and close(out)
    assert not close(gelu(x + 1e-3))


def test_gelu_near_its_point_is_gelu_to_rounding_and_refuses_steps_too_large() -> None:
    from gradprobe.torch._batched import gelu_near

    torch.manual_seed(0)
    near = 3 * torch.randn(6, 40, dtype=torch.float64)
    at = torch.nn.functional.gelu(near)
    for size in (1e-9, 1e-6, 2e-5):
        x = near + size * torch.randn(5, 6, 40, dtype=torch.float64)
        got = gelu_near(x, near, at)
        assert got is not None
        exact = torch.nn.functional.gelu(x)
        assert bool(((got - exact).abs() <= 4e-16 * (1 + x.abs())).all()), size
        kept: dict[object, torch.Tensor] = {}
        copy = x.clone()
        assert torch.equal(gelu_near(copy, near, at, kept), got)  # in place, same values
    # a step whose remainder bound exceeds the rounding is refused (computed exactly then)
    far = near + 1e-2 * torch.randn(5, 6, 40, dtype=torch.float64)
    assert gelu_near(far, near, at) is None
    assert gelu_near(far, near[:, :3], at[:, :3]) is None  # shapes that do not line up
