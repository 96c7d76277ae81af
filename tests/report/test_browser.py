"""The default ``gradprobe diagnose`` run, end to end: a real process, a real browser.

One session-scoped run of the command with its default options (bundled breast-cancer
data) feeds every test here: the report opens from disk in Debian's headless
Chromium without console errors, every figure decodes (one or more per section), every
section heading is there, an ok and a warning finding are drawn in different colours
(as the browser computes them, not as the style sheet says), the page fits a 400 px
phone without sideways scrolling, and ``report.json`` matches the schema.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from playwright import sync_api

from gradprobe.report.jsonout import validate_report
from gradprobe.report.page import SECTION_TITLES

CHROMIUM = Path("/usr/bin/chromium")
# Loss curves and cost contours; this network's signals, the sweep, the deep linear
# network; error against ε and the bands; the training metric.
FIGURES = 8
FIGURES_PER_SECTION = [2, 3, 2, 1]
# The browser is Debian's; nothing may be downloaded and nothing fetched from the network.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run ``python -m gradprobe diagnose`` once with default options, in a fresh folder."""
    folder = tmp_path_factory.mktemp("default-diagnose")
    started = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-m", "gradprobe", "diagnose"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "100"},
    )
    return {
        "process": process,
        "seconds": time.perf_counter() - started,
        "folder": folder / "gradprobe-report",
    }


def test_default_run_succeeds_and_summarizes(default_run: dict[str, Any]) -> None:
    process = default_run["process"]
    assert process.returncode == 0, process.stderr
    assert "Traceback" not in process.stdout + process.stderr
    assert "breast_cancer" in process.stdout
    for line in ("1. Inputs", "2. Depth and init", "3. Gradient check", "4. Result"):
        assert line in process.stdout
    assert "Test accuracy" in process.stdout
    # The budget is a minute on two cores; leave room for a loaded test machine.
    assert default_run["seconds"] < 60


def test_default_report_json_validates_against_the_schema(default_run: dict[str, Any]) -> None:
    data = json.loads((default_run["folder"] / "report.json").read_text())
    validate_report(data)
    assert data["data"]["name"] == "breast_cancer"
    assert data["inputs"]["normalizer"]["fitted_on"] == "train"
    assert data["inputs"]["scale_ratio"] > 1000  # the point of the Inputs section
    assert data["gradient_check"]["at_initialization"]["verdict"] == "ok"
    assert data["result"]["test"] > 0.9


def test_schema_rejects_a_broken_report(default_run: dict[str, Any]) -> None:
    data = json.loads((default_run["folder"] / "report.json").read_text())
    data["gradient_check"]["after_training"]["verdict"] = "fine"
    with pytest.raises(jsonschema.ValidationError):
        validate_report(data)
    del data["result"]
    with pytest.raises(jsonschema.ValidationError):
        validate_report(data)


def test_report_has_no_external_references(default_run: dict[str, Any]) -> None:
    page = (default_run["folder"] / "report.html").read_text()
    assert "<script" not in page
    for marker in ("http://", "https://", "//fonts", "@import", "url("):
        assert marker not in page, marker


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/check.sh)")
def test_report_in_a_real_browser(default_run: dict[str, Any], tmp_path: Path) -> None:
    report = default_run["folder"] / "report.html"
    messages: list[str] = []
    failed: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda error: messages.append(f"pageerror: {error}"))
            page.on("requestfailed", lambda request: failed.append(request.url))
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(report.as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])"
            )
            headings = page.eval_on_selector_all("h2", "els => els.map(e => e.textContent)")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert not [m for m in messages if m.startswith(("error", "pageerror"))], messages
    assert not failed
    assert all(url.startswith(("file://", "data:")) for url in requests), requests
    assert len(images) == FIGURES
    assert all(complete and width > 0 and height > 0 for complete, width, height in images)
    assert headings == [f"{n}. {title}" for n, title in enumerate(SECTION_TITLES, start=1)]
    assert (tmp_path / "report.png").stat().st_size > 10_000


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/check.sh)")
def test_a_broken_image_is_caught(tmp_path: Path) -> None:
    """The browser check can fail: a page with an undecodable image does not pass."""
    page_file = tmp_path / "broken.html"
    page_file.write_text('<html><body><img src="data:image/png;base64,AAAA"></body></html>')
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page()
            page.goto(page_file.as_uri(), wait_until="load")
            widths = page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
        finally:
            browser.close()
    assert widths == [0]


def _in_browser(path: Path, width: int, script: str) -> Any:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(path.as_uri(), wait_until="load")
            return page.evaluate(script)
        finally:
            browser.close()


_COLOURS = """() => {
  const style = (selector) => {
    const element = document.querySelector(selector);
    const computed = getComputedStyle(element);
    return {edge: computed.borderLeftColor, fill: computed.backgroundColor,
            text: computed.color, mark: getComputedStyle(element.querySelector('.mark')).color};
  };
  return {ok: style('#summary li.ok'), warn: style('#summary li.warn')};
}"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/check.sh)")
def test_ok_and_warning_findings_are_drawn_in_different_colours(
    default_run: dict[str, Any],
) -> None:
    colours = _in_browser(default_run["folder"] / "report.html", 1100, _COLOURS)
    ok, warn = colours["ok"], colours["warn"]
    assert ok["edge"] != warn["edge"] and ok["fill"] != warn["fill"] and ok["mark"] != warn["mark"]
    # The old bug: every edge took the text colour.
    assert ok["edge"] != ok["text"] and warn["edge"] != warn["text"]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/check.sh)")
def test_the_colour_check_fails_on_the_old_style_sheet(tmp_path: Path) -> None:
    """The colour test can fail: the old rule order paints every edge in the text colour."""
    page_file = tmp_path / "old.html"
    page_file.write_text(
        "<style>li.ok { border-color: #2e9e5b; } li.warn { border-color: #d69e2e; }"
        "ul.findings li { border-left: 4px solid; }</style><ul class='findings' id='summary'>"
        "<li class='ok'><span class='mark'>✓</span>a</li>"
        "<li class='warn'><span class='mark'>!</span>b</li></ul>"
    )
    colours = _in_browser(page_file, 800, _COLOURS)
    assert colours["ok"]["edge"] == colours["warn"]["edge"] == colours["ok"]["text"]


_LAYOUT = """() => ({
  scroll: document.documentElement.scrollWidth,
  client: document.documentElement.clientWidth,
  sections: [...document.querySelectorAll('main > section:not(#summary)')].map(
    s => s.querySelectorAll('figure img').length),
  first: document.querySelector('main > section').id,
})"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/check.sh)")
def test_the_page_fits_a_400_pixel_screen_and_starts_with_the_verdict(
    default_run: dict[str, Any],
) -> None:
    layout = _in_browser(default_run["folder"] / "report.html", 400, _LAYOUT)
    assert layout["scroll"] <= layout["client"] == 400
    assert layout["first"] == "summary"
    assert layout["sections"] == FIGURES_PER_SECTION


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/check.sh)")
def test_the_overflow_check_fails_on_a_wide_table(tmp_path: Path) -> None:
    page_file = tmp_path / "wide.html"
    page_file.write_text(
        '<meta name="viewport" content="width=device-width"><main><section id="summary">'
        "</section><table><tr>" + "<td>wide-cell-content</td>" * 40 + "</tr></table></main>"
    )
    layout = _in_browser(page_file, 400, _LAYOUT)
    assert layout["scroll"] > layout["client"]
