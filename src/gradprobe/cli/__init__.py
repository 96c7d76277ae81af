"""The command line: ``gradprobe diagnose | check | depth | derivative``.

The only place an error becomes an exit code. :mod:`~gradprobe.cli.commands` is the typer
app, :mod:`~gradprobe.cli.usercode` loads the user's file, and
:mod:`~gradprobe.cli._expression` parses formulas safely (no code is executed).
"""

from gradprobe.cli.commands import app

__all__ = ["app"]
