"""A PyTorch model with a hand-written backward pass, ready for ``gradprobe check``.

``gradprobe check FILE.py`` accepts a PyTorch file too; it looks for:

* ``module``: a ``torch.nn.Module`` (checked in eval mode, left exactly as it was);
* ``inputs``: its input tensor, or a tuple of positional arguments;
* ``loss_fn`` (optional): reduces the output to a scalar, as ``loss_fn(output, targets)``;
  without it the output is summed;
* ``targets`` (optional): passed to ``loss_fn``.

The gradients of every named parameter are checked in float64 (the float32 model
is copied, never modified), and a failure is named the PyTorch way, such as
``hidden.bias[3]``. Try both::

    gradprobe check examples/torch_module.py         # exit 0: ok
    gradprobe check examples/torch_module_buggy.py   # exit 1: hidden.bias is wrong

The same check from Python::

    from gradprobe.torch import check_module
    print(check_module(module, inputs, loss_fn, targets))
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class LinearFunction(torch.autograd.Function):
    """``x @ W.T + b`` with its backward written by hand (PyTorch's "Extending" example)."""

    planted_bug = False

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> Any:
        ctx.save_for_backward(x, weight)
        return x @ weight.T + bias

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        x, weight = ctx.saved_tensors
        # The bias is broadcast over the examples, so its gradient sums over them.
        grad_bias = grad.mean(0) if LinearFunction.planted_bug else grad.sum(0)
        return grad @ weight, grad.T @ x, grad_bias


class HandWrittenLinear(nn.Module):
    """A linear layer whose backward pass is :class:`LinearFunction`'s."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) * (2.0 / n_in) ** 0.5)
        self.bias = nn.Parameter(torch.zeros(n_out) + 0.1)

    def forward(self, x: torch.Tensor) -> Any:
        return LinearFunction.apply(x, self.weight, self.bias)


def build(planted_bug: bool = False) -> tuple[nn.Module, torch.Tensor, Any, torch.Tensor]:
    """Return ``(module, inputs, loss_fn, targets)``: a 6-8-3 classifier on 16 examples."""
    LinearFunction.planted_bug = planted_bug
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("hidden", HandWrittenLinear(6, 8))
    model.add_module("activation", nn.Tanh())
    model.add_module("dropout", nn.Dropout(0.2))  # switched off during the check
    model.add_module("out", nn.Linear(8, 3))
    X = torch.randn(16, 6, generator=generator)
    y = torch.randint(0, 3, (16,), generator=generator)
    return model, X, nn.functional.cross_entropy, y


module, inputs, loss_fn, targets = build()
