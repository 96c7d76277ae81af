"""A small slice of the fuzzing harness, runnable with pytest.

    PYTHONPATH=src python -m pytest benchmarks/test_fuzz_smoke.py -q -p no:cacheprovider

It checks the harness itself (each property's detector fires on a planted defect) and
runs a few seeded examples of some targets in-process. It asserts nothing about
gradprobe's current defects: those are what ``benchmarks/fuzz.py`` reports.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzz  # noqa: E402


def _props(record: dict) -> set[str]:
    return {prop for prop, _ in record["violations"]}


def test_detectors_fire_on_planted_defects() -> None:
    mutate = fuzz.Case("t", "planted", "a", "lambda a: a.__setitem__(0, 5.0)", ("np.zeros(3)",))
    assert "P2" in _props(fuzz.execute(mutate))
    freeze = fuzz.Case("t", "planted", "a", "lambda a: a.setflags(write=False)", ("np.zeros(3)",))
    assert "P2" in _props(fuzz.execute(freeze))
    crash = fuzz.Case("t", "planted", "x", "lambda x: 1 / x", ("0",), invalid=True)
    record = fuzz.execute(crash)
    assert "P1" in _props(record) and record["exc_type"] == "ZeroDivisionError"
    hang = fuzz.Case("t", "planted", "n", "lambda n: [None for _ in iter(int, 1)]", ("0",))
    assert "P3" in _props(fuzz.execute(hang, budget=0.5))
    quiet = fuzz.Case(
        "t", "planted", "x", "gradprobe.derivative", ("np.sin", "'abc'"), invalid=True
    )
    record = fuzz.execute(quiet)
    assert record["outcome"] == "refused" and not record["violations"]
    unnamed = fuzz.Case(
        "t", "planted", "eps", "gradprobe.derivative", ("np.sin", "'abc'"), invalid=True
    )
    assert "P1m" in _props(fuzz.execute(unnamed))


def test_reproducers_run_on_their_own() -> None:
    source = "p = P0()\nassert gradprobe.check_gradients(sq, p, grad_sq).verdict == 'ok'"
    exec(compile(fuzz.reproducer(source), "<reproducer>", "exec"), {})


def test_slice_is_deterministic() -> None:
    first = fuzz.run(
        targets=["derivative", "init.*"],
        examples=6,
        cap_finite=True,
        cli=False,
        isolate=False,
        budget=5.0,
        log=lambda _: None,
    )
    second = fuzz.run(
        targets=["derivative", "init.*"],
        examples=6,
        cap_finite=True,
        cli=False,
        isolate=False,
        budget=5.0,
        log=lambda _: None,
    )
    assert [r["source"] for r in first.records] == [r["source"] for r in second.records]
    assert first.table()[0][0] == "entry point"
