"""The diagnose report as JSON, validated against the schema shipped with the package.

:func:`gradprobe.report.page.write_page` writes ``report.json`` with :func:`to_json`.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["derivative_data", "load_schema", "to_json", "validate_report"]

SCHEMA_NAME = "report.schema.json"


def _finite(value: Any) -> Any:
    """Replace NaN and infinity, which JSON cannot hold, by None, all the way down."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def to_json(data: dict[str, Any]) -> str:
    """Return report data as indented, strictly valid JSON (NaN and infinity become null).

    Examples
    --------
    >>> print(to_json({"loss": float("nan"), "shape": (2, 3)}), end="")
    {
      "loss": null,
      "shape": [
        2,
        3
      ]
    }
    """
    return json.dumps(_finite(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def derivative_data(method: str, result: Any, exact: float) -> dict[str, Any]:
    """Return one method's row of ``gradprobe derivative --json``.

    ``result`` is a :class:`~gradprobe.numdiff.derivative.Derivative`, or the reason the
    method does not apply (a string).
    """
    if isinstance(result, str):
        return {"method": method, "value": None, "error": None, "not_available": result}
    return {
        "method": method,
        "step": result.step,
        "value": result.value,
        "error": abs(result.value - exact),
        "error_estimate": result.error,
        "evaluations": result.evaluations,
    }


@cache
def load_schema() -> dict[str, Any]:
    """Return the JSON schema of ``report.json`` (Draft 2020-12), shipped in the package."""
    text = resources.files("gradprobe.report").joinpath(SCHEMA_NAME).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_report(data: dict[str, Any]) -> None:
    """Validate report data against the schema; needs the ``jsonschema`` package.

    Raises
    ------
    jsonschema.ValidationError
        When the data does not match.
    """
    import jsonschema  # type: ignore[import-untyped]

    jsonschema.validate(json.loads(to_json(data)), load_schema())
