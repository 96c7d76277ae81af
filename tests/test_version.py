"""The version string: one source, the same everywhere it is shown."""

from __future__ import annotations

import re
from pathlib import Path

import gradprobe
from gradprobe._version import __version__

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_the_version_is_the_one_the_package_is_built_with() -> None:
    # Read with a pattern, not tomllib: the package supports Python 3.10, which lacks it.
    text = PYPROJECT.read_text(encoding="utf-8")
    project = text.split("[project]", 1)[1].split("\n[", 1)[0]
    match = re.search(r'^version = "([^"]+)"$', project, re.MULTILINE)
    assert match is not None
    assert __version__ == match.group(1)


def test_the_version_is_a_release_number() -> None:
    # PEP 440's release segment, optionally with a pre-, post- or dev-release.
    assert re.fullmatch(r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", __version__)


def test_the_facade_exports_the_same_object() -> None:
    assert gradprobe.__version__ is __version__
    assert "__version__" in gradprobe.__all__


def test_the_command_line_prints_it() -> None:
    from typer.testing import CliRunner

    from gradprobe.cli import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.split() == ["gradprobe", __version__]
