"""Low-rank changes: a Linear after a LayerNorm without its matrix product, the layer's values."""

from __future__ import annotations

import operator

import pytest
import torch
from torch import nn

from gradprobe.torch._lowrank import Batched, Low, follow, linear_after_norm, scratch, step

torch.set_num_threads(1)


@pytest.mark.parametrize(
    ("rank", "affine", "bias"), [(1, True, True), (4, True, False), (3, False, True)]
)
def test_a_linear_after_a_norm_gives_the_layers_own_values(
    rank: int, affine: bool, bias: bool
) -> None:
    torch.manual_seed(0)
    norm = nn.LayerNorm(6, elementwise_affine=affine).double()
    if affine:
        with torch.no_grad():
            norm.weight.normal_()
            norm.bias.normal_()
    linear = nn.Linear(6, 5, bias=bias).double()
    count, base = 7, torch.randn(3, 4, 6, dtype=torch.float64)
    coefficients = 1e-3 * torch.randn(count, 3, 4, rank, dtype=torch.float64)
    directions = torch.randn(count, rank, 6, dtype=torch.float64)
    moved = base + coefficients @ directions[:, None]
    low = Low(coefficients, directions)
    with torch.no_grad():
        stepped = step(norm, Batched(moved, low), base, {})
    assert stepped is not None and isinstance(stepped[1], Low)
    assert torch.allclose(stepped[0], norm(moved), rtol=1e-15, atol=1e-15)
    normed = stepped[1]
    cache: dict[object, torch.Tensor] = {}
    with torch.no_grad():
        got = linear_after_norm(linear, normed, cache)
        expected = linear(norm(moved))
        assert got is not None
        assert torch.allclose(got, expected, rtol=1e-13, atol=1e-14)
        # a second batch reuses the product at θ and overwrites the first batch's memory
        first = got.clone()
        opposite = Low(-coefficients, directions)
        back = base - coefficients @ directions[:, None]
        second = step(norm, Batched(back, opposite), base, cache)
        assert second is not None and second[1] is not None
        again = step(linear, Batched(second[0], second[1]), base, cache)
        assert again is not None and again[1] is None
        again = again[0]
        assert again is not None
        assert torch.allclose(again, linear(norm(back)), rtol=1e-13, atol=1e-14)
        assert not torch.allclose(first, again)


def test_sums_with_constants_keep_the_change_and_anything_else_drops_it() -> None:
    coefficients = torch.randn(2, 3, 1, dtype=torch.float64)
    directions = torch.randn(2, 1, 4, dtype=torch.float64)
    low = Low(coefficients, directions)
    base = torch.randn(3, 4, dtype=torch.float64)
    value = Batched(base + coefficients @ directions, low)
    constant = torch.randn(3, 4, dtype=torch.float64)
    assert follow(operator.add, [constant, value], [False, True], [constant, base]) is low
    negated = follow(operator.sub, [constant, value], [False, True], [constant, base])
    assert negated is not None and torch.equal(negated.coefficients, -coefficients)
    assert follow(operator.sub, [value, constant], [True, False], [base, constant]) is low
    assert follow(operator.mul, [value, constant], [True, False], [base, constant]) is None
    assert follow(operator.add, [value, value], [True, True], [base, base]) is None
    wide = torch.randn(5, 3, 4, dtype=torch.float64)  # broadcasting widens the value
    assert follow(operator.add, [value, wide], [True, False], [base, wide]) is None
    assert follow(nn.LayerNorm(4).double(), [value], [True], [base]) is None
    assert step(nn.LayerNorm((3, 4)).double(), value, base, {}) is None  # over two axes
    assert step(nn.Tanh(), value, base, {}) is None
    assert step(("method", "clone"), value, base, {}) is None
    assert step(torch.tanh, value, base, {}) is None
    assert follow(nn.Tanh(), [value], [True], [base]) is None
    assert linear_after_norm(nn.Linear(4, 2).double(), low, {}) is None  # not after a norm


def test_scratch_memory_is_kept_until_its_shape_changes() -> None:
    cache: dict[object, torch.Tensor] = {}
    like = torch.zeros(1, dtype=torch.float64)
    first = scratch(cache, "a", (2, 3), like)
    assert scratch(cache, "a", (2, 3), like) is first
    assert scratch(cache, "a", (4, 3), like).shape == (4, 3)
    assert scratch(cache, "b", (2, 3), like) is not scratch(cache, "a", (2, 3), like)
