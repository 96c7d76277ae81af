"""A JAX MLP checked through gradprobe's structure-aware MLP evaluator.

A JAX function that computes a plain dense stack (found in its jaxpr by
:func:`gradprobe.jax._dense.read_stack`) under softmax cross-entropy, mean squared
error or binary cross-entropy with logits *is* gradprobe's
:class:`~gradprobe.nn.mlp.MLP` with that loss. Its numerical derivatives then come
from :class:`~gradprobe.nn.fastcheck.MLPEvaluator`, which answers each perturbation
from one cached forward pass instead of running the network again, as the PyTorch
adapter does for an ``nn.Sequential`` (:mod:`gradprobe.torch._mlp`; the shared part
is :mod:`gradprobe.nn._replica`). The copy is used only after its loss has been shown
to equal the function's at arbitrary logits, at θ and at perturbed points, to
rounding; the analytic gradient is still JAX's own, from ``jax.vjp`` (a wrong
``jax.custom_vjp`` rule is what the check then finds). Anything else goes through
:class:`~gradprobe.jax._evaluator.Evaluator`, compiled and batched.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gradprobe._params import ParameterLayout
from gradprobe.errors import GradprobeError
from gradprobe.jax._dense import DenseStack, read_stack
from gradprobe.jax._evaluator import Evaluator
from gradprobe.jax._problem import Problem
from gradprobe.nn._replica import LOSSES, ReplicaRoute, agreement, build_mlp, route_note
from gradprobe.nn.fastcheck import MLPEvaluator
from gradprobe.nn.losses import encode_targets, get_output
from gradprobe.nn.mlp import MLP
from gradprobe.numdiff.batched import DEFAULT_MEMORY

__all__ = ["ReplicaEvaluator", "evaluator_for"]

# Agreement demanded between the function's loss and gradprobe's at given logits.
_LOSS_AGREEMENT = 1e-11


class ReplicaEvaluator(ReplicaRoute, Evaluator):
    """The JAX evaluator whose values at θ and one coordinate away come from the MLP's.

    Parameters
    ----------
    problem : Problem
        The check's problem.
    memory : int
        Bytes one chunk of the generic route's evaluations may take.
    replica : MLPEvaluator
        The evaluator of the equal MLP, at the same point.
    to_full : ndarray of intp, shape (size,)
        For each value of θ, its position in the MLP's θ.
    """

    def __init__(
        self, problem: Problem, memory: int, replica: MLPEvaluator, to_full: NDArray[np.intp]
    ) -> None:
        super().__init__(problem, memory)
        self.attach(replica, problem.theta, to_full)


def evaluator_for(problem: Problem, memory: int = DEFAULT_MEMORY) -> Evaluator:
    """Return the MLP route's evaluator when ``problem`` is a plain MLP, else the generic one."""
    stack = read_stack(problem)
    routed = None if stack is None else _replica(problem, memory, stack)
    return Evaluator(problem, memory) if routed is None else routed


def _copy(problem: Problem, stack: DenseStack) -> MLP | None:
    """Return gradprobe's MLP whose loss equals the function's at any logits, or None."""
    layout = problem.layout

    def leaf(k: int) -> NDArray[np.float64]:
        values = problem.theta[layout.offsets[k] : layout.offsets[k + 1]]
        return values.reshape(layout.shapes[k])

    layers = [
        (leaf(layer.weight).T if layer.kernel else leaf(layer.weight), leaf(layer.bias))
        for layer in stack.layers
    ]
    outputs = layers[-1][1].size
    m = len(stack.inputs)
    candidates = (["softmax"] if outputs >= 2 else ["sigmoid"]) + ["linear"]
    rng = np.random.default_rng(0)
    for output in candidates:
        try:
            net = build_mlp(stack.activation, output, layers)
            encoded = encode_targets(stack.targets, output, outputs, m)
            _, cache = net.forward(stack.inputs)
        except GradprobeError:
            continue
        logits = np.asarray(cache.Z[len(layers)], dtype=np.float64)
        trials = [
            logits,
            3.0 * logits + rng.normal(size=logits.shape),
            5 * rng.normal(size=logits.shape),
        ]
        score = get_output(output).loss
        try:
            same = all(
                abs(stack.loss(z) - score(z, encoded))
                <= _LOSS_AGREEMENT * max(1.0, abs(score(z, encoded)))
                for z in trials
            )
        except Exception:  # noqa: BLE001 - the loss raised at other logits: not this loss
            same = False
        if same:
            return net
    return None


def _replica(problem: Problem, memory: int, stack: DenseStack) -> ReplicaEvaluator | None:
    """Build the MLP route's evaluator, or None when the copy does not equal the function."""
    net = _copy(problem, stack)
    if net is None:
        return None
    layout = problem.layout
    full = ParameterLayout.from_params(net.params)
    to_full = np.empty(layout.size, dtype=np.intp)
    for number, layer in enumerate(stack.layers):
        weight = net.params[f"W{number + 1}"]
        local = np.arange(weight.size).reshape(weight.shape)
        start = full.offsets[2 * number]
        span = slice(layout.offsets[layer.weight], layout.offsets[layer.weight + 1])
        to_full[span] = start + (local.T.ravel() if layer.kernel else local.ravel())
        span = slice(layout.offsets[layer.bias], layout.offsets[layer.bias + 1])
        to_full[span] = full.offsets[2 * number + 1] + np.arange(weight.shape[0])
    replica = MLPEvaluator(
        net, stack.inputs, stack.targets, full.flatten(net.params), memory=memory
    )
    evaluator = ReplicaEvaluator(problem, memory, replica, to_full)

    def function_loss(at: list[tuple[int | None, float]]) -> NDArray[np.float64]:
        thetas = np.tile(problem.theta, (len(at), 1))
        for row, (index, value) in enumerate(at):
            if index is not None:
                thetas[row, index] = value
        return stack.function(
            [
                thetas[:, layout.offsets[k] : layout.offsets[k + 1]].reshape(-1, *layout.shapes[k])
                for k in range(len(layout.names))
            ]
        )

    points = agreement(evaluator, layout, function_loss)
    what = f"plain {net.activation} MLP {net.layer_sizes} under {LOSSES[net.output]}"
    if points is None:
        problem.notes.append(
            f"f looks like a {what}, but gradprobe's copy of it did not agree with f to 1e-12; "
            "the numerical values came from the compiled, batched JAX evaluator"
        )
        return None
    problem.notes.append(route_note(net, "JAX", "function", points, "JAX's own, from jax.vjp"))
    return evaluator
