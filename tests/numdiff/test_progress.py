"""Progress hooks and Ctrl-C during long runs of loss evaluations."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from tqdm import tqdm

from gradprobe.check.checker import assert_gradients, check_gradients
from gradprobe.errors import InvalidTypeError
from gradprobe.nn.check import check_model
from gradprobe.nn.fastcheck import MLPEvaluator
from gradprobe.nn.mlp import MLP
from gradprobe.numdiff.progress import Interrupted, as_callback, in_chunks

SOURCE = Path(__file__).resolve().parents[2] / "src"


def test_chunks_cover_every_item_once_in_order_and_report_each() -> None:
    seen: list[int] = []
    reports: list[tuple[int, int]] = []
    in_chunks(
        5_000,
        lambda part: seen.extend(range(part.start, part.stop)),
        lambda done, total: reports.append((done, total)),
    )
    assert seen == list(range(5_000))
    assert reports[-1] == (5_000, 5_000)
    assert [done for done, _ in reports] == sorted({done for done, _ in reports})
    assert len(reports) < 40


def test_ctrl_c_inside_a_chunk_says_how_many_had_finished() -> None:
    def work(part: slice) -> None:
        if part.stop > 100:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as caught:
        in_chunks(1_000, work, None)
    assert (caught.value.done, caught.value.total) == (48, 1_000)
    assert isinstance(caught.value, KeyboardInterrupt)


def test_a_tqdm_bar_counts_to_the_total() -> None:
    bar = tqdm(file=io.StringIO())
    callback = as_callback(bar)
    assert callback is not None
    in_chunks(700, lambda part: None, callback)
    assert (bar.n, bar.total) == (700, 700)


def test_a_progress_hook_that_is_neither_callable_nor_a_bar_is_refused() -> None:
    W = np.ones((2, 2))
    with pytest.raises(InvalidTypeError, match="progress: got int"):
        check_gradients(lambda p: float(np.sum(p["W"] ** 2)), {"W": W}, {"W": 2 * W}, progress=3)


def _cube(params: dict[str, np.ndarray]) -> float:
    return float(np.sum(params["W"] ** 3))


class _InterruptAt:
    """A loss that sends this process a real SIGINT on its ``at``-th call."""

    def __init__(self, at: int) -> None:
        self.at, self.calls = at, 0

    def __call__(self, params: dict[str, np.ndarray]) -> float:
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return _cube(params)


def test_check_gradients_reports_progress_to_the_last_value() -> None:
    W = np.random.default_rng(0).normal(size=(30, 20))
    reports: list[tuple[int, int]] = []
    report = check_gradients(
        _cube, {"W": W}, {"W": 3 * W**2}, progress=lambda d, t: reports.append((d, t))
    )
    assert report.passed and not report.partial
    assert reports[-1] == (600, 600)


def test_ctrl_c_returns_the_values_checked_so_far_as_a_partial_report() -> None:
    W = np.random.default_rng(0).normal(size=(30, 20))
    before = W.copy()
    report = check_gradients(_InterruptAt(400), {"W": W}, {"W": 3 * W**2})
    assert report.partial and not report.passed
    assert report.verdict == "inconclusive"  # nothing wrong so far, but not all checked
    assert 0 < report.checked < 600 and report.total == 600
    assert "interrupted (Ctrl-C) after" in report.notes[-1]
    assert any("worst so far" in line for line in report.summary())
    np.testing.assert_array_equal(W, before)


def test_a_partial_check_that_already_found_the_bug_says_wrong() -> None:
    W = np.random.default_rng(1).normal(size=(30, 20))
    wrong = 3 * W**2
    wrong[0, :5] *= 2  # in the first chunk
    report = check_gradients(_InterruptAt(400), {"W": W}, {"W": wrong})
    assert report.partial and report.verdict == "wrong"
    assert report.worst(1)[0].name.startswith("W[0, ")


def test_ctrl_c_before_any_value_is_done_is_plain_ctrl_c() -> None:
    W = np.ones((3, 3))
    with pytest.raises(KeyboardInterrupt):
        check_gradients(_InterruptAt(2), {"W": W}, {"W": 3 * W**2})


def test_assert_gradients_stops_a_test_run_on_ctrl_c_and_hides_its_frame() -> None:
    W = np.random.default_rng(0).normal(size=(30, 20))
    with pytest.raises(KeyboardInterrupt) as caught:
        assert_gradients(_InterruptAt(400), {"W": W}, {"W": 3 * W**2})
    assert not isinstance(caught.value, AssertionError)
    assert assert_gradients.__code__.co_varnames[0:3] == ("loss", "params", "grads")
    assert "__tracebackhide__" in assert_gradients.__code__.co_varnames


def test_check_model_takes_a_tqdm_bar() -> None:
    net = MLP([4, 6, 1], activation="tanh", seed=0)
    X = np.random.default_rng(0).normal(size=(5, 4))
    bar = tqdm(file=io.StringIO())
    report = check_model(net, X, [0, 1, 0, 1, 1], progress=bar)
    assert report.passed
    assert bar.n == bar.total == report.checked


def test_the_layered_evaluator_gives_the_same_values_in_chunks_as_at_once() -> None:
    net = MLP([5, 7, 3], activation="relu", seed=2)
    X = np.random.default_rng(3).normal(size=(9, 5))
    y = np.arange(9) % 3
    theta = np.concatenate([value.ravel() for value in net.params.values()])
    evaluator = MLPEvaluator(net, X, y, theta)
    indices = np.arange(len(theta), dtype=np.intp)
    values = theta + 1e-5
    whole = evaluator.coordinates(theta, indices, values)
    pieces: list[np.ndarray] = []
    in_chunks(
        len(theta),
        lambda part: pieces.append(evaluator.coordinates(theta, indices[part], values[part])),
        None,
    )
    np.testing.assert_array_equal(np.concatenate(pieces), whole)


_SLOW = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from gradprobe.check.checker import check_gradients

    def loss(p):
        time.sleep(0.002)
        return float(np.sum(p["W"] ** 3))

    def grads(p):
        return {"W": 3 * p["W"] ** 2}

    if __name__ == "__main__":
        W = np.random.default_rng(0).normal(size=(60, 60))
        report = check_gradients(loss, {"W": W}, grads, workers=2)
        print("partial", report.partial, report.checked, report.total, flush=True)
    """
)


def test_ctrl_c_to_the_process_group_ends_a_pool_check_within_a_second(tmp_path: Path) -> None:
    script = tmp_path / "slow_check.py"
    script.write_text(_SLOW)
    env = dict(os.environ, PYTHONPATH=str(SOURCE))
    child = subprocess.Popen(
        [sys.executable, str(script)],
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(4)  # the pool is up and busy: a full check takes about 15 s here
    group = subprocess.run(["pgrep", "-g", str(child.pid)], capture_output=True, text=True)
    assert len(group.stdout.split()) == 3  # the check and its two workers
    os.killpg(child.pid, signal.SIGINT)
    started = time.perf_counter()
    out, err = child.communicate(timeout=30)
    while subprocess.run(["pgrep", "-g", str(child.pid)], capture_output=True).stdout:
        assert time.perf_counter() - started < 1.0, "workers still running"
        time.sleep(0.02)
    assert time.perf_counter() - started < 1.0
    words = out.split()
    assert words[:2] == ["partial", "True"], out + err
    assert 0 < int(words[2]) < int(words[3]) == 3_600
    assert "Traceback" not in err
