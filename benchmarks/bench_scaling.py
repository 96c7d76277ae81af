"""Benchmark: how the full structure-aware check's time grows with the network's size.

Run:  PYTHONPATH=src python benchmarks/bench_scaling.py [--repeats 3]   (about 2-4 minutes)

``check_model(..., mode="full")`` on correct ReLU networks of about 1e5 and 1e6
parameters (same depth, same 64 examples), in this run, on this machine: the verdict,
the loss evaluations, how many entries were re-checked and how many kinks were found,
the median wall and CPU time, and the growth exponent ``log(t₂/t₁) / log(N₂/N₁)`` (the target
is at most 1.1). The anchor is the time of one plain forward pass (``net.loss``) of
each network, measured in the same run, so the table also gives the check's cost in
forward passes per parameter.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from gradprobe.nn.check import check_model
from gradprobe.nn.mlp import MLP

SIZES = ([784, 120, 32, 10], [784, 1024, 256, 10])
EXAMPLES = 64


def problem(sizes: list[int], seed: int) -> tuple[MLP, np.ndarray, np.ndarray]:
    """A ReLU network at He initialization, with random inputs and labels."""
    rng = np.random.default_rng(seed)
    net = MLP(sizes, activation="relu", seed=seed).eval()
    X = rng.normal(size=(EXAMPLES, sizes[0]))
    y = rng.integers(0, sizes[-1], EXAMPLES)
    return net, X, y


def forward_seconds(net: MLP, X: np.ndarray, y: np.ndarray) -> float:
    """Median time of one ``net.loss`` evaluation (the anchor)."""
    times = []
    for _ in range(20):
        start = time.perf_counter()
        net.loss(X, y)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per network")
    args = parser.parse_args()
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    print(f"{os.cpu_count()} cores visible, load average {os.getloadavg()[0]:.2f}, 1 BLAS thread")
    rows = []
    for k, sizes in enumerate(SIZES):
        net, X, y = problem(sizes, seed=k)
        count = sum(v.size for v in net.params.values())
        anchor = forward_seconds(net, X, y)
        times, cpu = [], []
        report = None
        for _ in range(args.repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            report = check_model(net, X, y, mode="full")
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        assert report is not None
        rechecked = next(
            (note.split(" of ")[0] for note in report.notes if "re-checked" in note), "0"
        )
        seconds = float(np.median(times))
        rows.append(
            (sizes, count, report, seconds, anchor, rechecked, times, float(np.median(cpu)))
        )
    print(
        f"\n{'network':<22} {'parameters':>10} {'verdict':<8} {'evaluations':>12} "
        f"{'re-checked':>10} {'kinks':>6} {'seconds':>8} {'CPU s':>7} "
        f"{'forward passes / parameter':>27}"
    )
    for sizes, count, report, seconds, anchor, rechecked, times, cpu in rows:
        print(
            f"{'-'.join(map(str, sizes)):<22} {count:>10,} {report.verdict:<8} "
            f"{report.evaluations:>12,} {rechecked:>10} {report.kinks:>6} {seconds:>8.2f} "
            f"{cpu:>7.2f} {seconds / anchor / count:>27.4f}"
        )
        print(f"{'':<22} runs: {', '.join(f'{t:.2f}' for t in times)} s")
    (_, n1, _, t1, _, _, _, c1), (_, n2, _, t2, _, _, _, c2) = rows
    exponent = np.log(t2 / t1) / np.log(n2 / n1)
    cpu_exponent = np.log(c2 / c1) / np.log(n2 / n1)
    print(f"\ngrowth exponent log(t2/t1)/log(N2/N1) = {exponent:.3f}   (target <= 1.1)")
    print(f"the same from CPU time (less sensitive to a shared machine) = {cpu_exponent:.3f}")
    print(f"both ok: {all(row[2].verdict == 'ok' for row in rows)}")


if __name__ == "__main__":
    main()
