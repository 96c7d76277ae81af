"""Optimizers and the training loop.

Each optimizer updates the network's parameter arrays *in place*, so
``net.params`` stays the same dict of the same arrays throughout training:

* ``"gd"``: ``θ ← θ − lr·dθ``;
* ``"momentum"``: ``v ← β·v + (1 − β)·dθ``, ``θ ← θ − lr·v`` (β = 0.9);
* ``"adam"``: momentum and RMS estimates with bias correction (β₁ = 0.9, β₂ = 0.999,
  ε = 1e-8), ``θ ← θ − lr·m̂ / (√v̂ + ε)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from gradprobe._text import html_card
from gradprobe._validate import check_count, check_positive, check_rate, unless_interrupt
from gradprobe.errors import InvalidArgumentError, InvalidTypeError, NonFiniteError
from gradprobe.numdiff.progress import as_callback

__all__ = [
    "OPTIMIZERS",
    "Adam",
    "GradientDescent",
    "History",
    "Momentum",
    "Optimizer",
    "Trainable",
    "fit",
]

Array = NDArray[np.floating[Any]]


class Trainable(Protocol):
    """What :func:`fit` needs of a model: its public training interface.

    :class:`gradprobe.MLP` is one; any model offering these members trains the same way.
    """

    params: dict[str, Array]
    training: bool

    @property
    def rng(self) -> np.random.Generator:
        """The model's own generator (minibatch order, dropout masks)."""
        ...

    @property
    def metric_name(self) -> str:
        """The name of :meth:`metric` (``"accuracy"`` or ``"r2"``)."""
        ...

    def train(self) -> Any:
        """Switch to training mode."""
        ...

    def eval(self) -> Any:
        """Switch to evaluation mode."""
        ...

    def features(self, X: Any, argument: str = "X") -> NDArray[Any]:
        """Return ``X`` validated as the model's input, shape ``(m, n_0)``."""
        ...

    def targets(self, y: Any, m: int) -> Array:
        """Return ``y`` encoded for the model's output, shape ``(m, n_L)``."""
        ...

    def training_step(
        self, X: NDArray[Any], targets: Array
    ) -> tuple[float, dict[str, Array], Array]:
        """Return the cost, its gradients and the outputs on one batch, in training mode."""
        ...

    def metric(self, outputs: Array, targets: Array) -> float:
        """Return the metric of ``outputs`` against encoded ``targets``."""
        ...

    def loss(self, X: Any, y: Any) -> float:
        """Return the cost on ``(X, y)``."""
        ...

    def score(self, X: Any, y: Any) -> float:
        """Return the metric on ``(X, y)``."""
        ...


class Optimizer(Protocol):
    """Anything with ``step(params, grads)`` that updates ``params`` in place."""

    def step(self, params: dict[str, Array], grads: Mapping[str, Array]) -> None:
        """Apply one update to ``params`` (in place) from ``grads`` (same keys)."""


class GradientDescent:
    """Plain gradient descent, ``θ ← θ − lr·dθ``.

    Examples
    --------
    >>> import numpy as np
    >>> params = {"w": np.array([1.0])}
    >>> GradientDescent(lr=0.5).step(params, {"w": np.array([2.0])})
    >>> params["w"]
    array([0.])
    """

    def __init__(self, lr: float) -> None:
        self.lr = check_positive(lr, "lr")

    def step(self, params: dict[str, Array], grads: Mapping[str, Array]) -> None:
        """Apply one update to ``params`` in place."""
        for name, value in params.items():
            value -= self.lr * grads[name]


class Momentum:
    """Gradient descent with momentum: an exponentially weighted average of gradients."""

    def __init__(self, lr: float, beta: float = 0.9) -> None:
        self.lr = check_positive(lr, "lr")
        self.beta = check_rate(beta, "beta")
        self._velocity: dict[str, Array] = {}

    def step(self, params: dict[str, Array], grads: Mapping[str, Array]) -> None:
        """Apply one update to ``params`` in place."""
        for name, value in params.items():
            velocity = self._velocity.setdefault(name, np.zeros_like(value))
            velocity *= self.beta
            velocity += (1.0 - self.beta) * grads[name]
            value -= self.lr * velocity


