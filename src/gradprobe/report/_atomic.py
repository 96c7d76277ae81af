"""Write a file so that readers see the old version or the new one, never half of one."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from gradprobe._validate import unsafe_target

__all__ = ["write_atomic", "write_together"]


def write_atomic(path: str | os.PathLike[str], content: str | bytes) -> Path:
    """Write ``content`` to ``path`` through a temporary file in the same folder and a rename.

    An interrupted run (Ctrl-C, a crash) leaves at most a stray temporary file that
    is removed on the way out, never a truncated ``path``: :func:`os.replace` is atomic
    on one file system.

    Parameters
    ----------
    path : str or os.PathLike
        The destination; its folder is created when missing.
    content : str or bytes
        The content; text is written as UTF-8.

    Returns
    -------
    pathlib.Path
        The destination.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_atomic(folder / "a.txt", "hello").read_text()
    'hello'
    """
    return write_together({path: content})[0]


def write_together(files: Mapping[str | os.PathLike[str], str | bytes]) -> list[Path]:
    """Write several files so that they change together: all staged first, then renamed.

    Every file is written in full to a temporary file beside its destination before
    any destination is touched, so an interruption while writing leaves every old
    file as it was; only the renames (microseconds) separate the files' switch-over.

    Parameters
    ----------
    files : mapping of path to str or bytes
        Destination and content of each file; folders are created when missing.

    Returns
    -------
    list of pathlib.Path
        The destinations, in the mapping's order.
    """
    for path in files:
        refusal = unsafe_target(path)
        if refusal is not None:  # checked for every file before any is written
            raise OSError(errno.EPERM, refusal, str(path))
    staged: list[tuple[str, Path]] = []
    with _cleanup_on_sigterm():
        _stage_and_replace(files, staged)
    return [destination for _, destination in staged]


def _stage_and_replace(
    files: Mapping[str | os.PathLike[str], str | bytes], staged: list[tuple[str, Path]]
) -> None:
    try:
        for path, content in files.items():
            destination = Path(path)
            destination.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(
                prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent
            )
            staged.append((temporary, destination))
            data = content.encode("utf-8") if isinstance(content, str) else content
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide a report from a web server
        for temporary, destination in staged:
            os.replace(temporary, destination)
    except BaseException:
        for temporary, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        raise


class _Terminated(BaseException):
    """Raised by the SIGTERM handler of :func:`_cleanup_on_sigterm`."""


@contextlib.contextmanager
def _cleanup_on_sigterm() -> Iterator[None]:
    """Turn a SIGTERM into an exception while files are written, then let it end the process.

    The exception unwinds :func:`_stage_and_replace`, which removes its temporary files;
    the default handler is then restored and the signal sent again, so the process ends
    as it would have, with nothing left behind. Only where SIGTERM has its default
    action (it kills the process without running any cleanup) and in the main thread,
    the only one that can handle signals; a program's own handler is left alone.
    """
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    received: list[int] = []

    def terminate(number: int, frame: object) -> None:
        received.append(number)
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if received:
            os.kill(os.getpid(), signal.SIGTERM)
