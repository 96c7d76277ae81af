"""The terminal renderer: whole names at any width, no trailing spaces, progress bars."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console

from gradprobe.check.checker import check_gradients
from gradprobe.report.terminal import emit, print_check, progress_bars

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


def test_emit_strips_the_padding_rich_adds() -> None:
    from rich import box
    from rich.table import Table

    table = Table("a", "b", box=box.SIMPLE)
    table.add_row("x" * 20, "y")
    table.add_row("x", "y")
    out = io.StringIO()
    padded = io.StringIO()
    Console(file=padded, width=80).print(table)
    emit(Console(file=out, width=80), table)
    assert any(line != line.rstrip() for line in padded.getvalue().splitlines())  # rich pads
    assert all(line == line.rstrip() for line in out.getvalue().splitlines())


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
