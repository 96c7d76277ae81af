"""The HTML renderer and the atomic writer, without a browser."""

from __future__ import annotations

import base64
import re

from gradprobe.report.html import (
    Figure,
    Findings,
    Page,
    Paragraph,
    Section,
    Summary,
    Table,
    render_html,
)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def _page() -> Page:
    return Page(
        "Report <b>",
        "sub & title",
        [
            Section("Inputs", [Paragraph("<script>alert(1)</script>")]),
            Section("Result", [Table(["a", "b"], [["1", "<2>"], ["3", "4"]], "cap", [1])]),
            Section("Figures", [Figure(PNG, 'a "quoted" caption'), Findings([("bad", "x")])]),
        ],
    )


def test_sections_are_numbered_in_order() -> None:
    text = render_html(_page())
    assert re.findall(r"<h2>(.*?)</h2>", text) == ["1. Inputs", "2. Result", "3. Figures"]


def test_all_text_is_escaped() -> None:
    text = render_html(_page())
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "Report &lt;b&gt;" in text and "sub &amp; title" in text and "&lt;2&gt;" in text
    assert 'alt="a &quot;quoted&quot; caption"' in text


def test_figures_are_embedded_and_nothing_is_fetched() -> None:
    text = render_html(_page())
    sources = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert sources and all(source.startswith("data:") for source in sources)
    assert base64.b64encode(PNG).decode() in text
    assert "default-src 'none'" in text  # the page may not load anything else
    assert "<script" not in text and '<link rel="stylesheet"' not in text


def test_highlighted_rows_and_findings_levels() -> None:
    text = render_html(_page())
    assert text.count('<tr class="highlight">') == 1
    assert '<li class="bad"><span class="mark bad">✗</span><span>x</span></li>' in text


def test_the_summary_card_comes_before_every_section_with_marks() -> None:
    summary = Summary(
        "warn", "1 of 2 <findings>", [("ok", "Inputs", "fine"), ("warn", "Depth", "hm")]
    )
    text = render_html(Page("t", "s", _page().sections, summary=summary))
    assert text.index('id="summary"') < text.index("<h2>")
    assert '<section class="card warn" id="summary">' in text and "1 of 2 &lt;findings&gt;" in text
    assert '<span class="mark ok">✓</span><span class="topic">Inputs</span>' in text
    assert '<span class="mark warn">!</span><span class="topic">Depth</span>' in text


def _rules(text: str) -> dict[str, str]:
    style = text[text.index("<style>") + 7 : text.index("</style>")]
    return {selector.strip(): body for selector, body in re.findall(r"([^{}]+)\{([^}]*)\}", style)}


def test_each_level_colours_its_findings_after_the_plain_rule() -> None:
    # The plain rule sets a grey edge; each level's rule is as specific and comes later,
    # so it wins (the old page had `ul.findings li {border-left: 4px solid}` win over `li.ok`).
    text = render_html(_page())
    style = text[text.index("<style>") :]
    rules = _rules(text)
    plain = style.index("ul.findings li {")
    colours = set()
    for level in ("ok", "warn", "bad"):
        selector = f"ul.findings li.{level}"
        assert style.index(selector + " {") > plain
        colours.add(re.search(r"border-left-color: (#\w+)", rules[selector]).group(1))  # type: ignore[union-attr]
    assert len(colours) == 3


def test_wide_content_scrolls_in_its_own_box() -> None:
    text = render_html(_page())
    assert '<div class="scroll"><table>' in text
    rules = _rules(text)
    assert "overflow-x: auto" in rules[".scroll"]
    assert "max-width: 100%" in rules["figure img"]
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
