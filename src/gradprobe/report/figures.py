"""The figures of the diagnose page, one or two per section, drawn from the diagnosis.

Rendering only: every number plotted was computed by :mod:`gradprobe.diagnose`. Each
function returns a :class:`matplotlib.figure.Figure` built without pyplot; the page
embeds it with :func:`gradprobe.report.html.figure_png`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from gradprobe._text import COLOURS
from gradprobe.check.report import GradCheckReport
from gradprobe.diagnose.illustrations import StepErrors, Surface
from gradprobe.diagnose.result import Training

__all__ = [
    "check_figure",
    "curves_figure",
    "step_error_figure",
    "surface_figure",
]

_BLUE, _ORANGE = "#2b6cb0", "#c05621"


def curves_figure(runs: Sequence[Training], metric: str | None = None) -> Figure:
    """Draw the training loss (or ``metric``) per epoch, one panel per run.

    A run that diverged says at which epoch in its title.
    """
    figure = Figure(figsize=(10, 3.4), layout="constrained")
    axes = figure.subplots(1, len(runs), sharey=True, squeeze=False)[0]
    for axis, run in zip(axes, runs, strict=True):
        values = np.asarray(run.history.metric if metric else run.history.loss, dtype=float)
        epochs = np.arange(1, len(values) + 1)
        shown = np.isfinite(values) & ((values > 0) | bool(metric))
        axis.plot(epochs[shown], values[shown], color=_BLUE)
        title = run.label.replace("training on ", "").capitalize()
        if run.diverged_at is not None:
            title += f" (diverged at epoch {run.diverged_at})"
        axis.set_title(title, fontsize=11)
        axis.set_xlabel("epoch")
        if not metric:
            axis.set_yscale("log")
        axis.grid(True, alpha=0.3)
    axes[0].set_ylabel(f"training {metric}" if metric else "training loss")
    return figure


def surface_figure(surface: Surface) -> Figure:
    """Draw the cost over two first-layer weights: raw inputs (left), normalized (right).

    Both panels share the axes' scale, so an elongated valley (raw features on very
    different scales) and a round bowl (normalized) compare at a glance.
    """
    figure = Figure(figsize=(10, 4.2), layout="constrained")
    panels = figure.subplots(1, 2)
    for axis, cost, title in zip(
        panels,
        (surface.raw, surface.normalized),
        ("raw inputs", "normalized inputs"),
        strict=True,
    ):
        finite = cost[np.isfinite(cost)]
        levels = np.unique(np.quantile(finite, np.linspace(0.02, 0.98, 14)))
        grid = surface.offsets
        if len(levels) > 1:
            axis.contour(grid, grid, cost, levels=levels, cmap="viridis", linewidths=1.2)
        axis.plot([0], [0], marker="+", color="black", markersize=10)
        axis.set_aspect("equal")
        axis.set_title(title, fontsize=11)
        axis.set_xlabel(f"Δ{surface.weights[0]} (feature {surface.features[0]})")
        axis.set_ylabel(f"Δ{surface.weights[1]} (feature {surface.features[1]})")
    figure.suptitle("training cost over two first-layer weights (+: the initial weights)")
    return figure


def step_error_figure(errors: StepErrors) -> Figure:
    """Draw the notes' error-versus-ε picture for one coordinate, the chosen ε marked.

    One-sided differences err like O(ε), two-sided like O(ε²), until rounding of the
    cost (growing like 1/ε) takes over at small ε.
    """
    figure = Figure(figsize=(10, 4.2), layout="constrained")
    axis = figure.subplots()
    steps = errors.steps
    for values, label, colour in (
        (errors.forward, "one-sided (J(θ+ε) − J(θ)) / ε", _ORANGE),
        (errors.central, "two-sided (J(θ+ε) − J(θ−ε)) / 2ε", _BLUE),
    ):
        shown = values > 0
        axis.loglog(steps[shown], values[shown], marker=".", label=label, color=colour)
    # Reference slopes a decade under the curves' values at ε = 1e-4, where truncation rules.
    anchor = int(np.argmin(np.abs(np.log10(steps) + 4)))
    guide = steps[anchor - 8 :]
    for values, power, text in ((errors.forward, 1, "O(ε)"), (errors.central, 2, "O(ε²)")):
        if values[anchor] > 0:
            line = 0.1 * values[anchor] * (guide / steps[anchor]) ** power
            axis.loglog(guide, line, linestyle=":", color="grey")
            axis.annotate(text, (guide[-1], line[-1]), fontsize=10, color="grey")
    axis.axvline(errors.chosen, color="black", linestyle="--", linewidth=1)
    axis.annotate(
        f" ε chosen by the check: {errors.chosen:.1e}",
        (errors.chosen, float(np.nanmax(errors.forward))),
        fontsize=10,
        va="top",
    )
    axis.set(
        xlabel="step ε",
        ylabel=f"|numerical − backprop| for {errors.coordinate}",
        title=f"error of numerical derivatives of the cost along {errors.coordinate} "
        f"(backprop: {errors.derivative:.4g})",
    )
    axis.grid(True, which="major", alpha=0.3)
    axis.legend(fontsize="small", loc="lower left")
    return figure


def check_figure(reports: Sequence[tuple[str, GradCheckReport]]) -> Figure:
    """Draw each parameter's relative difference against the verdict bands, per check."""
    figure = Figure(figsize=(10, 3.8), layout="constrained")
    axis = figure.subplots()
    # Every parameter any of the checks has, in order of first appearance.
    names = list(dict.fromkeys(row.name for _, report in reports for row in report.parameters))
    positions = np.arange(len(names))
    ok, wrong = reports[0][1].thresholds
    values = [row.difference for _, report in reports for row in report.parameters]
    positive = [v for v in values if v > 0 and np.isfinite(v)] or [ok]
    low, high = min(min(positive), ok) / 30, max(max(positive), wrong) * 30
    for (bottom, top), level, label in (
        ((low, ok), "ok", "ok"),
        ((ok, wrong), "warn", "suspicious"),
        ((wrong, high), "bad", "wrong"),
    ):
        axis.axhspan(bottom, top, color=COLOURS[level][1], zorder=0)
        axis.annotate(
            label,
            (len(names) - 0.55, np.sqrt(bottom * top)),
            fontsize=9,
            color=COLOURS[level][0],
            ha="right",
            va="center",
        )
    styles = zip((-0.12, 0.12), "os", (_BLUE, _ORANGE), strict=True)
    for (title, report), (shift, marker, colour) in zip(reports, styles, strict=False):
        differences = np.array([max(row.difference, low) for row in report.parameters])
        where = np.array([names.index(row.name) for row in report.parameters])
        axis.scatter(where + shift, differences, marker=marker, label=title, zorder=3, color=colour)
    axis.set_xticks(positions, names)
    axis.set_yscale("log")
    axis.set_ylim(low, high)
    axis.set_xlim(-0.6, len(names) - 0.4)
    axis.set_ylabel("relative difference")
    axis.set_title("gradient check per parameter, against the verdict bands")
    axis.legend(fontsize="small", loc="upper left")
    return figure
