"""A self-contained HTML page: styles inline, figures as PNG data URIs, nothing fetched.

The page is described by a small model (:class:`Page`: a :class:`Summary` card,
then :class:`Section` of blocks) and rendered by :func:`render_html`. The verdict and
every finding come first, each with its mark (✓ ok, ! needs a look, ✗ wrong) and
its colour; the sections follow. It reads at any width down to a phone's 400 px
(wide tables scroll inside their box, figures shrink), and opens offline from disk:
there are no scripts, no external styles or fonts, and a Content-Security-Policy
that forbids loading anything but the embedded images. Every text is escaped.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gradprobe._text import COLOURS, MARKS

__all__ = [
    "Block",
    "Figure",
    "Findings",
    "Page",
    "Paragraph",
    "Section",
    "Summary",
    "Table",
    "figure_png",
    "render_html",
]


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of plain text."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table of already formatted cells.

    Attributes
    ----------
    headers : sequence of str
        The column headings.
    rows : sequence of sequence of str
        The cells, one sequence per row.
    caption : str
        A line under the table.
    highlight : sequence of int
        Rows to highlight (say, the parameters a gradient check found wrong).
    """

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    caption: str = ""
    highlight: Sequence[int] = ()


@dataclass(frozen=True)
class Figure:
    """A PNG image with a caption, embedded as a data URI."""

    png: bytes
    caption: str


@dataclass(frozen=True)
class Findings:
    """A list of findings; each is (level, text) with level "ok", "warn" or "bad"."""

    items: Sequence[tuple[str, str]]


Block = Paragraph | Table | Figure | Findings


@dataclass(frozen=True)
class Section:
    """One numbered part of the page: a heading and its blocks."""

    title: str
    blocks: Sequence[Block] = field(default_factory=tuple)


@dataclass(frozen=True)
class Summary:
    """The card at the top: an overall verdict and every finding, by topic.

    Attributes
    ----------
    level : {"ok", "warn", "bad"}
        The worst finding's level; sets the card's mark and colour.
    headline : str
        The verdict in one sentence.
    findings : sequence of (str, str, str)
        ``(level, topic, text)`` for each finding, in order.
    """

    level: str
    headline: str
    findings: Sequence[tuple[str, str, str]] = ()


@dataclass(frozen=True)
class Page:
    """A whole report page: title, subtitle, the summary card, then numbered sections."""

    title: str
    subtitle: str
    sections: Sequence[Section]
    summary: Summary | None = None


_STYLE = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1d232b; background: #f6f7f9; margin: 0; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 32px 48px; background: #fff;
       box-shadow: 0 0 12px rgba(0,0,0,.06); }
h1 { font-size: 26px; margin: 8px 0 0; overflow-wrap: anywhere; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #e3e7ec; }
p, li, figcaption { overflow-wrap: anywhere; }
.subtitle { color: #5b6673; margin: 4px 0 16px; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 10px 0; font-size: 13px;
        font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e3e7ec; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f0f3f6; font-weight: 600; }
tr.highlight td { background: #fdecea; }
.caption { color: #5b6673; font-size: 13px; margin: 2px 0 12px; }
figure { margin: 12px 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #e3e7ec; }
figcaption { color: #5b6673; font-size: 13px; }
ul.findings { list-style: none; padding: 0; margin: 8px 0; }
ul.findings li { display: flex; gap: 8px; margin: 6px 0; padding: 6px 10px;
                 border-left: 4px solid #c3cad3; background: #f8f9fb; }
.mark { font-weight: 700; flex: none; width: 1em; text-align: center; }
.topic { flex: none; width: 9.5em; color: #5b6673; }
.card { border: 2px solid; border-radius: 6px; padding: 10px 16px; margin: 12px 0 8px; }
.headline { font-size: 19px; font-weight: 600; margin: 0 0 4px; }
@media (max-width: 600px) {
  main { padding: 12px 12px 32px; }
  h1 { font-size: 21px; }
  ul.findings li { flex-wrap: wrap; }
  .topic { width: auto; }
}
""" + "".join(
    # One rule per level, each as specific as the plain rule it overrides and after it.
    f"ul.findings li.{level} {{ border-left-color: {edge}; background: {fill}; }}\n"
    f".mark.{level} {{ color: {edge}; }}\n"
    f".card.{level} {{ border-color: {edge}; }}\n"
    for level, (edge, fill) in COLOURS.items()
)

# Nothing but the embedded images and the inline style may load.
_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def figure_png(figure: Any, dpi: int = 96) -> bytes:
    """Return a matplotlib figure as PNG bytes and close it.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        The figure.
    dpi : int, default=96
        The resolution.

    Returns
    -------
    bytes
    """
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    # The figures lay themselves out (layout="constrained"): no second, "tight" pass.
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{_escape(block.text)}</p>"
    if isinstance(block, Table):
        head = "".join(f"<th>{_escape(h)}</th>" for h in block.headers)
        rows = []
        for number, row in enumerate(block.rows):
            cells = "".join(f"<td>{_escape(cell)}</td>" for cell in row)
            marker = ' class="highlight"' if number in block.highlight else ""
            rows.append(f"<tr{marker}>{cells}</tr>")
        caption = f'<p class="caption">{_escape(block.caption)}</p>' if block.caption else ""
        table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        return f'<div class="scroll">{table}</div>{caption}'

    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        caption = _escape(block.caption)
        return (
            f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    return _findings([(level, "", text) for level, text in block.items])


def _findings(items: Sequence[tuple[str, str, str]]) -> str:
    rows = []
    for level, topic, text in items:
        topic_cell = f'<span class="topic">{_escape(topic)}</span>' if topic else ""
        rows.append(
            f'<li class="{_escape(level)}"><span class="mark {_escape(level)}">'
            f"{MARKS.get(level, '!')}</span>{topic_cell}<span>{_escape(text)}</span></li>"
        )
    return f'<ul class="findings">{"".join(rows)}</ul>'


def _summary(summary: Summary) -> str:
    level = _escape(summary.level)
    return (
        f'<section class="card {level}" id="summary"><p class="headline"><span '
        f'class="mark {level}">{MARKS.get(summary.level, "!")}</span> '
        f"{_escape(summary.headline)}</p>"
        f"{_findings(summary.findings)}</section>"
    )


def render_html(page: Page) -> str:
    """Render a page as one self-contained HTML document.

    Parameters
    ----------
    page : Page
        The title, subtitle and numbered sections.

    Returns
    -------
    str
        The document; it references no file, script, style sheet or font.

    Examples
    --------
    >>> page = Page("Report", "a test", [Section("Inputs", [Paragraph("x < y & z")])])
    >>> text = render_html(page)
    >>> "<h2>1. Inputs</h2>" in text, "x &lt; y &amp; z" in text
    (True, True)
    """
    body = [f"<h1>{_escape(page.title)}</h1>", f'<p class="subtitle">{_escape(page.subtitle)}</p>']
    if page.summary is not None:
        body.append(_summary(page.summary))
    for number, section in enumerate(page.sections, start=1):
        body.append(f"<section><h2>{number}. {_escape(section.title)}</h2>")
        body.extend(_block(block) for block in section.blocks)
        body.append("</section>")
    body.append(
        "<footer>Written by gradprobe. This file is self-contained and opens offline.</footer>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{_escape(page.title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
