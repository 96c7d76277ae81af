"""Text laid out with rich: tables whose names fold, lines without trailing spaces.

The one layout of every text view: the command line prints with these helpers, and a
result's ``str()`` renders the same renderables into plain text (no colour codes) at
the terminal's width, or :data:`~gradprobe._text.WIDTH` columns when there is none.
"""

from __future__ import annotations

import io
import shutil
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from gradprobe._text import MARKS, WIDTH, level_of

# rich is imported by the functions that draw: importing a module that can print a
# report should not cost rich's start-up until something is printed.
if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text

__all__ = [
    "STYLES",
    "emit",
    "folding_table",
    "mark",
    "plain_text",
    "shape_text",
    "table_or_lines",
    "text_width",
    "verdict_text",
]

STYLES = {"ok": "green", "warn": "yellow", "bad": "red"}
"""The colour of each level."""

# The fewest characters per line a folded name keeps.
_NAME_WIDTH = 10


def emit(console: Console, *renderables: RenderableType) -> None:
    """Print renderables at the console's width with the spaces that end lines removed.

    Rich pads table cells to their column's width; copied or piped output should
    not carry that padding, and a test can compare lines exactly.
    """
    from rich.text import Text

    for renderable in renderables:
        for line in console.render_lines(renderable, console.options, pad=False):
            text = Text()
            for segment in line:
                if not segment.control:
                    text.append(segment.text, segment.style)
            text.rstrip()
            console.print(text, soft_wrap=True)


def mark(level: str) -> Text:
    """Return the mark of a level (✓, !, ✗) in its colour."""
    from rich.text import Text

    return Text(MARKS[level], style=STYLES[level])


def verdict_text(verdict: str) -> Text:
    """Return a verdict in the colour of its level."""
    from rich.text import Text

    return Text(verdict, style=STYLES[level_of(verdict)])


def shape_text(shape: tuple[int, ...]) -> str:
    """Write an array shape for a table: ``"3×4"``, ``"5"``, ``"scalar"``."""
    return "×".join(map(str, shape)) or "scalar"


def folding_table(*headers: str, right: Sequence[str] = (), names: Sequence[str] = ()) -> Table:
    """Return a table whose ``names`` columns fold onto more lines when space runs out.

    Every other column keeps its width (a number is never broken); a name is folded,
    never cut, and keeps at least a few characters per line.
    """
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for header in headers:
        table.add_column(
            header,
            justify="right" if header in right else "left",
            overflow="fold",
            no_wrap=header not in names,
        )
    return table


def table_or_lines(console: Console, table: Table, rows: list[list[str]]) -> list[RenderableType]:
    """Return ``table``, or each row as wrapped lines when the console is too narrow for it.

    A narrow terminal would make rich crop columns; the first header, then each row's
    name and its "header value" pairs, loses nothing.
    """
    from rich.text import Text

    headers = [str(column.header) for column in table.columns]
    for k, column in enumerate(table.columns):
        if not column.no_wrap:  # a folded name keeps a few characters per line
            longest = max(len(headers[k]), *(len(row[k]) for row in rows))
            column.min_width = min(_NAME_WIDTH, longest)
    # The width the table needs: whole cells in no-wrap columns, a few characters of
    # the folding ones, and a space either side of every inner column edge.
    needed = 2 * (len(headers) - 1) + sum(
        (column.min_width or 0)
        if not column.no_wrap
        else max(len(header), *(len(row[k]) for row in rows))
        for k, (column, header) in enumerate(zip(table.columns, headers, strict=True))
    )
    if needed <= console.width:
        return [table]
    lines: list[RenderableType] = [Text(f"{headers[0]}:", style="bold", overflow="fold")]
    for row in rows:
        lines.append(Text(row[0], style="bold", overflow="fold"))
        details = ", ".join(f"{h} {v}" for h, v in zip(headers[1:], row[1:], strict=True) if v)
        lines.append(Text(f"  {details}", overflow="fold"))
    return lines


def text_width() -> int:
    """Return the terminal's width when standard output is one, else 100 columns."""
    stream = sys.stdout
    if stream is not None and hasattr(stream, "isatty") and stream.isatty():
        return shutil.get_terminal_size((WIDTH, 24)).columns
    return WIDTH


def plain_text(draw: Callable[[Console], None], width: int | None = None) -> str:
    """Return what ``draw`` prints on a console, as plain text without colour codes.

    Parameters
    ----------
    draw : callable
        Takes a :class:`rich.console.Console` and prints on it (with :func:`emit`).
    width : int, optional
        Columns; by default :func:`text_width`.

    Returns
    -------
    str
        The lines, each without trailing spaces, joined by newlines (no final one).

    Examples
    --------
    >>> plain_text(lambda console: emit(console, mark("ok"), verdict_text("ok")), 20).split()
    ['✓', 'ok']
    """
    from rich.console import Console

    out = io.StringIO()
    console = Console(
        file=out,
        width=width or text_width(),
        color_system=None,
        force_terminal=False,
        force_jupyter=False,
        legacy_windows=False,
        emoji=False,
        highlight=False,
    )
    draw(console)
    return out.getvalue().rstrip("\n")
