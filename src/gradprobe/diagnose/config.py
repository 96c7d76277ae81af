"""The options of ``gradprobe diagnose``, as data.

Kept apart from :mod:`~gradprobe.diagnose.result` and free of NumPy at import, so that
the command line can show these defaults in ``--help`` without loading the library.
"""

from __future__ import annotations

from dataclasses import dataclass

from gradprobe.errors import GradprobeError, InvalidArgumentError

__all__ = ["DiagnoseConfig"]

# The options of DiagnoseConfig that the network or the optimizer checks, by their own name.
_OPTIONS = ("activation", "init", "l2", "dropout", "lr", "optimizer", "seed")


@dataclass(frozen=True)
class DiagnoseConfig:
    """The options of ``gradprobe diagnose``; the defaults finish in seconds on two cores."""

    layers: tuple[int, ...] = (64, 32)
    activation: str = "relu"
    init: str = "auto"
    l2: float = 0.01
    dropout: float = 0.0
    epochs: int = 200
    lr: float = 0.01
    optimizer: str = "adam"
    seed: int = 0
    depth: int = 30
    width: int = 64

    def __post_init__(self) -> None:
        """Check every option before any work: a bad value fails at once, not after training.

        The network and its optimizer are built once, so their own checks run; their
        messages name the ``gradprobe diagnose`` option (``--activation: got 'foo'…``).
        """
        import numpy as np

        from gradprobe._validate.numbers import check_count
        from gradprobe.nn.mlp import MLP

        if not self.layers:
            raise InvalidArgumentError(
                "--layers: got no hidden layers, expected at least one width, e.g. --layers 64,32"
            )
        for width in self.layers:
            check_count(width, "--layers")
        check_count(self.epochs, "--epochs")
        check_count(self.depth, "depth")
        check_count(self.width, "width")
        try:
            net = MLP(
                [1, *self.layers, 1],
                activation=self.activation,
                init=self.init,
                l2=self.l2,
                dropout=self.dropout,
                seed=self.seed,
            )
            net.fit(np.zeros((1, 1)), [0], epochs=0, lr=self.lr, optimizer=self.optimizer)
        except GradprobeError as error:
            name, colon, rest = str(error).partition(":")
            if colon and name in _OPTIONS:
                raise type(error)(f"--{name}:{rest}") from error
            raise
