"""The ``gradprobe diagnose`` pipeline: data loading, the analysis and its findings.

* :mod:`~gradprobe.diagnose.tabular`: a CSV file or a bundled data set as a
  :class:`Dataset`;
* :mod:`~gradprobe.diagnose.pipeline`: :func:`run_diagnosis`, every step on one data set;
* :mod:`~gradprobe.diagnose.result`: :class:`Diagnosis`, what it found, as data;
* :mod:`~gradprobe.diagnose.findings`: the findings in plain words.

Rendering the diagnosis (terminal, HTML page, JSON) is :mod:`gradprobe.report`'s job.
"""

from gradprobe.diagnose.pipeline import run_diagnosis
from gradprobe.diagnose.result import DiagnoseConfig, Diagnosis

__all__ = ["DiagnoseConfig", "Diagnosis", "run_diagnosis"]
