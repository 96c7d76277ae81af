"""Words, marks and colours shared by every text and notebook view gradprobe prints."""

from __future__ import annotations

import html
from collections.abc import Sequence

__all__ = ["COLOURS", "LEVELS", "MARKS", "WIDTH", "html_card", "level_of", "plural"]

WIDTH = 100
"""Columns of plain text when no terminal width is known."""

LEVELS = ("ok", "warn", "bad")
"""How a finding or verdict reads: fine, needs a look, wrong."""

MARKS = {"ok": "✓", "warn": "!", "bad": "✗"}
"""The mark shown before a finding of each level."""

COLOURS = {
    "ok": ("#1e7f46", "#e8f5ee"),
    "warn": ("#8a5a00", "#fdf3dc"),
    "bad": ("#b42318", "#fdecea"),
}
"""``(text and border, background)`` of each level, readable on white."""

# Every verdict gradprobe gives, by level; anything else needs a look.
_VERDICT_LEVELS = {
    "ok": "ok",
    "healthy": "ok",
    "wrong": "bad",
    "exploding": "bad",
}


def plural(count: int, noun: str) -> str:
    """Return ``count`` and ``noun``, the noun with an "s" unless the count is 1.

    Examples
    --------
    >>> plural(1, "kink"), plural(2_500, "value")
    ('1 kink', '2,500 values')
    """
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def level_of(verdict: str) -> str:
    """Return the level of a verdict: "ok" (ok, healthy), "bad" (wrong, exploding) or "warn".

    Examples
    --------
    >>> level_of("healthy"), level_of("suspicious"), level_of("wrong")
    ('ok', 'warn', 'bad')
    """
    return _VERDICT_LEVELS.get(verdict, "warn")


def html_card(
    title: str,
    level: str,
    lines: Sequence[str],
    headers: Sequence[str] = (),
    rows: Sequence[Sequence[str]] = (),
) -> str:
    """Return a result as a small HTML card for a notebook's ``_repr_html_``.

    Styles are inline, so the card looks the same in Jupyter, VS Code and on GitHub,
    and nothing leaks into the notebook's own styles. Every text is escaped.

    Parameters
    ----------
    title : str
        What the result is ("gradient check").
    level : {"ok", "warn", "bad"}
        Sets the mark and the colour of the card's edge.
    lines : sequence of str
        Sentences under the title; the first is shown in bold.
    headers, rows : sequences of str
        An optional table.

    Examples
    --------
    >>> card = html_card("check", "bad", ["WRONG: <b>"], ["name"], [["W1"]])
    >>> "✗" in card, "&lt;b&gt;" in card, "<td" in card
    (True, True, True)
    """
    colour, background = COLOURS.get(level, COLOURS["warn"])
    mark = MARKS.get(level, "!")
    text = [html.escape(line) for line in lines]
    body = "".join(
        f'<div style="margin:2px 0;{"font-weight:600;" if i == 0 else ""}">{line}</div>'
        for i, line in enumerate(text)
    )
    table = ""
    if headers:
        cell = "padding:2px 8px;border-bottom:1px solid #e3e7ec;text-align:left;"
        head = "".join(f'<th style="{cell}">{html.escape(h)}</th>' for h in headers)
        body_rows = "".join(
            "<tr>" + "".join(f'<td style="{cell}">{html.escape(c)}</td>' for c in row) + "</tr>"
            for row in rows
        )
        table = (
            '<div style="overflow-x:auto"><table style="border-collapse:collapse;'
            f'margin-top:6px;font-size:90%"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body_rows}</tbody></table></div>"
        )
    return (
        f'<div style="border-left:4px solid {colour};background:{background};'
        'padding:6px 10px;margin:4px 0;color:#1d232b;max-width:100%;overflow-wrap:anywhere">'
        f'<div><span style="color:{colour};font-weight:700">{mark}</span> '
        f"<b>{html.escape(title)}</b></div>{body}{table}</div>"
    )
