"""Shared fixtures: every test gets its own seeded generator; global state is pinned."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

# A run started in the background of a non-interactive shell inherits SIGINT ignored, and
# Python then never raises KeyboardInterrupt: the Ctrl-C tests need it delivered. (A handler,
# unlike an ignored signal, is reset to the default on exec, so subprocesses get it too.)
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

os.environ.setdefault("MPLBACKEND", "Agg")
SOURCE = Path(__file__).resolve().parents[1] / "src"

# The tests check correctness, not speed: one BLAS thread keeps them fast on a small shared
# machine (oversubscribed OpenBLAS threads were measured 16x slower there) and repeatable.
threadpool_limits(1)


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    """Pin the global random states so a test that forgets a seed is still repeatable."""
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 - pins legacy global state; gradprobe itself never uses it


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh generator with a fixed seed."""
    return np.random.default_rng(20250522)


@pytest.fixture
def planted_test_output(tmp_path: Path) -> Callable[[str], str]:
    """Run a test file of ``source`` in a fresh pytest process; return what it printed.

    The file gets its own folder and an empty ``pytest.ini``, so this project's options
    do not apply; tracebacks are pytest's default long ones.
    """

    def run(source: str) -> str:
        (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        (tmp_path / "test_planted.py").write_text(source, encoding="utf-8")
        env = dict(os.environ, PYTHONPATH=str(SOURCE), COLUMNS="120")
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_planted.py"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout + result.stderr

    return run


class ProgressLog:
    """A progress callback that records every ``(done, total)`` it is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))

    def assert_complete(self, total: int) -> None:
        """Counts only grow, every call names ``total``, and the last one reaches it."""
        assert self.calls, "progress was never told"
        counts = [done for done, _ in self.calls]
        assert counts == sorted(counts) and counts[0] > 0, self.calls
        assert {seen for _, seen in self.calls} == {total}, self.calls
        assert counts[-1] == total, self.calls


@pytest.fixture
def progress_log() -> ProgressLog:
    """A fresh :class:`ProgressLog`."""
    return ProgressLog()
