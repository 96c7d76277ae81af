"""The keyword options every PyTorch check shares, documented and validated in one place.

:func:`~gradprobe.torch.check_module`, :func:`~gradprobe.torch.check_function` and the
``gradcheck`` drop-ins take the same options (``eps``, ``thresholds``, ``sample``, ``seed``,
``mode``, ``batch_size``, ``nondet_tol``, ``workers``): :class:`CheckOptions` lists them for
type checkers and readers, :func:`settings` checks them and returns :class:`Settings`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import torch

from gradprobe._validate import (
    check_count,
    check_fraction,
    check_positive,
    check_progress,
    check_sample,
    check_seed,
    check_thresholds,
)
from gradprobe.check.checker import choose_mode
from gradprobe.check.comparison import DEFAULT_THRESHOLDS
from gradprobe.errors import InvalidArgumentError

__all__ = ["CheckOptions", "Settings", "settings", "threads"]


class CheckOptions(TypedDict, total=False):
    """The options of every PyTorch check, passed as keywords.

    Attributes
    ----------
    eps : float or None
        The step, used exactly as given; by default ``∛u·max(1, |θᵢ|)`` for each value.
    thresholds : tuple of float
        The verdict bands on the relative difference, default ``(1e-6, 1e-4)``, as for
        :func:`gradprobe.check_gradients`.
    sample : int or None
        Check this many seeded random values of each tensor; by default all of them.
    seed : int or numpy.random.Generator
        Seeds the sampled values and random projections; default 0.
    mode : {"auto", "full", "localize"}
        ``"full"`` differentiates every value (or the sample), 2 evaluations each;
        ``"localize"`` finds the wrong values by group testing in about ``4·log2(N)``
        evaluations per wrong value; ``"auto"`` (default) localizes above 100,000 values
        unless ``sample`` is given.
    batch_size : int or None
        Perturbed evaluations per batch; by default sized to about 32 MiB.
    nondet_tol : float
        Tolerance for nondeterministic kernels (atomic adds): identical backward passes
        may differ by up to this much per entry and identical forward passes by up to this
        much in the loss. The spreads are measured, reported and checked within; default
        0.0 (both must repeat exactly, up to rounding). A random loss (dropout on) is
        refused whatever this is.
    workers : int or None
        PyTorch threads for the check (``torch.set_num_threads``, restored afterwards).
    progress : callable or tqdm-like or None
        Told how the check advances, as for :func:`gradprobe.check_gradients`: a callable
        ``progress(done, total)`` or an object with ``update(n)`` such as a tqdm bar.
    """

    eps: float | None
    thresholds: tuple[float, float]
    sample: int | None
    seed: int | np.random.Generator
    mode: str
    batch_size: int | None
    nondet_tol: float
    workers: int | None
    progress: Any


@dataclass(frozen=True)
class Settings:
    """The validated options (see :class:`CheckOptions` for each)."""

    eps: float | None = None
    thresholds: tuple[float, float] = DEFAULT_THRESHOLDS
    sample: int | None = None
    seed: int | np.random.Generator = 0
    mode: str = "auto"
    batch_size: int | None = None
    nondet_tol: float = 0.0
    workers: int | None = None
    progress: Any = None


def settings(options: Mapping[str, object]) -> Settings:
    """Check the shared options and return them as :class:`Settings`.

    Raises
    ------
    InvalidArgumentError, InvalidTypeError
        For an unknown option or a bad value; the message names it.

    Examples
    --------
    >>> settings({"sample": 3}).sample
    3
    """
    known = tuple(CheckOptions.__annotations__)
    unknown = [key for key in options if key not in known]
    if unknown:
        hint = ""
        if {"atol", "rtol", "raise_exception", "fast_mode"} & set(unknown):
            hint = "; PyTorch's gradcheck arguments belong to gradprobe.torch.gradcheck"
        raise InvalidArgumentError(
            f"{unknown[0]}: got an unknown option, expected one of {', '.join(known)}{hint}"
        )
    eps = options.get("eps")
    mode = options.get("mode", "auto")
    sample = check_sample(options.get("sample"))
    choose_mode(mode, 0, sample)  # the engine's check of mode, before any work is done
    batch_size = options.get("batch_size")
    workers = options.get("workers")
    return Settings(
        eps=None if eps is None else check_positive(eps, "eps"),
        thresholds=check_thresholds(options.get("thresholds", DEFAULT_THRESHOLDS)),
        sample=sample,
        seed=check_seed(options.get("seed", 0)),
        mode=str(mode),
        batch_size=None if batch_size is None else check_count(batch_size, "batch_size"),
        nondet_tol=check_fraction(options.get("nondet_tol", 0.0), "nondet_tol", np.inf),
        workers=None if workers is None else check_count(workers, "workers"),
        progress=check_progress(options.get("progress")),
    )


@contextmanager
def threads(workers: int | None) -> Iterator[None]:
    """Run the block with ``workers`` PyTorch threads (all of them for None), then restore."""
    if workers is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(workers)
    try:
        yield
    finally:
        torch.set_num_threads(before)
