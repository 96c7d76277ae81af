"""Every argument check of the public entry points, in one place.

Each returns the argument in its working type or raises a
:class:`~gradprobe.errors.GradprobeError` that names the argument, what was
received and what was expected ("got X, expected Y"), and where it helps what to
try. Modules never repeat these checks: they call them. The rules, one module each:

* :mod:`~gradprobe._validate.numbers`: a number is an int or a float, finite and in
  range (``True`` is not a number, ``"1.5"`` is not a float); a count is bounded; a
  step moves the point it is added to (``x + eps != x``) and keeps it finite;
* :mod:`~gradprobe._validate.arrays`: an array is rectangular and numeric, and its
  size fits what this machine can hold (the message says the limit);
* :mod:`~gradprobe._validate.calls`: the user's function returns a finite real scalar,
  and whatever it raises becomes a :class:`~gradprobe.errors.LossEvaluationError`,
  except a real Ctrl-C, which still interrupts;
* :mod:`~gradprobe._validate.paths`: gradprobe writes only to regular files or new paths.
"""

from gradprobe._validate.arrays import (
    as_array,
    as_feature_matrix,
    as_real_array,
    available_memory,
    check_fits,
    check_layer_sizes,
    check_magnitude,
    check_memory,
    check_shape,
    check_unique,
)
from gradprobe._validate.calls import (
    check_finite_gradient,
    check_instance,
    check_progress,
    loss_value,
    unless_interrupt,
)
from gradprobe._validate.numbers import (
    LIMITS,
    check_argnums,
    check_batched,
    check_choice,
    check_count,
    check_eps,
    check_fraction,
    check_modes,
    check_notes,
    check_positive,
    check_rate,
    check_real,
    check_sample,
    check_seed,
    check_steps,
    check_thresholds,
    check_tolerance,
    describe,
    finite_real,
)
from gradprobe._validate.paths import check_target, unsafe_target

__all__ = [
    "LIMITS",
    "as_array",
    "as_feature_matrix",
    "as_real_array",
    "available_memory",
    "check_argnums",
    "check_batched",
    "check_choice",
    "check_count",
    "check_eps",
    "check_finite_gradient",
    "check_fits",
    "check_fraction",
    "check_instance",
    "check_layer_sizes",
    "check_magnitude",
    "check_memory",
    "check_modes",
    "check_progress",
    "check_notes",
    "check_positive",
    "check_rate",
    "check_real",
    "check_sample",
    "check_seed",
    "check_shape",
    "check_steps",
    "check_target",
    "check_thresholds",
    "check_tolerance",
    "check_unique",
    "describe",
    "finite_real",
    "loss_value",
    "unless_interrupt",
    "unsafe_target",
]
