"""Benchmark: how long ``gradprobe --help`` takes to answer, against Python's own start.

Run:  python benchmarks/bench_startup.py [SRC ...]

Each SRC is a ``src`` folder holding a ``gradprobe`` package (default: this checkout's;
pass ``/path/to/main/src`` too to compare two versions). The runs are interleaved with
the anchors ``python -c pass`` and ``python -c "import numpy"`` in the same loop, so a
busy machine slows all of them alike; the medians and the ratios to the numpy anchor
are printed. The interpreter is ``sys.executable`` itself, not a shell shim.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 11
HERE = Path(__file__).resolve().parents[1] / "src"


def seconds(arguments: list[str], src: Path | None = None) -> float:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    started = time.perf_counter()
    subprocess.run([sys.executable, *arguments], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    sources = [Path(argument) for argument in sys.argv[1:]] or [HERE]
    rows: dict[str, list[float]] = {"python -c pass": [], "python -c 'import numpy'": []}
    for src in sources:
        rows[f"gradprobe --help ({src})"] = []
        rows[f"import gradprobe ({src})"] = []
    for _ in range(RUNS):
        rows["python -c pass"].append(seconds(["-c", "pass"]))
        rows["python -c 'import numpy'"].append(seconds(["-c", "import numpy"]))
        for src in sources:
            rows[f"gradprobe --help ({src})"].append(seconds(["-m", "gradprobe", "--help"], src))
            rows[f"import gradprobe ({src})"].append(seconds(["-c", "import gradprobe"], src))
    anchor = statistics.median(rows["python -c 'import numpy'"])
    print(f"load average {os.getloadavg()[0]:.2f}; medians of {RUNS} runs")
    for name, times in rows.items():
        median = statistics.median(times)
        print(f"{name:<70} {median:6.3f} s  {median / anchor:5.2f}× import numpy")


if __name__ == "__main__":
    main()
