"""Run the command line as ``python -m gradprobe``."""

from gradprobe.cli.commands import app

app(prog_name="gradprobe")
