"""The check report: its properties, lookups, JSON and the text table, on real checks."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from gradprobe import GradCheckReport, check_gradients
from gradprobe._text import WIDTH
from gradprobe.check.report import format_table
from gradprobe.errors import InvalidArgumentError

Params = dict[str, np.ndarray]


def _loss(p: Params) -> float:
    return float(np.sum(np.sin(p["W"])) + np.sum(p["b"] ** 2))


def _grads(p: Params) -> Params:
    return {"W": np.cos(p["W"]), "b": 2 * p["b"]}


def _report(**options: Any) -> GradCheckReport:
    params = {"W": np.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": np.array([0.5, -0.25])}
    return check_gradients(_loss, params, _grads, **options)


def _wrong_report() -> GradCheckReport:
    params = {"W": np.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": np.array([0.5, -0.25])}

    def grads(p: Params) -> Params:
        result = _grads(p)
        result["b"] = 3 * p["b"]  # b's gradient 1.5 times too large
        return result

    return check_gradients(_loss, params, grads)


def test_a_passing_report() -> None:
    report = _report()
    assert report.passed and report.verdict == "ok"
    assert not report.sampled and report.checked == report.total == 8
    assert report.wrong_parameters == [] and report.kinks == 0
    assert report.parameter("b").checked == 2


def test_a_failing_report_names_its_parameter() -> None:
    report = _wrong_report()
    assert not report.passed and report.wrong_parameters == ["b"]
    assert report.parameter("W").verdict == "ok"
    with pytest.raises(InvalidArgumentError, match=r"name: got 'c', expected one of \['W', 'b'\]"):
        report.parameter("c")


def test_entries_are_every_checked_value_in_theta_order() -> None:
    report = _report(sample=2, seed=1)
    assert report.sampled and report.mode == "sampled"
    names = [entry.name for entry in report.entries]
    assert len(names) == report.checked == 4
    assert report.entries is report.entries  # made once
    flat = [report.table.layout.coordinate_name(int(i)) for i in report.table.indices]
    assert names == flat and list(report.table.indices) == sorted(report.table.indices)


def test_worst_is_the_largest_error_over_bound_first() -> None:
    report = _wrong_report()
    worst = report.worst(3)
    significance = [entry.significance for entry in report.entries]
    assert [entry.significance for entry in worst] == sorted(significance, reverse=True)[:3]
    # 3b against 2b: relative error 1/5 in every entry of b, far beyond their bounds.
    assert worst[0].parameter == "b" and worst[0].relative_error == pytest.approx(0.2)
    assert worst[0].significance > 3 and worst[0].verdict == "wrong"
    assert report.worst(0) == [] and len(report.worst(100)) == 8


def test_kinks_are_the_sum_over_rows() -> None:
    params = {"w": np.array([0.0, 1.0]), "v": np.array([0.0, 2.0])}

    def loss(p: Params) -> float:
        return float(np.sum(np.abs(p["w"])) + np.sum(np.abs(p["v"])))

    def grads(p: Params) -> Params:  # at 0 the right-hand slope, a valid one-sided choice
        return {"w": np.where(p["w"] >= 0, 1.0, -1.0), "v": np.where(p["v"] >= 0, 1.0, -1.0)}

    report = check_gradients(loss, params, grads)
    assert [row.kinks for row in report.parameters] == [1, 1]
    assert report.kinks == 2 and report.passed


def test_to_dict_is_json_with_the_ten_worst_entries(rng: np.random.Generator) -> None:
    W = rng.normal(size=(4, 5))
    report = check_gradients(
        lambda p: float(np.sum(p["W"] ** 3)), {"W": W}, {"W": 3 * W**2 + rng.normal(size=(4, 5))}
    )
    data = json.loads(json.dumps(report.to_dict()))
    assert data["verdict"] == report.verdict == "wrong" and data["passed"] is False
    assert len(data["worst"]) == 10
    assert [w["name"] for w in data["worst"]] == [e.name for e in report.worst(10)]
    assert data["parameters"] == [row.to_dict() for row in report.parameters]
    for key in ("thresholds", "steps"):
        assert data[key] == list(getattr(report, key))
    assert data["total"] == 20 and data["sampled"] is False and data["kinks"] == 0


def test_the_table_of_a_passing_check() -> None:
    report = _report()
    text = format_table(report)
    assert text == str(report) == format_table(report, width=WIDTH)
    lines = text.splitlines()
    assert lines[0].startswith("✓ gradient check: OK, relative difference ")
    assert "(ok below 1e-06, wrong above 1e-04)." in lines[0]
    assert lines[1].startswith("Checked 8 of 8 values (full) with central differences: ")
    assert lines[2].startswith("Step ε auto (") and "float64" in lines[2]
    rows = {line.split()[0]: line.split() for line in lines if line.split()[:1] in (["W"], ["b"])}
    assert rows["W"][1:5] == ["2×3", "6", f"{report.parameter('W').difference:.2e}", "ok"]
    assert rows["b"][1] == "2"
    assert "worst entries" not in text and "\x1b[" not in text  # plain text, no colour codes


def test_the_table_of_a_failing_check_shows_the_worst_and_the_diagnosis() -> None:
    text = str(_wrong_report())
    assert text.startswith("✗ gradient check: WRONG")
    after = text.split("worst entries", 1)[1].splitlines()
    worst = after[2:4]  # below the header and its rule
    assert all(line.startswith("b[") for line in worst), after
    assert "\nb: analytic ≈ 1.500 × numerical" in text


def test_str_and_the_command_line_render_alike() -> None:
    # One renderer: the command line's print_check gives str(report) at the same width.
    import io

    from rich.console import Console

    from gradprobe.report.terminal import print_check

    report = _wrong_report()
    out = io.StringIO()
    print_check(Console(file=out, width=70, color_system=None), report)
    assert out.getvalue().rstrip("\n") == format_table(report, width=70)


def test_long_names_fold_and_long_notes_wrap_within_the_width() -> None:
    name = "a_parameter_with_a_name_far_longer_than_its_column_" * 2
    note = "a note " * 40
    report = check_gradients(
        lambda p: float(np.sum(p[name] ** 2)),
        {name: np.ones(3)},
        {name: 3 * np.ones(3)},
        eps=1e-3,
        notes=[note],
    )
    for width in (WIDTH, 60):
        lines = format_table(report, width=width).splitlines()
        assert max(len(line) for line in lines) <= width
        assert all(line == line.rstrip() for line in lines)
        joined = "".join(lines).replace(" ", "")
        # The row and each worst entry, whole: folded onto more lines, never cut.
        assert all(f"{name}[{k}]" in joined for k in range(3)) and joined.count(name) >= 4
        assert any(line.startswith("Step ε 0.001 (") for line in lines)
        start = next(k for k, line in enumerate(lines) if line.startswith("note: a note"))
        assert " ".join(lines[start:]).split() == ["note:", *note.split()]


class TestWorstArgument:
    @pytest.mark.parametrize("k", [-1, "a", 1.5])
    def test_worst_takes_a_count(self, k: Any) -> None:
        report = _report()
        with pytest.raises(InvalidArgumentError, match="k: got"):
            report.worst(k)


# ------------------------------------------------------------- progress, views, layout


def _check(factor: float):  # type: ignore[no-untyped-def]
    W = np.arange(1.0, 1001.0).reshape(50, 20) / 100
    return check_gradients(lambda p: float(np.sum(p["W"] ** 2)), {"W": W}, {"W": factor * W})


def test_repr_is_one_short_line_however_large_the_check() -> None:
    text = repr(_check(2.0))
    assert "\n" not in text and len(text) < 200
    assert text.startswith("GradCheckReport(verdict='ok'") and "total=1000" in text


def test_notebook_view_shows_the_verdict_mark_and_rows() -> None:
    good, bad = _check(2.0)._repr_html_(), _check(3.0)._repr_html_()
    assert "✓" in good and "✗" not in good
    assert "✗" in bad and "<td" in bad and ">wrong<" in bad
    assert "#1e7f46" in good and "#b42318" in bad  # colours differ with the level


def test_summary_names_the_worst_entries_of_a_failing_check() -> None:
    lines = _check(3.0).summary()
    assert lines[0].startswith("WRONG, relative difference")
    assert lines[2].startswith("Worst entries: W[")
    assert not _check(3.0).partial
