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
    assert text == str(report)
    lines = text.splitlines()
    assert lines[0].startswith("gradient check: OK   difference ")
    assert "(ok < 1e-06, suspicious < 1e-04)" in lines[0]
    assert lines[1].startswith("method central, eps auto (steps ")
    assert lines[2] == "checked 8 of 8 values (full); 0 kinks"
    rows = {line.split()[0]: line for line in lines[5:7]}
    assert rows["W"].split()[1:3] == ["(2,", "3)"] and rows["b"].split()[1] == "(2,)"
    assert "worst entries:" not in text and "diagnosis:" not in text


def test_the_table_of_a_failing_check_shows_the_worst_and_the_diagnosis() -> None:
    text = str(_wrong_report())
    assert "gradient check: WRONG" in text
    worst = text.split("worst entries:\n", 1)[1].splitlines()[:2]
    assert all(line.strip().startswith("b[") for line in worst)
    assert "diagnosis:\n  b: analytic ≈ 1.500 × numerical" in text


def test_long_notes_and_names_are_wrapped_or_cut_to_the_width() -> None:
    name = "a_parameter_with_a_name_far_longer_than_its_column"
    note = "a note " * 40
    report = check_gradients(
        lambda p: float(np.sum(p[name] ** 2)),
        {name: np.ones(3)},
        {name: np.ones(3)},
        eps=1e-3,
        notes=[note],
    )
    lines = str(report).splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    assert "eps 0.001" in lines[1]
    notes = lines[lines.index("notes:") + 1 :]
    assert notes[0].startswith("  - a note") and all(line.startswith("    ") for line in notes[1:])
    assert " ".join(line.strip(" -") for line in notes).split() == note.split()


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
