"""The page ``gradprobe diagnose`` writes: four sections, their figures, and the JSON beside it.

:func:`diagnosis_page` lays a :class:`~gradprobe.diagnose.result.Diagnosis` out as a
:class:`~gradprobe.report.html.Page`; :func:`write_page` writes ``report.html`` and
``report.json`` together (both or neither).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gradprobe.check.report import GradCheckReport
from gradprobe.diagnose.result import Diagnosis
from gradprobe.report._atomic import write_atomic, write_together
from gradprobe.report.html import (
    Block,
    Figure,
    Findings,
    Page,
    Paragraph,
    Section,
    Table,
    figure_png,
    render_html,
)
from gradprobe.report.jsonout import to_json
from gradprobe.report.plots import plot_depth_sweep
from gradprobe.signals.sweep import DepthSweep

__all__ = ["SECTION_TITLES", "diagnosis_page", "write_depth_plot", "write_page"]


def _loss_figure(diagnosis: Diagnosis) -> bytes:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    for axis, run in zip(axes, (diagnosis.raw, diagnosis.normalized), strict=True):
        losses = np.asarray(run.history.loss, dtype=float)
        epochs = np.arange(1, len(losses) + 1)
        shown = np.isfinite(losses) & (losses > 0)
        axis.plot(epochs[shown], losses[shown], color="#2b6cb0")
        title = run.label.replace("training on ", "").capitalize()
        if run.diverged_at is not None:
            title += f" (diverged at epoch {run.diverged_at})"
        axis.set_title(title, fontsize=11)
        axis.set_xlabel("epoch")
        axis.set_yscale("log")
        axis.grid(True, alpha=0.3)
    axes[0].set_ylabel("training loss")
    return figure_png(figure)


def _number(value: float | None, style: str = ".3g") -> str:
    return "—" if value is None or not np.isfinite(value) else format(value, style)


def _findings(diagnosis: Diagnosis, topic: str | None = None) -> Findings:
    return Findings(
        [(f["level"], f["text"]) for f in diagnosis.findings if topic in (None, f["topic"])]
    )


def _inputs(d: Diagnosis) -> Section:
    rows = [
        [f["name"], _number(f["mean"]), _number(f["std"]), _number(f["min"]), _number(f["max"])]
        for f in sorted(d.features, key=lambda f: -f["std"])
    ]
    return Section(
        "Inputs",
        [
            Paragraph(
                "Per-feature mean and spread on the training split, largest spread first. "
                "Features on very different scales stretch the cost surface, so gradient "
                "descent zig-zags and needs a small learning rate."
            ),
            Table(
                ["feature", "mean", "std", "min", "max"],
                rows,
                caption=f"The largest spread is {d.scale_ratio:,.3g}× the smallest.",
            ),
            Paragraph(
                "Normalization x′ = (x − μ) / σ uses the mean μ and spread σ of the training "
                "split only, and applies the same μ and σ to the test split, so no "
                "information from the test examples leaks into training. The same network, "
                "from the same initial weights, was trained on raw and on normalized inputs:"
            ),
            Figure(
                _loss_figure(d), "Training loss per epoch: raw inputs (left), normalized (right)."
            ),
            _findings(d, "inputs"),
        ],
    )


def _depth(d: Diagnosis) -> Section:
    spread = d.propagation
    layer_rows = [
        [
            str(row.layer),
            _number(row.mean),
            _number(row.std),
            _number(row.second_moment),
            f"{row.dead:.0%}",
            f"{row.saturated:.0%}",
            _number(row.gradient_norm),
        ]
        for row in spread.layers
    ]
    sweep_rows = [
        [
            row["init"],
            row["verdict"],
            "—" if row["trouble_layer"] is None else str(row["trouble_layer"]),
            _number(row["first_std"]),
            _number(row["last_std"]),
            _number(row["gradient_ratio"]),
        ]
        for row in d.sweep.rows
    ]
    scale = d.recommendation
    return Section(
        "Depth and initialization",
        [
            Paragraph(
                f"Signal statistics of this network ({'-'.join(map(str, d.layer_sizes))}, "
                f"{d.config.activation}, init {d.config.init!r}) at initialization, on the "
                f"normalized training inputs: {spread.summary}. {spread.advice}"
            ),
            Table(["layer", "mean", "std", "E[A²]", "dead", "saturated", "‖dW‖"], layer_rows),
            Paragraph(
                f"A depth sweep: fresh networks of {d.sweep.depth} layers of {d.sweep.width} "
                f"{d.sweep.activation} units under several initializations. With weights "
                "w > 1 the signal explodes like wᴸ, with w < 1 it vanishes."
            ),
            Figure(
                figure_png(plot_depth_sweep(d.sweep)),
                "Activation spread and weight-gradient norm per layer, "
                "by initialization (log scale).",
            ),
            Table(
                ["init", "verdict", "from layer", "std layer 1", "std layer L", "‖dW1‖/‖dWL‖"],
                sweep_rows,
                highlight=[i for i, row in enumerate(d.sweep.rows) if row["verdict"] != "healthy"],
            ),
            Paragraph(
                f"Recommended for {scale.activation}: Var(W) = {scale.forward:.3g}/fan_in keeps "
                f"activations steady, {scale.backward:.3g}/fan_in keeps gradients steady."
            ),
            _findings(d, "depth"),
        ],
    )


def _check_blocks(title: str, report: GradCheckReport) -> list[Block]:
    rows = [
        [
            row.name,
            "×".join(map(str, row.shape)) or "scalar",
            f"{row.checked}",
            _number(row.difference, ".2e"),
            row.verdict,
            row.diagnosis or "",
        ]
        for row in report.parameters
    ]
    low, high = report.thresholds
    return [
        Paragraph(
            f"{title}: {report.verdict.upper()}, relative difference "
            f"‖dθ_approx − dθ‖ / (‖dθ_approx‖ + ‖dθ‖) = {report.difference:.2e} (ok below "
            f"{low:g}, wrong above {high:g}); {report.checked} of {report.total} values "
            f"checked with {report.method} differences, {report.evaluations} loss evaluations."
            + "".join(f" {note[:1].upper()}{note[1:]}." for note in report.notes)
        ),
        Table(
            ["parameter", "shape", "checked", "difference", "verdict", "diagnosis"],
            rows,
            highlight=[i for i, row in enumerate(report.parameters) if row.verdict != "ok"],
        ),
    ]


def _gradients(d: Diagnosis) -> Section:
    return Section(
        "Gradient check",
        [
            Paragraph(
                "The network's backprop compared with two-sided differences "
                "(J(θ+ε) − J(θ−ε)) / 2ε, at random initialization and again after training, "
                "with the L2 term in the cost and dropout off."
            ),
            *_check_blocks("At random initialization", d.check_initial),
            *_check_blocks("After training", d.check_trained),
            _findings(d, "gradients"),
        ],
    )


def _result(d: Diagnosis) -> Section:
    metric = "accuracy" if d.metric_name == "accuracy" else "R²"
    value = d.test_metric
    shown = "—" if value is None else (f"{value:.1%}" if metric == "accuracy" else f"{value:.3f}")
    return Section(
        "Result",
        [
            Paragraph(
                f"Test {metric} of the network trained on normalized inputs: {shown} on "
                f"{d.dataset.X_test.shape[0]} held-out examples. Findings:"
            ),
            _findings(d),
        ],
    )


def diagnosis_page(diagnosis: Diagnosis) -> Page:
    """Lay out a :class:`~gradprobe.diagnose.pipeline.Diagnosis` as a page of four sections."""
    d, c = diagnosis, diagnosis.config
    data = d.dataset
    subtitle = (
        f"{data.name}: {data.task}, {data.X_train.shape[0]} training and "
        f"{data.X_test.shape[0]} test examples, {data.X_train.shape[1]} features. Network "
        f"{'-'.join(map(str, d.layer_sizes))}, {c.activation}, init {c.init!r}, L2 {c.l2:g}, "
        f"dropout {c.dropout:g}, {c.optimizer} lr {c.lr:g}, {c.epochs} epochs, seed {c.seed}."
    )
    return Page(
        f"gradprobe diagnose — {data.name}",
        subtitle,
        [_inputs(d), _depth(d), _gradients(d), _result(d)],
    )


def write_depth_plot(sweep: DepthSweep, path: str | os.PathLike[str]) -> Path:
    """Save the figure of a depth sweep as a PNG file, atomically."""
    return write_atomic(path, figure_png(plot_depth_sweep(sweep)))


SECTION_TITLES = ("Inputs", "Depth and initialization", "Gradient check", "Result")
"""The headings of the diagnose report, in order."""


def write_page(diagnosis: Diagnosis, folder: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.json`` into ``folder``, atomically and together.

    Parameters
    ----------
    diagnosis : Diagnosis
        What :func:`gradprobe.diagnose.pipeline.run_diagnosis` found.
    folder : str or os.PathLike
        Created when missing.

    Returns
    -------
    tuple of Path
        The HTML and JSON files.
    """
    # Everything is rendered before anything is written: Ctrl-C while plotting leaves the
    # folder as it was, and each file is replaced atomically.
    page = render_html(diagnosis_page(diagnosis))
    data = to_json(diagnosis.to_dict())
    directory = Path(folder)
    html, json = write_together({directory / "report.html": page, directory / "report.json": data})
    return html, json
