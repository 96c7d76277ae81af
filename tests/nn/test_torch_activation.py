import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from gradprobe.errors import ShapeMismatchError
from gradprobe.nn._torch_activation import (
    is_torch,
    takes_only_tensors,
    torch_functions,
    torch_label,
)


def test_what_counts_as_torch():
    assert is_torch(nn.ReLU()) and is_torch(F.mish) and is_torch(torch.tanh)
    assert not is_torch(np.tanh) and not is_torch("relu")
    assert takes_only_tensors(lambda z: torch.relu(z) * 2)
    assert not takes_only_tensors(np.tanh)
    assert not takes_only_tensors(lambda z: z.no_such_method())


def test_labels_say_what_the_module_computes():
    assert torch_label(nn.ReLU()) == "relu" and torch_label(nn.Identity()) == "linear"
    assert torch_label(nn.GELU()) == "gelu (erf)"
    assert torch_label(nn.GELU(approximate="tanh")) == "gelu"
    assert torch_label(nn.LeakyReLU(0.2)) == "leaky_relu(0.2)"
    assert torch_label(F.silu) == "silu" and torch_label(nn.Hardswish()) == "Hardswish"


def test_values_and_exact_slopes_against_closed_forms():
    function, slope = torch_functions(nn.Tanh(), "tanh")
    z = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(function(z), np.tanh(z), rtol=1e-15)
    np.testing.assert_allclose(slope(z), 1 - np.tanh(z) ** 2, rtol=1e-14)
    _, constant = torch_functions(lambda t: torch.zeros_like(t), "zero")
    np.testing.assert_array_equal(constant(z), 0.0)
    shrink, _ = torch_functions(lambda t: t.sum(), "sum")
    with pytest.raises(ShapeMismatchError, match="activation: sum returned"):
        shrink(z)
