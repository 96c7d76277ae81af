"""Words for counts and widths shared by every text gradprobe prints."""

from __future__ import annotations

__all__ = ["WIDTH", "plural"]

WIDTH = 100
"""Columns of plain text when no terminal width is known."""


def plural(count: int, noun: str) -> str:
    """Return ``count`` and ``noun``, the noun with an "s" unless the count is 1.

    Examples
    --------
    >>> plural(1, "kink"), plural(2_500, "value")
    ('1 kink', '2,500 values')
    """
    return f"{count:,} {noun}" + ("" if count == 1 else "s")
