"""The ``gradprobe diagnose`` pipeline: data loading, the analysis and its findings.

* :mod:`~gradprobe.diagnose.tabular`: a CSV file or a bundled data set as a
  :class:`Dataset`;
* :mod:`~gradprobe.diagnose.pipeline`: :func:`run_diagnosis`, every step on one data set;
* :mod:`~gradprobe.diagnose.result`: :class:`Diagnosis`, what it found, as data;
* :mod:`~gradprobe.diagnose.findings`: the findings in plain words.

Rendering the diagnosis (terminal, HTML page, JSON) is :mod:`gradprobe.report`'s job.
"""

from typing import TYPE_CHECKING

from gradprobe._lazy import lazy_exports

if TYPE_CHECKING:
    from gradprobe.diagnose.config import DiagnoseConfig
    from gradprobe.diagnose.pipeline import run_diagnosis
    from gradprobe.diagnose.result import Diagnosis

__all__ = ["DiagnoseConfig", "Diagnosis", "run_diagnosis"]

# Each name is imported when first read (PEP 562; see gradprobe._lazy).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DiagnoseConfig": "gradprobe.diagnose.config",
        "Diagnosis": "gradprobe.diagnose.result",
        "run_diagnosis": "gradprobe.diagnose.pipeline",
    },
)
