"""The page ``gradprobe diagnose`` writes: the verdict, four sections, their figures, the JSON.

:func:`diagnosis_page` lays a :class:`~gradprobe.diagnose.result.Diagnosis` out as a
:class:`~gradprobe.report.html.Page`: a summary card with every finding first, then
Inputs (loss curves, the cost's contours raw and normalized), Depth and
initialization (this network's signals, the sweep, the deep linear example),
Gradient check (error against ε, each parameter against the bands) and Result.
:func:`write_page` writes ``report.html`` and ``report.json`` together (both or neither).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gradprobe._text import LEVELS
from gradprobe.check.report import GradCheckReport
from gradprobe.diagnose.result import Diagnosis
from gradprobe.report._atomic import write_atomic, write_together
from gradprobe.report.figures import (
    check_figure,
    curves_figure,
    step_error_figure,
    surface_figure,
)
from gradprobe.report.html import (
    Block,
    Figure,
    Findings,
    Page,
    Paragraph,
    Section,
    Summary,
    Table,
    figure_png,
    render_html,
)
from gradprobe.report.jsonout import to_json
from gradprobe.report.plots import plot_deep_linear, plot_depth_sweep, plot_propagation
from gradprobe.signals.sweep import DepthSweep

__all__ = ["SECTION_TITLES", "diagnosis_page", "write_depth_plot", "write_page"]


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
                figure_png(curves_figure((d.raw, d.normalized))),
                "Training loss per epoch: raw inputs (left), normalized (right).",
            ),
            *_surface_blocks(d),
            _findings(d, "inputs"),
        ],
    )


def _surface_blocks(d: Diagnosis) -> list[Block]:
    if d.surface is None:
        return []
    surface = d.surface
    return [
        Paragraph(
            f"Why: the cost as a function of two weights of the first hidden unit, "
            f"{surface.weights[0]} on {surface.features[0]} (the widest feature) and "
            f"{surface.weights[1]} on {surface.features[1]} (the narrowest). With raw inputs "
            "the contours are long thin valleys: one weight's step must be tiny for the "
            "other's to make progress. Normalized, they are round, and gradient descent "
            "heads for the minimum."
        ),
        Figure(
            figure_png(surface_figure(surface)),
            "Contours of the training cost over two first-layer weights, the same range on "
            "both axes: raw inputs (left), normalized (right).",
        ),
    ]


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
            Figure(
                figure_png(plot_propagation(spread)),
                "This network at initialization: the spread of each layer's activations "
                "(left) and the size of its weight gradient (right).",
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
            *_deep_linear_blocks(d),
            Paragraph(
                f"Recommended for {scale.activation}: Var(W) = {scale.forward:.3g}/fan_in keeps "
                f"activations steady, {scale.backward:.3g}/fan_in keeps gradients steady."
            ),
            _findings(d, "depth"),
        ],
    )


def _deep_linear_blocks(d: Diagnosis) -> list[Block]:
    if not d.deep_linear:
        return []
    depth = d.deep_linear[0].depth
    return [
        Paragraph(
            f"The course notes' example: a deep linear network whose every layer is w·I "
            f"computes ŷ = w^L·x. Over {depth} layers, w = 1.5 gives 1.5^{depth} ≈ "
            f"{1.5**depth:.3g} and w = 0.5 gives 0.5^{depth} ≈ {0.5**depth:.3g}: weights a "
            "little above 1 explode, a little below 1 vanish, and gradients do the same."
        ),
        Figure(
            figure_png(plot_deep_linear(list(d.deep_linear))),
            "The deep linear network ŷ = w^L·x: activations (left) and gradients (right) "
            "per layer, for w = 1.5 and w = 0.5.",
        ),
    ]


def _check_blocks(title: str, report: GradCheckReport) -> list[Block]:
    diagnosed = any(row.diagnosis for row in report.parameters)
    rows = [
        [
            row.name,
            "×".join(map(str, row.shape)) or "scalar",
            f"{row.checked}",
            _number(row.difference, ".2e"),
            row.verdict,
            *([row.diagnosis or ""] if diagnosed else []),
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
            ["parameter", "shape", "checked", "difference", "verdict"]
            + (["diagnosis"] if diagnosed else []),
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
            *_step_blocks(d),
            Figure(
                figure_png(
                    check_figure(
                        (
                            ("at initialization", d.check_initial),
                            ("after training", d.check_trained),
                        )
                    )
                ),
                "Each parameter's relative difference at initialization and after training, "
                "against the bands: ok (green), suspicious (yellow), wrong (red).",
            ),
            *_check_blocks("At random initialization", d.check_initial),
            *_check_blocks("After training", d.check_trained),
            _findings(d, "gradients"),
        ],
    )


def _step_blocks(d: Diagnosis) -> list[Block]:
    if d.step_errors is None:
        return []
    errors = d.step_errors
    return [
        Paragraph(
            f"How the step ε is chosen, on this network's cost along {errors.coordinate}: the "
            "one-sided difference errs like O(ε), the two-sided like O(ε²), until the "
            "rounding of the cost, which grows like 1/ε, takes over. The check's step "
            f"({errors.chosen:.1e}, the cube root of the machine epsilon) sits near the "
            "bottom of the two-sided curve."
        ),
        Figure(
            figure_png(step_error_figure(errors)),
            f"Error of one- and two-sided differences of the cost along {errors.coordinate} "
            "against the step ε (log-log), with the O(ε) and O(ε²) slopes and the chosen ε.",
        ),
    ]


def _result(d: Diagnosis) -> Section:
    metric = "accuracy" if d.metric_name == "accuracy" else "R²"
    value = d.test_metric
    shown = "—" if value is None else (f"{value:.1%}" if metric == "accuracy" else f"{value:.3f}")
    return Section(
        "Result",
        [
            Paragraph(
                f"Test {metric} of the network trained on normalized inputs: {shown} on "
                f"{d.dataset.X_test.shape[0]} held-out examples."
            ),
            Figure(
                figure_png(curves_figure((d.raw, d.normalized), d.metric_name)),
                f"Training {metric} per epoch: raw inputs (left), normalized (right).",
            ),
            _findings(d, "result"),
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
        summary=_summary(d),
    )


# The summary's label for each topic of the findings.
_TOPICS = {
    "inputs": "Inputs",
    "depth": "Depth and init",
    "gradients": "Gradient check",
    "result": "Result",
}


def _summary(d: Diagnosis) -> Summary:
    """Return the verdict of the whole run, from its findings, and each finding by topic."""
    levels = [f["level"] for f in d.findings] or ["ok"]
    worst = max(levels, key=LEVELS.index)
    needing = sum(level != "ok" for level in levels)
    metric = "accuracy" if d.metric_name == "accuracy" else "R²"
    value = d.test_metric
    shown = "—" if value is None else (f"{value:.1%}" if metric == "accuracy" else f"{value:.3f}")
    headline = (
        f"All {len(levels)} findings are fine; test {metric} {shown}."
        if worst == "ok"
        else f"{needing} of {len(levels)} findings need a look; test {metric} {shown}."
    )
    items = [(f["level"], _TOPICS.get(f["topic"], f["topic"]), f["text"]) for f in d.findings]
    return Summary(worst, headline, items)


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
