"""Paths gradprobe writes to: regular files or new paths, nothing else."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from gradprobe.errors import InvalidArgumentError

__all__ = ["check_target"]


def check_target(path: str | os.PathLike[str], argument: str) -> Path:
    """Return ``path`` when writing it would replace a regular file or create a new one.

    A symlink, a folder, a device or a FIFO is refused: replacing it would destroy
    something that is not a report (``--plot /dev/null`` must not replace ``/dev/null``).
    """
    target = Path(path)
    try:
        mode = target.lstat().st_mode
    except FileNotFoundError:
        return target
    except OSError as error:
        raise InvalidArgumentError(
            f"{argument}: cannot inspect {target} ({error.strerror}); expected a writable path"
        ) from error
    if stat.S_ISREG(mode):
        return target
    what = (
        "a symbolic link"
        if stat.S_ISLNK(mode)
        else "a folder"
        if stat.S_ISDIR(mode)
        else "a FIFO"
        if stat.S_ISFIFO(mode)
        else "a device or socket"
    )
    raise InvalidArgumentError(
        f"{argument}: {target} is {what}, expected a regular file or a new path; gradprobe "
        "does not replace it"
    )
