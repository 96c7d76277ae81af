"""Executors give the same numbers as the serial check, a dask cluster included."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import pytest

from gradprobe import check_gradients
from gradprobe.errors import InvalidArgumentError, InvalidTypeError
from gradprobe.nn.check import check_model
from gradprobe.nn.mlp import MLP
from gradprobe.numdiff.parallel import executor_capacity, task_count

DATA = np.random.default_rng(11).normal(size=(10, 3))


def loss(p: dict[str, np.ndarray], data: np.ndarray) -> float:
    return float(np.sum(np.tanh(data @ p["W"].T + p["b"]) ** 2) / len(data))


def batched_loss(p: dict[str, np.ndarray], data: np.ndarray) -> np.ndarray:
    hidden = np.tanh(data @ p["W"].transpose(0, 2, 1) + p["b"][:, None, :])
    return np.sum(hidden**2, axis=(1, 2)) / len(data)


def grads(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    hidden = np.tanh(DATA @ p["W"].T + p["b"])
    d_z = 2 * hidden * (1 - hidden**2) / len(DATA)
    wrong_b = d_z.sum(0)
    wrong_b[1] *= 3.0  # a planted bug, so the reports have something to find
    return {"W": d_z.T @ DATA, "b": wrong_b}


PARAMS = {"W": np.random.default_rng(12).normal(size=(4, 3)), "b": np.zeros(4) + 0.2}


def _numbers(report: object) -> list[tuple[str, float]]:
    return [(e.name, e.numerical) for e in report.entries]  # type: ignore[attr-defined]


@pytest.mark.parametrize("batched", [False, True])
def test_thread_pool_gives_the_serial_numbers(batched: bool) -> None:
    function = partial(batched_loss if batched else loss, data=DATA)
    serial = check_gradients(function, PARAMS, grads, batched=batched)
    with ThreadPoolExecutor(2) as pool:
        parallel = check_gradients(function, PARAMS, grads, batched=batched, executor=pool)
    assert _numbers(parallel) == _numbers(serial)
    assert parallel.evaluations == serial.evaluations
    assert parallel.wrong_parameters == serial.wrong_parameters == ["b"]


def test_process_workers_give_the_serial_numbers() -> None:
    function = partial(loss, data=DATA)
    serial = check_gradients(function, PARAMS, grads)
    parallel = check_gradients(function, PARAMS, grads, workers=2)
    assert _numbers(parallel) == _numbers(serial)


def test_localize_through_an_executor_gives_the_serial_report() -> None:
    function = partial(loss, data=DATA)
    serial = check_gradients(function, PARAMS, grads, mode="localize")
    with ThreadPoolExecutor(2) as pool:
        parallel = check_gradients(function, PARAMS, grads, mode="localize", executor=pool)
    assert _numbers(parallel) == _numbers(serial)
    assert [g.numerical for g in parallel.groups] == [g.numerical for g in serial.groups]


def test_check_model_through_an_executor_gives_the_serial_numbers() -> None:
    net = MLP([3, 5, 2], activation="tanh", l2=0.1, seed=0)
    X = np.random.default_rng(0).normal(size=(8, 3))
    y = np.arange(8) % 2
    serial = check_model(net, X, y, mode="full")
    with ThreadPoolExecutor(2) as pool:
        parallel = check_model(net, X, y, mode="full", executor=pool)
    assert _numbers(parallel) == _numbers(serial)
    assert parallel.verdict == "ok"


def test_a_dask_cluster_runs_the_check_with_no_extra_code() -> None:
    import distributed  # a dev dependency: a broken install fails here, it does not skip

    function = partial(loss, data=DATA)
    serial = check_gradients(function, PARAMS, grads)
    with distributed.Client(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
    ) as client:
        report = check_gradients(function, PARAMS, grads, executor=client.get_executor())
    assert _numbers(report) == _numbers(serial)
    assert report.wrong_parameters == ["b"]


class _Submissions(ThreadPoolExecutor):
    """A real thread pool that counts the tasks it is given."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self.submitted = 0

    def submit(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def, override]
        self.submitted += 1
        return super().submit(*args, **kwargs)  # type: ignore[arg-type]


def test_tasks_follow_the_pool_size_not_this_machine() -> None:
    function = partial(loss, data=DATA)
    for workers in (1, 3):
        with _Submissions(workers) as pool:
            check_gradients(function, PARAMS, grads, executor=pool)
        # 16 values: 32 perturbed evaluations in the full check, 4 tasks per worker.
        assert executor_capacity(pool) == workers
        assert task_count(pool, 32) == 4 * workers
        assert pool.submitted >= 4 * workers


def test_a_dask_cluster_counts_its_workers_threads() -> None:
    import distributed

    with distributed.Client(
        processes=False, n_workers=2, threads_per_worker=3, dashboard_address=None
    ) as client:
        executor = client.get_executor()
        assert executor_capacity(executor) == 6  # 2 workers x 3 threads, whatever this machine
        assert task_count(executor, 1000) == 24
        assert task_count(executor, 5) == 5


def test_executor_arguments_are_checked() -> None:
    function = partial(loss, data=DATA)
    with pytest.raises(InvalidArgumentError, match="pickled"):
        with ThreadPoolExecutor(1) as pool:
            check_gradients(lambda p: loss(p, DATA), PARAMS, grads, executor=pool)
    with pytest.raises(InvalidTypeError, match="executor"):
        check_gradients(function, PARAMS, grads, executor="pool")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="workers"):
        with ThreadPoolExecutor(1) as pool:
            check_gradients(function, PARAMS, grads, executor=pool, workers=2)
    with pytest.raises(InvalidArgumentError, match="workers"):
        check_gradients(function, PARAMS, grads, workers=0)
