"""The gradient-check engine: every check, NumPy or framework, ends here.

Data flows one way through it:

* :mod:`~gradprobe.check.checker`: :func:`check_gradients`, :func:`assert_gradients`,
  :class:`GradientCheckError` and :func:`run_check`, the one entry point that the
  structure-aware NumPy check and the framework adapters call;
* :mod:`~gradprobe.check.coordinates`: the checked coordinates differentiated, each
  judged against its own bound, the unclear ones re-checked;
* :mod:`~gradprobe.check.bounds`: error bounds from the measured noise and the verdict
  of one entry (ok, wrong or suspicious beyond three bounds, inconclusive between);
* :mod:`~gradprobe.check.escalate` and :mod:`~gradprobe.check.ladder`: re-checks at
  further steps (Richardson, kinks at any distance, larger steps past rounding, the
  complex step), all through the same evaluator, many entries per request;
* :mod:`~gradprobe.check.localize`: group testing for large models;
* :mod:`~gradprobe.check.comparison`: bands, the notes' difference and
  :func:`assemble_report`, the single place a report is built (rows and the headline
  from the entries);
* :mod:`~gradprobe.check.patterns`: the error-pattern rules, a table;
* :mod:`~gradprobe.check.entries` and :mod:`~gradprobe.check.report`: the report
  model, :class:`GradCheckReport` with its text table.
"""

from gradprobe.check.checker import (
    GradientCheckError,
    assert_gradients,
    check_gradients,
    run_check,
)
from gradprobe.check.report import GradCheckReport

__all__ = [
    "GradCheckReport",
    "GradientCheckError",
    "assert_gradients",
    "check_gradients",
    "run_check",
]
