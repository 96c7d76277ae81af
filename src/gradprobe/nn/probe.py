"""Signal propagation through a gradprobe :class:`~gradprobe.nn.mlp.MLP` on a probe batch.

The network's own forward pass (in evaluation mode) gives ``Z[l]`` and ``A[l]``; the
backward signal is a *probe*, not a task loss: a fixed standard-normal matrix ``G``
(drawn from ``seed``) is fed in as ``dZ[L]`` and backpropagated through the network's
own activation derivatives. That is the gradient of ``J = (1/m)·Σ G ⊙ Z[L]``, so the
statistics depend on the architecture and its weights alone, not on labels or the
output layer. The measurements go to :func:`gradprobe.signals.propagation.assess`,
the judge every probe (NumPy, PyTorch) shares.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradprobe._validate import check_instance, check_seed, check_tolerance
from gradprobe.nn.activations import get_activation
from gradprobe.nn.mlp import MLP
from gradprobe.nn.scale import recommend_scale
from gradprobe.signals.judge import backpropagate, first_nonfinite
from gradprobe.signals.propagation import (
    PropagationReport,
    assess,
    is_symmetric,
    layer_statistics,
)

__all__ = ["propagation"]


def propagation(
    net: MLP, X: Any, *, seed: int | np.random.Generator = 0, tolerance: float = 100.0
) -> PropagationReport:
    """Run one forward and one backward pass of a network on a probe batch and judge it.

    The forward pass is the network's own (in evaluation mode: no dropout). The backward
    pass feeds a standard-normal probe ``G`` of shape ``(m, n_L)`` in as the gradient at
    the last pre-activation and backpropagates it with the network's activation
    derivative (see the module notes), so the result does not depend on labels.

    Parameters
    ----------
    net : MLP
        The network; neither it nor its parameters are changed.
    X : array_like of shape (m, n_0)
        The probe batch, e.g. standard-normal rows or real (normalized) inputs.
    seed : int or numpy.random.Generator, default=0
        Source of the probe gradient ``G``.
    tolerance : float, default=100.0
        The factor by which a second moment may change over the depth and still be
        "healthy".

    Returns
    -------
    PropagationReport

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((128, 64))
    >>> propagation(MLP([64] * 21, init="he", output="linear"), X).verdict
    'healthy'
    >>> report = propagation(MLP([64] * 21, init="zeros", output="linear"), X)
    >>> report.verdict, report.trouble_layer, report.symmetric_layer
    ('vanishing', 1, 1)
    """
    check_instance(
        net, MLP, "net", "a gradprobe MLP", torch_route="gradprobe.torch.propagation(model, x)"
    )
    limit = check_tolerance(tolerance)
    rng = np.random.default_rng(check_seed(seed))
    depth = net.n_layers
    was_training = net.training
    net.eval()
    try:
        with np.errstate(all="ignore"):
            _, cache = net.forward(X)
    finally:
        net.training = was_training
    probe = rng.standard_normal(cache.Z[depth].shape)
    weights = {layer: cache.params[f"W{layer}"] for layer in range(1, depth + 1)}
    hidden = get_activation(net.activation)
    with np.errstate(all="ignore"):
        dZ, _, dW = backpropagate(cache.Z, cache.A, weights, hidden.derivative, probe, cache.masks)
        layers = [
            layer_statistics(
                layer,
                cache.Z[layer],
                cache.A[layer],
                dZ[layer],
                dW[layer],
                dW.get(layer + 1),
                weights[layer],
                net.activation if layer < depth else net.output,
            )
            for layer in range(1, depth + 1)
        ]
        # Z, not A: an output sigmoid or a tanh turns an infinite Z into a finite A.
        forward_overflow = first_nonfinite(cache.Z, depth)
        backward_bad = [
            layer for layer in range(1, depth + 1) if not np.all(np.isfinite(dW[layer]))
        ]
    overflow = (
        (forward_overflow, "forward")
        if forward_overflow is not None
        else (max(backward_bad) if backward_bad else None, "backward")
    )
    symmetric = next((layer for layer in range(1, depth) if is_symmetric(cache.A[layer])), None)
    return assess(
        layers,
        activation=net.activation,
        input_values=np.asarray(cache.A[0], dtype=np.float64),
        overflow=overflow,
        symmetric=symmetric,
        recommended=recommend_scale(net.activation).forward,
        weight_sizes=np.array([weights[layer].size for layer in range(1, depth + 1)]),
        tolerance=limit,
    )
