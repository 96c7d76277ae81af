"""JSON output: strict JSON, and the rows of ``gradprobe derivative --json``."""

from __future__ import annotations

import json

from gradprobe.numdiff.derivative import derivative
from gradprobe.report.jsonout import derivative_data, to_json


def test_json_has_no_nan() -> None:
    assert to_json({"a": [float("nan"), float("inf"), 1.5]}) == (
        '{\n  "a": [\n    null,\n    null,\n    1.5\n  ]\n}\n'
    )


def test_derivative_rows_carry_the_error_against_the_exact_value() -> None:
    result = derivative(lambda x: x**3, 1.0, eps=0.01, method="forward", full_output=True)
    row = derivative_data("forward", result, 3.0)
    assert row["error"] == abs(result.value - 3.0) and row["step"] == result.step
    assert json.loads(to_json(row))["method"] == "forward"
    assert derivative_data("complex", "not analytic", 3.0)["not_available"] == "not analytic"
