"""Gradient check of an MLP's own backprop, following the course notes' rules.

The course notes' rules for gradient checking, and how :func:`check_model` keeps them:

* "Remember regularization": the checked loss and the gradients both include the
  L2 term, because both come from the network's own ``loss`` and ``backward``.
* "Doesn't work with dropout": the check runs in evaluation mode, so the loss is
  deterministic; the network's mode is restored afterwards.
* "Run at random initialization; perhaps again after some training": the check
  reads the network's current parameters, so it can run at any point.
* "Look at components to try identify bug": the report has one row per parameter
  (``W1, b1, …``) and lists the wrong ones.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

import numpy as np

from gradprobe._validate import check_instance
from gradprobe.check.checker import DEFAULT_THRESHOLDS, GradCheckReport, prepare_check, run_prepared
from gradprobe.nn.fastcheck import MLPEvaluator, MLPLoss
from gradprobe.nn.mlp import MLP
from gradprobe.numdiff.batched import DEFAULT_MEMORY, ThetaEvaluator
from gradprobe.numdiff.parallel import resolve_executor

__all__ = ["check_model"]


def check_model(
    net: MLP,
    X: Any,
    y: Any,
    *,
    eps: float | None = None,
    method: str = "central",
    thresholds: tuple[float, float] = DEFAULT_THRESHOLDS,
    sample: int | None = None,
    seed: int | np.random.Generator = 0,
    mode: str = "auto",
    executor: Executor | None = None,
    workers: int | None = None,
    memory: int = DEFAULT_MEMORY,
    progress: Any = None,
) -> GradCheckReport:
    """Check the network's backprop against numerical gradients of its own loss.

    The loss checked is ``net.loss(X, y, params=θ)`` in evaluation mode (dropout
    off), L2 term included; the analytic gradients are ``net.backward`` on the same
    pass. ``net.params`` and ``net.training`` are left as they were.

    Parameters
    ----------
    net : MLP
        The network, at random initialization or after training; not modified.
    X : array_like of shape (m, n_0)
        A few examples: the check costs two loss evaluations per parameter value.
    y : array_like
        Their labels, as for :meth:`MLP.loss`.
    eps, method, thresholds, sample, seed, mode, executor, workers, memory, progress
        As for :func:`gradprobe.check_gradients` (Ctrl-C returns a partial report too).
        The full check is structure-aware
        (:mod:`gradprobe.nn.fastcheck`): one cached forward pass, a rank-1 update per
        perturbed weight, perturbations batched through the remaining layers.

    Returns
    -------
    GradCheckReport
        Its ``notes`` say that dropout was switched off and whether an L2 term was included.

    Raises
    ------
    InvalidTypeError
        When ``net`` is not an :class:`MLP`.

    Examples
    --------
    >>> import numpy as np
    >>> net = MLP([3, 4, 1], activation="tanh", l2=0.1, dropout=0.5, seed=0)
    >>> X = np.random.default_rng(0).normal(size=(6, 3))
    >>> report = check_model(net, X, [0, 1, 0, 1, 1, 0])
    >>> report.verdict, net.training
    ('ok', True)
    """
    check_instance(
        net, MLP, "net", "a gradprobe MLP",
        torch_route="gradprobe.torch.check_module(model, inputs, loss_fn, targets)",
        otherwise="; for other models call gradprobe.check_gradients(loss, params, grads) directly",
    )  # fmt: skip
    X = net.features(X)
    notes = [f"loss: {net.output} output with its loss, on {np.shape(X)[0]} examples"]
    if net.dropout > 0:
        notes.append(
            f"dropout (p={net.dropout:g}) switched off for the check: a random loss cannot be "
            "differentiated numerically; the network's mode was restored afterwards"
        )
    if net.l2 > 0:
        notes.append(f"L2 term λ/(2m)·Σ‖W‖² with λ={net.l2:g} included in the loss and gradients")
    else:
        notes.append("no L2 term (l2=0)")
    was_training = net.training
    net.eval()
    try:
        setup = prepare_check(
            net.params, thresholds=thresholds, sample=sample, seed=seed, memory=memory, mode=mode
        )

        def grads(params: dict[str, Any]) -> Any:
            return net.loss_and_grads(X, y, params)[1]

        with resolve_executor(executor, workers) as pool:
            # The full check uses the layers (MLPEvaluator); localizing needs few values
            # and takes them from net.loss itself.
            evaluate = (
                MLPEvaluator(net, X, y, setup.theta, executor=pool, memory=setup.memory)
                if setup.mode == "full"
                else ThetaEvaluator(
                    MLPLoss(net, X, y), setup.layout, executor=pool, memory=setup.memory
                )
            )
            return run_prepared(
                evaluate, setup, grads, eps=eps, method=method, notes=notes, progress=progress
            )
    finally:
        net.training = was_training
