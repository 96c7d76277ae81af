"""Terminal output: tables, the diagnose summary and progress bars, printed to a string."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from rich.progress import Progress

from gradprobe import depth_sweep, derivative, recommend_scale
from gradprobe.check.checker import check_gradients
from gradprobe.diagnose.pipeline import DiagnoseConfig, run_diagnosis
from gradprobe.diagnose.result import Diagnosis
from gradprobe.diagnose.tabular import bundled
from gradprobe.report.terminal import (
    ProgressBars,
    print_check,
    print_depth_sweep,
    print_derivatives,
    print_diagnosis,
    progress_bars,
)


def _console() -> tuple[Console, io.StringIO]:
    stream = io.StringIO()
    return Console(file=stream, width=100, color_system=None, highlight=False), stream


def _rows(text: str) -> dict[str, str]:
    return {line.split()[0]: line for line in text.splitlines() if line.strip()}


# --------------------------------------------------------------------- derivatives


def _cube(t: float) -> float:
    return t**3


def test_each_method_is_a_row_with_its_error_against_the_exact_value() -> None:
    console, out = _console()
    results = [(m, derivative(_cube, 1.0, eps=0.01, method=m, full_output=True)) for m in
               ("forward", "central", "richardson")]  # fmt: skip
    print_derivatives(console, "x**3", "x", "3*x**2", 1.0, 3.0, results)
    text = out.getvalue()
    assert text.splitlines()[:2] == [
        "f(x) = x**3    f'(x) = 3*x**2",
        "exact f'(1) = 3  (sympy)",
    ]
    rows = _rows(text)
    assert rows["forward"].split()[1:] == ["(f(x+ε)−f(x))/ε", "0.01", "3.0301", "3.01e-02", "O(ε)"]
    assert "3.0001" in rows["central"] and "1.00e-04" in rows["central"]
    assert "O(ε⁸)" in rows["richardson"]
    # (3.0301 − 3) / (3.0001 − 3) = 301.
    assert "two-sided (central) is 301× more accurate than one-sided (forward) here" in text


def test_a_method_that_does_not_apply_is_na_with_its_reason_printed_literally() -> None:
    console, out = _console()
    central = derivative(abs, 1.0, full_output=True)
    results = [("central", central), ("complex", "not analytic: [bold]abs[/bold] drops Im")]
    print_derivatives(console, "abs(x)", "x", "sign(x)", 1.0, 1.0, results)
    text = out.getvalue()
    assert _rows(text)["complex"].split()[1:] == ["Im", "f(x+iε)/ε", "—", "n/a", "n/a", "O(ε²)"]
    assert "complex: n/a, not analytic: [bold]abs[/bold] drops Im" in text
    assert "more accurate" not in text  # no forward row to compare with


def test_an_exact_central_difference_gives_no_ratio() -> None:
    console, out = _console()
    results = [(m, derivative(lambda t: 2 * t, 0.5, method=m, full_output=True))
               for m in ("forward", "central")]  # fmt: skip
    print_derivatives(console, "2*x", "x", "2", 0.5, 2.0, results)
    assert "more accurate" not in out.getvalue()  # the central error is 0: no division


# ----------------------------------------------------------------------- progress


def test_progress_bars_keep_one_task_per_stage() -> None:
    console, _ = _console()
    with Progress(console=console, auto_refresh=False) as progress:
        bars = ProgressBars(progress)
        bars("training", 0, 10)
        bars("training", 4, 10)
        bars("gradient check", 1, 2)
        bars("training", 10, 10)
        assert len(progress.tasks) == 2
        tasks = {task.description: task for task in progress.tasks}
    assert list(tasks) == ["training", "gradient check"]
    assert (tasks["training"].completed, tasks["training"].total) == (10, 10)
    assert tasks["training"].finished and not tasks["gradient check"].finished
    assert set(bars.tasks) == {"training", "gradient check"}


# ------------------------------------------------------------------------- sweeps


def test_the_depth_sweep_table_and_the_recommended_scale(tmp_path: Path) -> None:
    sweep = depth_sweep(6, 16, "relu", inits=["zeros", "he"], seed=2, batch_size=32)
    console, out = _console()
    plot = tmp_path / "sweep.png"
    print_depth_sweep(console, sweep, recommend_scale("relu"), "relu", 2, plot)
    text = out.getvalue()
    assert text.splitlines()[0] == "depth sweep: 6 layers of 16 units, relu (seed 2)"
    rows = _rows(text)
    he, zeros = sweep.rows[1], sweep.rows[0]
    assert rows["he"].split()[:3] == ["he", he["verdict"], "—"]
    assert rows["zeros"].split()[:3] == ["zeros", zeros["verdict"], str(zeros["trouble_layer"])]
    assert f"{he['first_std']:.3g}" in rows["he"]
    assert "recommended for relu: Var(W) = 2/fan_in (forward), 2/fan_in (backward)" in text
    assert text.rstrip().endswith(f"figure: {plot}")
    console, out = _console()
    tanh = recommend_scale("tanh")
    print_depth_sweep(console, sweep, tanh, "tanh", 2, None)
    assert "figure:" not in out.getvalue()
    assert f"recommended for tanh: Var(W) = {tanh.forward:.3g}/fan_in (forward)" in out.getvalue()


# ----------------------------------------------------------------------- diagnose


@pytest.fixture(scope="module")
def diagnosis() -> Diagnosis:
    config = DiagnoseConfig(layers=(4,), epochs=3, depth=4, width=8)
    return run_diagnosis(bundled("circles"), config)


def test_the_summary_groups_findings_by_topic_with_their_marks(diagnosis: Diagnosis) -> None:
    findings = [
        {"level": "ok", "topic": "inputs", "text": "first input finding"},
        {"level": "warn", "topic": "inputs", "text": "second [red]input[/red] finding"},
        {"level": "bad", "topic": "result", "text": "the result"},
        {"level": "ok", "topic": "depth", "text": "a depth finding"},
    ]
    console, out = _console()
    paths = (Path("out/report.html"), Path("out/report.json"))
    print_diagnosis(console, replace(diagnosis, findings=findings, seconds=1.25), paths, 3.5)
    lines = out.getvalue().splitlines()
    data = diagnosis.dataset
    assert lines[0] == (
        f"gradprobe diagnose: circles (classification, {data.X_train.shape[0]:,} train / "
        f"{data.X_test.shape[0]:,} test, 2 features)"
    )
    assert lines[1] == "network 2-4-1 relu, adam lr 0.01, 3 epochs"
    assert lines[2].split() == ["1.", "Inputs", "✓", "first", "input", "finding"]
    assert lines[3].split() == ["!", "second", "[red]input[/red]", "finding"]  # not markup
    assert lines[4].split() == ["2.", "Depth", "and", "init", "✓", "a", "depth", "finding"]
    # The gradients topic has no finding here, so no heading of its own.
    assert lines[5].split() == ["4.", "Result", "✗", "the", "result"]
    assert len(lines) == 7
    assert lines[-1] == "report: out/report.html  data: out/report.json  (3.5 s, analysis 1.2 s)"


def test_every_finding_of_a_real_run_is_printed(diagnosis: Diagnosis) -> None:
    console, out = _console()
    print_diagnosis(console, diagnosis, (Path("a.html"), Path("a.json")), 1.0)
    text = " ".join(out.getvalue().split())
    for heading in ("1. Inputs", "2. Depth and init", "3. Gradient check", "4. Result"):
        assert heading in text
    for finding in diagnosis.findings:
        assert " ".join(finding["text"].split()) in text
    assert np.isfinite(diagnosis.seconds)


# ------------------------------------------------------------- progress, views, layout

NAMES = [
    "layers.0.self_attn.in_proj_weight",
    "layers.0.self_attn.in_proj_bias",
    "layers.0.self_attn.out_proj.weight",
    "layers.0.self_attn.out_proj.bias",
]


def _report(bug: bool = True):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    params = {name: rng.normal(size=(3, 4)) for name in NAMES}

    def loss(p: dict[str, np.ndarray]) -> float:
        return float(sum(np.sum(value**2) for value in p.values()))

    grads = {name: 2 * value for name, value in params.items()}
    if bug:
        grads[NAMES[2]] = 3 * params[NAMES[2]]
    return check_gradients(loss, params, grads)


def _render(report, width: int) -> str:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    print_check(Console(file=out, width=width, color_system=None), report)
    return out.getvalue()


@pytest.mark.parametrize("width", [100, 60])
def test_no_name_is_cut_and_no_line_ends_in_spaces(width: int) -> None:
    text = _render(_report(), width)
    lines = text.splitlines()
    assert all(line == line.rstrip() for line in lines)
    assert max(len(line) for line in lines) <= width
    joined = "".join(line.strip() for line in lines).replace(" ", "")
    for name in NAMES:  # whole, or folded onto a second line: never cut
        assert name in joined
    if width == 100:
        for name in NAMES:
            assert any(line.startswith(name) for line in lines), name
    assert "gradient check: WRONG" in text and "worst entries" in text


def test_the_planted_bug_is_the_wrong_row() -> None:
    rows = {line.split()[0]: line for line in _render(_report(), 120).splitlines() if line}
    assert "wrong" in rows[NAMES[2]] and "ok" in rows[NAMES[0]]


def test_str_of_the_report_still_works() -> None:
    assert "gradient check: WRONG" in str(_report())


def test_progress_bars_are_off_when_not_a_terminal_and_count_when_one() -> None:
    quiet = io.StringIO()
    with progress_bars(Console(file=quiet, force_terminal=False)) as bars:
        bars.stage("values")(5, 10)
    assert quiet.getvalue() == ""
    loud = io.StringIO()
    with progress_bars(Console(file=loud, force_terminal=True, width=100)) as bars:
        callback = bars.stage("values differentiated")
        callback(3, 10)
        bars.progress.refresh()
        task = bars.progress.tasks[0]
        assert (task.completed, task.total) == (3, 10)
    assert "values differentiated" in loud.getvalue()
    off = io.StringIO()
    with progress_bars(Console(file=off, force_terminal=True), enabled=False) as bars:
        bars.stage("values")(1, 2)
    assert "values" not in off.getvalue()
