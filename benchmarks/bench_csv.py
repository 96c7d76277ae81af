"""Benchmark: ``load_csv`` on a 50,000 × 20 file against NumPy's loader alone.

Run:  python benchmarks/bench_csv.py [SRC ...]

Each SRC is a ``src`` folder holding a ``gradprobe`` package (default: this checkout's);
each is timed in its own process, interleaved with ``numpy.loadtxt`` on the same file
as the anchor, and the medians and ratios are printed. scikit-learn is imported before
timing: what is measured is reading and splitting, not importing.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

RUNS = 5
HERE = Path(__file__).resolve().parents[1] / "src"
ROWS, FEATURES = 50_000, 20

_TIMER = """
import sys, time
import numpy as np
import sklearn.model_selection
from gradprobe.diagnose.tabular import load_csv
path = sys.argv[1]
started = time.perf_counter()
load_csv(path, "label")
ours = time.perf_counter() - started
started = time.perf_counter()
np.loadtxt(path, delimiter=",", skiprows=1)
print(ours, time.perf_counter() - started)
"""


def main() -> None:
    sources = [Path(argument) for argument in sys.argv[1:]] or [HERE]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(ROWS, FEATURES)) * rng.uniform(0.1, 100, FEATURES)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        header = ",".join([f"f{i}" for i in range(FEATURES)] + ["label"])
        body = "\n".join(",".join(f"{v:.6g}" for v in row) + f",{int(row[0] > 0)}" for row in X)
        path.write_text(header + "\n" + body + "\n")
        times: dict[str, list[float]] = {str(src): [] for src in sources}
        anchors: list[float] = []
        for _ in range(RUNS):
            for src in sources:
                env = dict(os.environ, PYTHONPATH=str(src))
                result = subprocess.run(
                    [sys.executable, "-c", _TIMER, str(path)],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                ours, anchor = (float(v) for v in result.stdout.split())
                times[str(src)].append(ours)
                anchors.append(anchor)
    anchor = statistics.median(anchors)
    print(f"load average {os.getloadavg()[0]:.2f}; {ROWS:,} × {FEATURES} CSV; medians of {RUNS}")
    print(f"{'numpy.loadtxt (anchor)':<60} {anchor:6.3f} s")
    for src, values in times.items():
        median = statistics.median(values)
        print(f"{'load_csv (' + src + ')':<60} {median:6.3f} s  {median / anchor:5.2f}× loadtxt")


if __name__ == "__main__":
    main()
