"""The diagnose page: four sections laid out from a diagnosis, written with its JSON together."""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gradprobe import check_gradients, depth_sweep
from gradprobe.diagnose.pipeline import DiagnoseConfig, run_diagnosis
from gradprobe.diagnose.result import Diagnosis
from gradprobe.diagnose.tabular import bundled
from gradprobe.report.html import Figure, Findings, Page, Paragraph, Summary, Table, render_html
from gradprobe.report.jsonout import to_json
from gradprobe.report.page import SECTION_TITLES, diagnosis_page, write_depth_plot, write_page

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def diagnosis() -> Diagnosis:
    config = DiagnoseConfig(layers=(5,), epochs=3, depth=4, width=8, seed=1)
    return run_diagnosis(bundled("circles", seed=1), config)


@pytest.fixture(scope="module")
def page(diagnosis: Diagnosis) -> Page:
    return diagnosis_page(diagnosis)


def _blocks(page, kind):  # type: ignore[no-untyped-def]
    return {
        section.title: [block for block in section.blocks if isinstance(block, kind)]
        for section in page.sections
    }


def test_the_page_has_the_four_sections_in_order(page: Page) -> None:
    assert [section.title for section in page.sections] == list(SECTION_TITLES)
    assert page.title == "gradprobe diagnose — circles"
    assert page.subtitle.startswith("circles: classification, ")
    assert "Network 2-5-1, relu, init 'auto'" in page.subtitle and "seed 1." in page.subtitle
    figures = _blocks(page, Figure)
    assert [len(figures[title]) for title in SECTION_TITLES] == [2, 3, 2, 1]
    assert all(figure.png.startswith(PNG_MAGIC) for f in figures.values() for figure in f)


def test_features_are_listed_largest_spread_first(diagnosis: Diagnosis) -> None:
    features = [
        {"name": "narrow", "mean": 0.0, "std": 0.5, "min": -1.0, "max": 1.0},
        {"name": "wide", "mean": 3.0, "std": 40.0, "min": -90.0, "max": float("nan")},
    ]
    page = diagnosis_page(replace(diagnosis, features=features))
    [table] = _blocks(page, Table)["Inputs"]
    assert table.headers == ["feature", "mean", "std", "min", "max"]
    assert table.rows == [["wide", "3", "40", "-90", "—"], ["narrow", "0", "0.5", "-1", "1"]]
    assert table.caption == "The largest spread is 80× the smallest."


def test_each_finding_appears_under_its_topic_and_all_in_the_summary(
    diagnosis: Diagnosis, page: Page
) -> None:
    findings = _blocks(page, Findings)
    topics = ("inputs", "depth", "gradients", "result")
    for section, topic in zip(SECTION_TITLES, topics, strict=True):
        [block] = findings[section]
        expected = [(f["level"], f["text"]) for f in diagnosis.findings if f["topic"] == topic]
        assert list(block.items) == expected
    assert page.summary is not None
    assert [(level, text) for level, _, text in page.summary.findings] == [
        (f["level"], f["text"]) for f in diagnosis.findings
    ]


def test_the_check_tables_highlight_what_is_not_ok(diagnosis: Diagnosis) -> None:
    W = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    failing = check_gradients(
        lambda p: float(np.sum(p["W"] ** 2) + np.sum(p["b"] ** 2)),
        {"W": W, "b": np.ones(2)},
        {"W": 2 * W, "b": 4 * np.ones(2)},
    )
    page = diagnosis_page(replace(diagnosis, check_trained=failing))
    initial, trained = _blocks(page, Table)["Gradient check"]
    assert initial.highlight == []
    assert trained.highlight == [1]
    assert trained.rows[0][:5] == ["W", "2×3", "6", f"{failing.parameters[0].difference:.2e}", "ok"]
    assert trained.rows[1][4] == "wrong" and "2.000 × numerical" in trained.rows[1][5]
    paragraphs = [p.text for p in _blocks(page, Paragraph)["Gradient check"]]
    assert any(p.startswith("After training: WRONG, relative difference") for p in paragraphs)


def test_the_depth_section_shows_the_sweep_and_highlights_unhealthy_inits(
    diagnosis: Diagnosis, page: Page
) -> None:
    layers, sweep = _blocks(page, Table)["Depth and initialization"]
    assert len(layers.rows) == len(diagnosis.propagation.layers)
    assert [row[0] for row in sweep.rows] == [row["init"] for row in diagnosis.sweep.rows]
    unhealthy = [i for i, r in enumerate(diagnosis.sweep.rows) if r["verdict"] != "healthy"]
    assert sweep.highlight == unhealthy and unhealthy


def test_a_diverged_run_shows_a_dash_for_its_metric(diagnosis: Diagnosis) -> None:
    normalized = replace(diagnosis.normalized, test_metric=None, diverged_at=2)
    page = diagnosis_page(replace(diagnosis, normalized=normalized))
    first = _blocks(page, Paragraph)["Result"][0]
    assert first.text.startswith("Test accuracy of the network trained on normalized inputs: —")


def test_write_page_writes_the_rendered_page_and_the_json(
    diagnosis: Diagnosis, tmp_path: Path
) -> None:
    folder = tmp_path / "new" / "report"
    html, data = write_page(diagnosis, folder)
    assert (html, data) == (folder / "report.html", folder / "report.json")
    assert sorted(os.listdir(folder)) == ["report.html", "report.json"]
    text = html.read_text(encoding="utf-8")
    for number, title in enumerate(SECTION_TITLES, start=1):
        assert f"<h2>{number}. {title}</h2>" in text
    assert data.read_text(encoding="utf-8") == to_json(diagnosis.to_dict())
    assert json.loads(data.read_text())["data"]["name"] == "circles"


def test_write_depth_plot_writes_a_png(tmp_path: Path) -> None:
    path = write_depth_plot(depth_sweep(3, 8, inits=["he"]), tmp_path / "plots" / "sweep.png")
    assert path == tmp_path / "plots" / "sweep.png"
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert os.listdir(path.parent) == ["sweep.png"]


# ------------------------------------------------------------- progress, views, layout


@pytest.fixture(scope="module")
def circles_diagnosis():  # type: ignore[no-untyped-def]
    config = DiagnoseConfig(layers=(6,), epochs=15, depth=6, width=16)
    return run_diagnosis(bundled("circles"), config)


def test_the_summary_lists_every_finding_with_its_level(circles_diagnosis) -> None:  # type: ignore[no-untyped-def]
    page = diagnosis_page(circles_diagnosis)
    assert isinstance(page.summary, Summary)
    assert [level for level, _, _ in page.summary.findings] == [
        f["level"] for f in circles_diagnosis.findings
    ]
    levels = {f["level"] for f in circles_diagnosis.findings}
    expected = "bad" if "bad" in levels else "warn" if "warn" in levels else "ok"
    assert page.summary.level == expected


def test_every_section_has_a_figure(circles_diagnosis) -> None:  # type: ignore[no-untyped-def]
    page = diagnosis_page(circles_diagnosis)
    assert [section.title for section in page.sections] == list(SECTION_TITLES)
    counts = [sum(isinstance(b, Figure) for b in section.blocks) for section in page.sections]
    assert counts == [2, 3, 2, 1]


def test_the_check_table_has_no_empty_diagnosis_column(circles_diagnosis) -> None:  # type: ignore[no-untyped-def]
    text = render_html(diagnosis_page(circles_diagnosis))
    assert circles_diagnosis.check_initial.passed
    assert "<th>circles_diagnosis</th>" not in text
    assert re.search(r'id="summary".*<h2>1\. Inputs', text, re.S)