class Adam:
    """Adam: momentum plus per-coordinate RMS scaling, both bias-corrected."""

    def __init__(
        self, lr: float, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8
    ) -> None:
        self.lr = check_positive(lr, "lr")
        self.beta1 = check_rate(beta1, "beta1")
        self.beta2 = check_rate(beta2, "beta2")
        self.epsilon = check_positive(epsilon, "epsilon")
        self._first: dict[str, Array] = {}
        self._second: dict[str, Array] = {}
        self._steps = 0

    def step(self, params: dict[str, Array], grads: Mapping[str, Array]) -> None:
        """Apply one update to ``params`` in place."""
        self._steps += 1
        correction1 = 1.0 - self.beta1**self._steps
        correction2 = 1.0 - self.beta2**self._steps
        for name, value in params.items():
            grad = grads[name]
            first = self._first.setdefault(name, np.zeros_like(value))
            second = self._second.setdefault(name, np.zeros_like(value))
            first *= self.beta1
            first += (1.0 - self.beta1) * grad
            second *= self.beta2
            second += (1.0 - self.beta2) * grad**2
            value -= (
                self.lr * (first / correction1) / (np.sqrt(second / correction2) + self.epsilon)
            )


OPTIMIZERS: dict[str, Callable[[float], Optimizer]] = {
    "gd": GradientDescent,
    "momentum": Momentum,
    "adam": Adam,
}
"""Optimizer name -> constructor taking the learning rate."""


@dataclass
class History:
    """The loss and metric after every epoch of :func:`fit`.

    Attributes
    ----------
    metric_name : str
        ``"accuracy"`` or ``"r2"``.
    loss, metric : list of float
        On the training set, one per epoch: the example-weighted mean of the costs of
        the epoch's minibatches (in training mode, L2 term included) and the metric of
        the outputs those minibatches produced.
    val_loss, val_metric : list of float
        On ``validation_data`` in evaluation mode after each epoch; empty without it.
    """

    metric_name: str
    loss: list[float] = field(default_factory=list)
    metric: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        """The number of epochs run."""
        return len(self.loss)

    def to_dict(self) -> dict[str, Any]:
        """Return the history as plain lists, for JSON."""
        return {
            "metric_name": self.metric_name,
            "loss": list(self.loss),
            "metric": list(self.metric),
            "val_loss": list(self.val_loss),
            "val_metric": list(self.val_metric),
        }

    def __repr__(self) -> str:
        if not self.loss:
            return f"History(metric_name={self.metric_name!r}, epochs=0)"
        return (
            f"History(metric_name={self.metric_name!r}, epochs={self.epochs}, "
            f"loss {self.loss[0]:.4g} -> {self.loss[-1]:.4g}, "
            f"{self.metric_name} {self.metric[-1]:.4g})"
        )

    def _repr_html_(self) -> str:
        """Show the training run in a notebook: first and last loss and metric."""
        lines = [f"{self.epochs} epochs"]
        if self.loss:
            lines.append(
                f"training loss {self.loss[0]:.4g} → {self.loss[-1]:.4g}; "
                f"{self.metric_name} {self.metric[-1]:.4g}"
            )
        if self.val_loss:
            lines.append(
                f"validation loss {self.val_loss[-1]:.4g}; {self.metric_name} "
                f"{self.val_metric[-1]:.4g}"
            )
        return html_card("training history", "ok", lines)


