"""Screenshot the top of a report page with Debian's headless Chromium, for docs/report.png.

Run:  python scripts/screenshot.py gradprobe-report/report.html docs/report.png [WIDTH HEIGHT]
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright import sync_api

ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]


def main() -> None:
    """Open the page at the given viewport and save what the top of the screen shows."""
    page_file, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    width, height = (int(v) for v in sys.argv[3:5]) if len(sys.argv) > 4 else (1100, 1000)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(page_file.as_uri(), wait_until="load")
            page.screenshot(path=str(out))
        finally:
            browser.close()


if __name__ == "__main__":
    main()
