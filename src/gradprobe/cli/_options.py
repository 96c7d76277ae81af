"""The options the commands share: choice lists, their completion, and comma lists.

Every option with choices names them in its ``--help`` and completes them in the
shell (after a comma too); a list is given with commas (``--init he,xavier``), by
repeating the option, or both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import typer

from gradprobe.errors import InvalidArgumentError

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "DEFAULT_INITS",
    "DEFAULT_THRESHOLDS",
    "INITIALIZERS",
    "METHODS",
    "MODES",
    "NETWORK_INITS",
    "OPTIMIZERS",
    "SWEEP_INITS",
    "TASKS",
    "choice",
    "choices",
    "completer",
    "parse_names",
]

# The library's names, spelled out here so that `gradprobe --help` answers without loading
# NumPy and the library (a second instead of a blink); tests/cli/test_options.py holds each
# one equal to the table it copies, so they cannot drift apart.
METHODS = ("forward", "backward", "central", "complex", "richardson")  # numdiff.rules
MODES = ("auto", "full", "localize")  # check.setup
DEFAULT_THRESHOLDS = (1e-6, 1e-4)  # check.comparison
ACTIVATIONS = (  # nn.activations
    *("relu", "leaky_relu", "tanh", "sigmoid", "linear", "gelu", "silu", "elu", "softplus"),
)
INITIALIZERS = (  # nn.initializers
    *("zeros", "normal", "uniform", "he", "he_normal", "he_uniform", "xavier"),
    *("xavier_normal", "xavier_uniform", "lecun", "lecun_normal", "lecun_uniform", "orthogonal"),
)
DEFAULT_INITS = ("zeros", "small", "large", "xavier", "he")  # nn.sweep
OPTIMIZERS = ("gd", "momentum", "adam")  # nn.train
DATASETS = ("breast_cancer", "digits", "circles", "moons", "spirals")  # diagnose.tabular
TASKS = ("classification", "regression")
# What --init of diagnose takes: a network initializer, or "auto" (He for ReLU, Xavier else).
NETWORK_INITS = ("auto", *INITIALIZERS)
# What --init of depth takes: the sweep's own five, or any network initializer.
SWEEP_INITS = tuple(dict.fromkeys([*DEFAULT_INITS, *NETWORK_INITS]))


def choices(names: Iterable[str]) -> str:
    """Return the names as a comma list for a help text."""
    return ", ".join(names)


def completer(names: Sequence[str]) -> Callable[[str], list[str]]:
    """Complete a comma list of ``names``: what follows the last comma."""

    def complete(incomplete: str) -> list[str]:
        done, _, last = incomplete.rpartition(",")
        prefix = f"{done}," if done else ""
        return [prefix + name for name in names if name.startswith(last)]

    return complete


def parse_names(
    values: Sequence[str] | None, option: str, allowed: Sequence[str]
) -> list[str] | None:
    """Read a list option given as commas (``he,xavier``), repeated, or both.

    Returns
    -------
    list of str or None
        The names in order, None when the option was not given.

    Examples
    --------
    >>> parse_names(["he,xavier", "zeros"], "--init", ["zeros", "xavier", "he"])
    ['he', 'xavier', 'zeros']
    """
    if not values:
        return None
    names = [name.strip() for value in values for name in value.split(",")]
    for name in names:
        if name not in allowed:
            raise InvalidArgumentError(
                f"{option}: got {name!r}, expected names from {choices(allowed)}, separated "
                f"by commas (e.g. {option} {','.join(allowed[-2:])})"
            )
    return names


def choice(flag: str, what: str, names: Sequence[str], *aliases: str) -> Any:
    """Return an option whose help names its choices and whose completion offers them."""
    return typer.Option(
        flag, *aliases, help=f"{what}: {choices(names)}.", autocompletion=completer(names)
    )
