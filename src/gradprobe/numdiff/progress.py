"""Progress reports and Ctrl-C for long runs of loss evaluations.

A full check of N values costs 2N loss evaluations: minutes for a model of tens of
thousands of parameters. :func:`in_chunks` runs such work in chunks of growing size,
tells a ``progress`` hook after each chunk, and, when Ctrl-C arrives, raises
:class:`Interrupted` (a :class:`KeyboardInterrupt`) that says how many items had
finished, so the caller can report on those instead of losing them.

A hook is either a callable ``progress(done, total)`` or a tqdm-like object with an
``update(n)`` method (tqdm, ``tqdm.auto`` in a notebook); :func:`as_callback` turns
either into the callable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradprobe._validate import check_progress

__all__ = ["Callback", "Interrupted", "as_callback", "in_chunks"]

Callback = Callable[[int, int], object]
"""``progress(done, total)``: called after every chunk with the items finished so far."""

# The first chunk is small so a hook hears early how fast the work goes; chunks then
# double up to a share of the total (but at least _LARGEST, so a small check is done
# in a few calls), so a long run reports about a hundred times and Ctrl-C loses at most
# the chunk under way. An executor gets fewer, larger chunks: each chunk is cut into
# tasks that carry a copy of θ. The sizes do not depend on timing, so a check gives
# the same numbers on every run.
_FIRST = 16
_LARGEST = 256
_LARGEST_SPREAD = 1024
_CHUNKS = 100
_CHUNKS_SPREAD = 20


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`in_chunks`, after ``done`` of ``total`` items had finished.

    Attributes
    ----------
    done, total : int
        Items finished before the interruption, and all of them.
    partial : object
        What the interrupted routine had computed for the finished items, or None
        (set by the routine that catches and re-raises it).
    """

    def __init__(self, done: int, total: int, partial: Any = None) -> None:
        super().__init__(f"interrupted after {done:,} of {total:,}")
        self.done = done
        self.total = total
        self.partial = partial


class _Updates:
    """A tqdm-like bar (``update(n)``, optionally ``total``) as a ``progress(done, total)``."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.reported = 0

    def __call__(self, done: int, total: int) -> None:
        if hasattr(self.bar, "total") and self.bar.total != total:
            self.bar.total = total
            refresh = getattr(self.bar, "refresh", None)
            if callable(refresh):
                refresh()
        if done < self.reported:  # a new run on the same bar
            self.reported = 0
        self.bar.update(done - self.reported)
        self.reported = done


def as_callback(progress: Any) -> Callback | None:
    """Return ``progress`` as a callable ``progress(done, total)``, or None for no hook.

    Parameters
    ----------
    progress : callable, tqdm-like object or None
        Checked by :func:`gradprobe._validate.check_progress`.

    Examples
    --------
    >>> seen = []
    >>> class Bar:
    ...     total = None
    ...     def update(self, n):
    ...         seen.append(n)
    >>> callback = as_callback(Bar())
    >>> callback(3, 10); callback(10, 10)
    >>> seen
    [3, 7]
    """
    if check_progress(progress) is None:
        return None
    if callable(getattr(progress, "update", None)):
        return _Updates(progress)
    callback: Callback = progress
    return callback


def in_chunks(
    count: int, work: Callable[[slice], object], progress: Callback | None, *, spread: bool = False
) -> None:
    """Call ``work(chunk)`` on consecutive slices of ``range(count)``, reporting each.

    Parameters
    ----------
    count : int
        How many items there are.
    work : callable
        ``work(slice)`` does the items of one chunk; chunks come in order.
    progress : callable, optional
        Called as ``progress(done, count)`` after each chunk.
    spread : bool, default=False
        The work goes to an executor: fewer, larger chunks.

    Raises
    ------
    Interrupted
        On Ctrl-C; ``done`` counts the items of the chunks that had finished.

    Examples
    --------
    >>> sizes = []
    >>> in_chunks(1000, lambda part: sizes.append(part.stop - part.start), None)
    >>> sizes
    [16, 32, 64, 128, 256, 256, 248]
    """
    largest, parts = (_LARGEST_SPREAD, _CHUNKS_SPREAD) if spread else (_LARGEST, _CHUNKS)
    cap = max(largest, -(-count // parts))
    size, done = _FIRST, 0
    try:
        while done < count:
            stop = min(count, done + size)
            work(slice(done, stop))
            done = stop
            if progress is not None:
                progress(done, count)
            size = min(2 * size, cap)
    except Interrupted:
        raise
    except KeyboardInterrupt:
        raise Interrupted(done, count) from None
