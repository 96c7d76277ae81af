"""A fast seeded slice of benchmarks/fidelity.py, with its exact outcome.

The benchmark (an adversarial population judged against PyTorch float64 autograd) runs
in full from ``benchmarks/``; this slice, every k-th case of each family (71 cases),
pins what gradprobe must say on it: no false alarm, no inconclusive verdict on a
correct gradient, no missed detectable bug, no "ok" over a failing row, the planted
parameter and entry named, the pattern diagnosed. The course-loop and gradcheck
baselines are not run here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "fidelity.py"


@pytest.fixture(scope="module")
def fidelity() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fidelity_benchmark", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def outcomes(fidelity: ModuleType) -> list:
    cases = fidelity.build_cases(quick=True)
    skipped = {case.baseline_key: (False, float("nan"), False) for case in cases}
    with np.errstate(all="ignore"):
        return [fidelity.judge(case, skipped) for case in cases]


def test_the_slice_is_the_seeded_one(outcomes: list) -> None:
    assert len(outcomes) == 71
    assert sum(o.correct for o in outcomes) == 37
    assert sum(bool(o.detectable) for o in outcomes) == 28
    # The loss-crossing-0 / +1e10 family is in the slice.
    assert sum(o.case_id.startswith("crossing-") for o in outcomes) == 8


def test_no_verdict_is_wrong_on_the_slice(outcomes: list) -> None:
    failures = [(o.case_id, o.problems) for o in outcomes if o.problems]
    assert failures == []


def test_every_detectable_bug_is_found_and_named(outcomes: list) -> None:
    found = [o for o in outcomes if o.detectable]
    assert all(o.verdict in ("suspicious", "wrong") for o in found)
    assert all(not o.passed for o in found)


def test_the_table_of_the_slice(fidelity: ModuleType, outcomes: list) -> None:
    rows = fidelity.summarize(outcomes)
    total = rows[-2]
    # cases, correct, bugs (detectable), then the seven outcome columns
    assert total[1:4] == ["71", "37", "34 (28)"]
    assert total[4:11] == ["0"] * 7
