"""The probe's mode for a PyTorch model, and everything put back afterwards: :func:`borrowed`.

The model's training flags, parameters, buffers and ``.grad`` attributes, and PyTorch's
random state, grad mode, default dtype and attention fast-path flag are restored on exit,
whatever happened inside.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["borrowed", "kept"]


@contextmanager
def kept(model: nn.Module, parameters: bool = True) -> Iterator[None]:
    """Restore ``model``'s training flags, buffers and (unless told not to) parameters on exit.

    Values are copied back into the same tensor objects, and only where they changed: an
    in-place copy bumps the tensor's version counter.
    """
    flags = [(module, module.training) for module in model.modules()]
    tensors = (*model.parameters(), *model.buffers()) if parameters else tuple(model.buffers())
    saved = [(tensor, tensor.detach().clone()) for tensor in tensors]
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag
        with torch.no_grad():
            for tensor, value in saved:
                if tensor.shape != value.shape or not torch.equal(tensor, value):
                    tensor.copy_(value)


@contextmanager
def borrowed(model: nn.Module, training: bool, parameters: bool = True) -> Iterator[None]:
    """Put ``model`` in the probe's mode; restore it and PyTorch's global state on exit.

    The probe's mode is ``model.train(training)`` with every dropout (and attention
    dropout) off, so the probe is deterministic and batch norm uses batch statistics as
    in training. ``parameters=False`` keeps the parameters as they are on exit (for
    functions that change them on purpose); buffers are always restored.
    """
    grads = [(parameter, parameter.grad) for parameter in model.parameters()]
    dtype = torch.get_default_dtype()
    fastpath = torch.backends.mha.get_fastpath_enabled()
    everything = (*model.parameters(), *model.buffers())
    devices = sorted({t.device.index or 0 for t in everything if t.device.type == "cuda"})
    with kept(model, parameters), torch.random.fork_rng(devices=devices), torch.enable_grad():
        try:
            # The fused attention path skips the submodule calls the hooks observe.
            torch.backends.mha.set_fastpath_enabled(False)
            model.train(training)
            for module in model.modules():
                if isinstance(module, (nn.modules.dropout._DropoutNd, nn.MultiheadAttention)):
                    module.eval()
            yield
        finally:
            for parameter, grad in grads:
                parameter.grad = grad
            torch.backends.mha.set_fastpath_enabled(fastpath)
            torch.set_default_dtype(dtype)