def fit(
    net: Trainable,
    X: Any,
    y: Any,
    epochs: int = 100,
    lr: float = 0.01,
    batch_size: int | None = None,
    optimizer: str | Optimizer = "gd",
    validation_data: tuple[Any, Any] | None = None,
    callback: Callable[[int, History], bool | None] | None = None,
    progress: Any = None,
) -> History:
    """Train ``net`` in place with minibatch gradient descent.

    Parameters
    ----------
    net : MLP
        The network; its ``params`` arrays are updated in place.
    X : array_like of shape (m, n_0)
        Training examples; not modified.
    y : array_like
        Training labels, as for :meth:`MLP.loss`.
    epochs : int, default=100
        Passes over the training set.
    lr : float, default=0.01
        The learning rate.
    batch_size : int, optional
        Examples per update; the default, all ``m``, is full-batch gradient descent
        (one update per epoch, in the data's order). Minibatches are drawn in an
        order shuffled by the network's own generator.
    optimizer : {"gd", "momentum", "adam"} or Optimizer, default="gd"
        The update rule; an object with ``step(params, grads)`` is used as given.
    validation_data : tuple (X_val, y_val), optional
        Evaluated after every epoch in evaluation mode.
    callback : callable, optional
        ``callback(epoch, history)`` after every epoch (``epoch`` counts from 0);
        returning True stops training.
    progress : callable or tqdm-like, optional
        Told ``progress(epochs_done, epochs)`` after every epoch: a callable or an object
        with ``update(n)`` such as ``tqdm.auto.tqdm()``.

    Returns
    -------
    History

    Raises
    ------
    NonFiniteError
        When the loss becomes NaN or infinite (the learning rate is too large, or the
        inputs need normalizing).

    Examples
    --------
    >>> import numpy as np
    >>> from gradprobe.nn.mlp import MLP
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    >>> net = MLP([2, 8, 1], activation="tanh", seed=0)
    >>> history = net.fit(X, [0, 1, 1, 0], epochs=300, lr=0.05, optimizer="adam")
    >>> history.metric[-1]
    1.0
    """
    data = net.features(X)
    m = data.shape[0]
    targets = net.targets(y, m)
    epochs = check_count(epochs, "epochs", minimum=0)
    batch_size = None if batch_size is None else check_count(batch_size, "batch_size")
    size = m if batch_size is None else min(int(batch_size), m)
    update = _make_optimizer(optimizer, lr)
    report = as_callback(progress)
    validation = None
    if validation_data is not None:
        X_val, y_val = validation_data
        validation = (net.features(X_val, "validation_data[0]"), y_val)
    history = History(net.metric_name)
    was_training = net.training
    net.train()
    try:
        # Divergence is reported once per epoch below, with advice, instead of as warnings.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for epoch in range(int(epochs)):
                _one_epoch(net, data, targets, size, update, history, epoch)
                if validation is not None:
                    net.eval()
                    history.val_loss.append(net.loss(*validation))
                    history.val_metric.append(net.score(*validation))
                    net.train()
                if report is not None:
                    report(epoch + 1, int(epochs))
                if callback is not None and callback(epoch, history):
                    break
    finally:
        net.training = was_training
    return history


def _one_epoch(
    net: Trainable,
    data: NDArray[Any],
    targets: Array,
    size: int,
    update: Optimizer,
    history: History,
    epoch: int,
) -> None:
    m = data.shape[0]
    batches: list[Any] = [slice(None)]
    if size < m:
        order = net.rng.permutation(m)
        batches = [order[start : start + size] for start in range(0, m, size)]
    outputs = np.empty_like(targets)
    total = 0.0
    for rows in batches:
        value, grads, batch_outputs = net.training_step(data[rows], targets[rows])
        total += value * batch_outputs.shape[0]
        try:
            update.step(net.params, grads)
        except BaseException as error:  # noqa: BLE001 - whatever the user's optimizer raises
            raise InvalidArgumentError(
                f"optimizer: its step raised {type(error).__name__} at epoch {epoch}: {error}"
            ) from unless_interrupt(error)
        outputs[rows] = batch_outputs
    if not np.isfinite(total):
        raise NonFiniteError(
            f"fit: the training loss became {total / m} at epoch {epoch}, expected finite values; "
            "lower lr or normalize the inputs (gradprobe.Normalizer)"
        )
    history.loss.append(total / m)
    history.metric.append(net.metric(outputs, targets))


def _make_optimizer(optimizer: str | Optimizer, lr: float) -> Optimizer:
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise InvalidArgumentError(
                f"optimizer: got {optimizer!r}, expected one of {', '.join(OPTIMIZERS)} or an "
                "object with step(params, grads)"
            )
        return OPTIMIZERS[optimizer](lr)
    if not callable(getattr(optimizer, "step", None)):
        raise InvalidTypeError(
            f"optimizer: got {type(optimizer).__name__}, expected a name or an object with a "
            "step(params, grads) method"
        )
    return optimizer
