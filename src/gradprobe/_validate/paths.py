"""Paths gradprobe writes to: regular files or new paths, nothing else.

Replacing a symlink, a folder, a device or a FIFO would destroy something that is
not a report: ``--plot /dev/null`` run as root must not turn ``/dev/null`` into a PNG.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from gradprobe.errors import InvalidArgumentError

__all__ = ["check_target", "unsafe_target"]

_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISSOCK, "a socket"),
)


def unsafe_target(path: str | os.PathLike[str]) -> str | None:
    """Say why writing ``path`` would replace something other than a regular file, or None.

    Examples
    --------
    >>> unsafe_target("/dev/null")
    'a device, not a regular file: gradprobe does not replace it'
    """
    try:
        mode = Path(path).lstat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None  # a new path; a folder in its way is reported by whoever creates it
    except OSError as error:
        return f"not inspectable ({error.strerror})"
    for test, what in _KINDS:
        if test(mode):
            return f"{what}, not a regular file: gradprobe does not replace it"
    return None


def check_target(path: str | os.PathLike[str], argument: str) -> Path:
    """Return ``path`` when writing it would replace a regular file or create a new one."""
    reason = unsafe_target(path)
    if reason is not None:
        raise InvalidArgumentError(
            f"{argument}: {path} is {reason}; expected a regular file or a new path"
        )
    return Path(path)
