"""Rich layout helpers: padding stripped, names folded, plain text at a fixed width."""

from __future__ import annotations

import io

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gradprobe._console import (
    emit,
    folding_table,
    plain_text,
    shape_text,
    table_or_lines,
    text_width,
    verdict_text,
)
from gradprobe._text import WIDTH


def test_emit_strips_the_padding_rich_adds() -> None:
    table = Table("a", "b", box=box.SIMPLE)
    table.add_row("x" * 20, "y")
    table.add_row("x", "y")
    out = io.StringIO()
    padded = io.StringIO()
    Console(file=padded, width=80).print(table)
    emit(Console(file=out, width=80), table)
    assert any(line != line.rstrip() for line in padded.getvalue().splitlines())  # rich pads
    assert all(line == line.rstrip() for line in out.getvalue().splitlines())


def _names_table(name: str) -> tuple[Table, list[list[str]]]:
    table = folding_table("name", "value", right=("value",), names=("name",))
    rows = [[name, "1.25e-03"]]
    table.add_row(*(Text(cell) for cell in rows[0]))
    return table, rows


def test_a_long_name_folds_and_its_number_stays_whole() -> None:
    name = "encoder.layers.0.self_attention.in_projection_weight"
    table, rows = _names_table(name)
    text = plain_text(lambda console: emit(console, *table_or_lines(console, table, rows)), 30)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 30 and len(lines) > 3  # folded
    assert "".join(line.split("1.25e-03")[0].strip() for line in lines[2:]) == name
    assert sum("1.25e-03" in line for line in lines) == 1


def test_too_narrow_a_console_gets_one_line_per_value_instead() -> None:
    table, rows = _names_table("weight")
    text = plain_text(lambda console: emit(console, *table_or_lines(console, table, rows)), 12)
    assert text.splitlines() == ["name:", "weight", "  value", "1.25e-03"]


def test_plain_text_has_no_colour_codes_and_the_default_width() -> None:
    text = plain_text(lambda console: emit(console, verdict_text("wrong"), Text("x" * 150)))
    assert "\x1b[" not in text and text.startswith("wrong\n")
    assert [len(line) for line in text.splitlines()[1:]] == [WIDTH, 150 - WIDTH]
    assert text_width() == WIDTH  # pytest captures standard output: not a terminal


def test_shapes_read_as_in_the_tables() -> None:
    assert (shape_text((3, 4)), shape_text((5,)), shape_text(())) == ("3×4", "5", "scalar")


def test_rich_is_imported_when_something_is_printed_not_before() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\nimport numpy as np\nfrom gradprobe import check_gradients\n"
        "report = check_gradients(lambda p: float(np.sum(p['w'] ** 2)), {'w': np.ones(2)},"
        " {'w': 2 * np.ones(2)})\n"
        "before = 'rich.console' in sys.modules\ntext = str(report)\n"
        "print(before, 'rich.console' in sys.modules, text.startswith('✓ gradient check: OK'))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "True", "True"]
