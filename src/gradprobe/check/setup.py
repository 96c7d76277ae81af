"""What every gradient check starts from: validated arguments, θ and the mode.

:func:`prepare_check` is the one preamble :func:`gradprobe.check_gradients` and
:func:`gradprobe.check_model` share, so the same argument gets the same check and
the same message everywhere; :func:`choose_mode` resolves ``mode="auto"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gradprobe._params import ParameterLayout, Params
from gradprobe._validate import (
    check_choice,
    check_memory,
    check_sample,
    check_seed,
    check_thresholds,
)
from gradprobe.errors import InvalidArgumentError

__all__ = ["LOCALIZE_ABOVE", "MODES", "CheckSetup", "choose_mode", "prepare_check"]

MODES = ("auto", "full", "localize")
LOCALIZE_ABOVE = 100_000
"""``mode="auto"`` localizes instead of checking every value above this many values."""


@dataclass(frozen=True)
class CheckSetup:
    """The validated arguments every gradient check starts from (see :func:`prepare_check`)."""

    layout: ParameterLayout
    theta: NDArray[np.float64]
    thresholds: tuple[float, float]
    sample: int | None
    seed: int | np.random.Generator
    memory: int
    mode: str


def prepare_check(
    params: Params,
    *,
    thresholds: object,
    sample: object,
    seed: object,
    memory: object,
    mode: object,
) -> CheckSetup:
    """Validate the arguments shared by every check and flatten ``params`` into θ.

    :func:`check_gradients` and :func:`gradprobe.check_model` both start here, so the
    same argument gets the same check and the same message everywhere.

    Returns
    -------
    CheckSetup
        The layout, θ of shape ``(N,)`` in float64, and the checked arguments, with
        ``mode`` resolved to ``"full"`` or ``"localize"``.
    """
    thresholds = check_thresholds(thresholds)
    count = check_sample(sample)
    seed = check_seed(seed)
    memory = check_memory(memory)
    layout = ParameterLayout.from_params(params)
    theta = layout.flatten(params)
    return CheckSetup(
        layout=layout,
        theta=theta,
        thresholds=thresholds,
        sample=count,
        seed=seed,
        memory=memory,
        mode=choose_mode(mode, layout.size, count),
    )


def choose_mode(mode: object, size: int, sample: int | None) -> str:
    """Resolve ``mode="auto"`` and check the combination of ``mode`` and ``sample``.

    Returns
    -------
    {"full", "localize"}
        ``"auto"`` is ``"localize"`` above :data:`LOCALIZE_ABOVE` values unless sampled.
    """
    check_choice(mode, "mode", MODES)
    if mode == "localize" and sample is not None:
        raise InvalidArgumentError(
            f"sample: got {sample} with mode='localize', expected sample=None: localization "
            "already checks every value through group tests"
        )
    if mode == "auto":
        return "localize" if size > LOCALIZE_ABOVE and sample is None else "full"
    return str(mode)
