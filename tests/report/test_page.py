"""The diagnose page: the summary first, then four sections with their figures."""

from __future__ import annotations

import re

import pytest

from gradprobe.diagnose.pipeline import DiagnoseConfig, run_diagnosis
from gradprobe.diagnose.tabular import bundled
from gradprobe.report.html import Figure, Summary, render_html
from gradprobe.report.page import SECTION_TITLES, diagnosis_page


@pytest.fixture(scope="module")
def diagnosis():  # type: ignore[no-untyped-def]
    config = DiagnoseConfig(layers=(6,), epochs=15, depth=6, width=16)
    return run_diagnosis(bundled("circles"), config)


def test_the_summary_lists_every_finding_with_its_level(diagnosis) -> None:  # type: ignore[no-untyped-def]
    page = diagnosis_page(diagnosis)
    assert isinstance(page.summary, Summary)
    assert [level for level, _, _ in page.summary.findings] == [
        f["level"] for f in diagnosis.findings
    ]
    levels = {f["level"] for f in diagnosis.findings}
    expected = "bad" if "bad" in levels else "warn" if "warn" in levels else "ok"
    assert page.summary.level == expected


def test_every_section_has_a_figure(diagnosis) -> None:  # type: ignore[no-untyped-def]
    page = diagnosis_page(diagnosis)
    assert [section.title for section in page.sections] == list(SECTION_TITLES)
    counts = [sum(isinstance(b, Figure) for b in section.blocks) for section in page.sections]
    assert counts == [2, 3, 2, 1]


def test_the_check_table_has_no_empty_diagnosis_column(diagnosis) -> None:  # type: ignore[no-untyped-def]
    text = render_html(diagnosis_page(diagnosis))
    assert diagnosis.check_initial.passed
    assert "<th>diagnosis</th>" not in text
    assert re.search(r'id="summary".*<h2>1\. Inputs', text, re.S)
