"""The default ``gradprobe diagnose`` run, end to end: a real process, a real browser.

One session-scoped run of the command with its default options (bundled breast-cancer
data) feeds every test here: the report opens from disk in Debian's headless
Chromium without console errors, every figure decodes, every section heading is
there, and ``report.json`` matches the schema shipped in the package.
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
    assert len(images) >= 2
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
