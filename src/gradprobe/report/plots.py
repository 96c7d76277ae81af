"""Figures of signal propagation: rendering only, from result objects.

Every function builds a :class:`matplotlib.figure.Figure` without pyplot (so no
display and no global figure state is involved), optionally saves it as a PNG of
exactly ``size × dpi`` pixels, and returns it. Values that a log scale cannot show
(zeros, infinity, NaN) are left out of a line, and its legend entry says so in words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike

from gradprobe._validate import check_instance
from gradprobe.errors import InvalidTypeError
from gradprobe.signals.deep_linear import DeepLinearResult
from gradprobe.signals.propagation import PropagationReport
from gradprobe.signals.rescale import RescaleReport
from gradprobe.signals.sweep import DepthSweep, InitSweep

__all__ = [
    "plot_comparison",
    "plot_deep_linear",
    "plot_depth_sweep",
    "plot_init_sweep",
    "plot_propagation",
    "plot_rescale",
]

# At most this many layer names under an axis; the others are thinned out.
_NAMED_TICKS = 12

Path = str | PathLike[str]


def _line(axes: Axes, layers: ArrayLike, values: ArrayLike, label: str) -> None:
    """Draw one series on a log axis, leaving out what a log scale cannot show."""
    series = np.asarray(values, dtype=np.float64)
    shown = np.isfinite(series) & (series > 0)
    if not shown.all():
        label += (
            " (all 0: no line on a log scale)"
            if not shown.any() and np.all(series == 0)
            else " (0, inf or NaN at some layers: gaps in the line)"
        )
    axes.plot(np.asarray(layers), np.where(shown, series, np.nan), marker=".", label=label)


def _finish(figure: Figure, path: Path | None, dpi: int) -> Figure:
    # Log-scale margins and ticks just past values near 1e308 overflow harmlessly.
    with np.errstate(over="ignore"):
        for axes in figure.axes:
            axes.set_yscale("log")
            axes.grid(True, which="major", alpha=0.3)
            axes.legend(fontsize="small")
        if path is not None:
            figure.savefig(path, dpi=dpi, format="png")
    return figure


def _signal_figure(
    reports: Mapping[str, PropagationReport], title: str, size: tuple[float, float], dpi: int
) -> Figure:
    figure = Figure(figsize=size, dpi=dpi, layout="constrained")
    forward, backward = figure.subplots(1, 2)
    for name, report in reports.items():
        layers = np.arange(1, report.depth + 1)
        label = f"{name}: {report.verdict}"
        _line(forward, layers, report.column("std"), label)
        _line(backward, layers, report.column("gradient_norm"), label)
    forward.set(xlabel="layer l", ylabel="std of activations A[l]", title="forward: activations")
    backward.set(xlabel="layer l", ylabel="‖dW[l]‖ (Frobenius)", title="backward: weight gradients")
    first = next(iter(reports.values()))
    if any(layer.name is not None for layer in first.layers):
        # A framework's layers are named by module path: show the names, thinned out.
        step = max(1, -(-first.depth // _NAMED_TICKS))
        ticks = np.arange(1, first.depth + 1)[::step]
        for axes in (forward, backward):
            axes.set_xticks(ticks, [first.names[tick - 1] for tick in ticks], rotation=60)
            axes.set_xlabel("weight layer (module path)")
            axes.tick_params(axis="x", labelsize="small")
    figure.suptitle(title)
    return figure


def plot_depth_sweep(
    sweep: DepthSweep,
    path: Path | None = None,
    *,
    size: tuple[float, float] = (11.0, 4.5),
    dpi: int = 100,
) -> Figure:
    """Plot activation std and gradient norm against layer, one line per initialization.

    Parameters
    ----------
    sweep : DepthSweep
        From :func:`gradprobe.depth_sweep`.
    path : str or path-like, optional
        Where to save the figure as PNG.
    size : (float, float), default=(11.0, 4.5)
        Width and height in inches; the PNG is ``size × dpi`` pixels.
    dpi : int, default=100
        Pixels per inch.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from gradprobe.nn.sweep import depth_sweep
    >>> figure = plot_depth_sweep(depth_sweep(5, 8, inits=["he", "xavier"]))
    >>> len(figure.axes)
    2
    """
    check_instance(sweep, DepthSweep, "sweep", "a DepthSweep from gradprobe.depth_sweep")
    title = (
        f"{sweep.depth} layers of {sweep.width} units, {sweep.activation}: "
        "signals through depth by initialization"
    )
    return _finish(_signal_figure(sweep.reports, title, size, dpi), path, dpi)


def plot_propagation(
    report: PropagationReport,
    path: Path | None = None,
    *,
    size: tuple[float, float] = (11.0, 4.5),
    dpi: int = 100,
) -> Figure:
    """Plot one network's activation std and gradient norm against layer.

    Parameters and return value as in :func:`plot_depth_sweep`, for a
    :class:`~gradprobe.signals.propagation.PropagationReport`.
    """
    check_instance(
        report, PropagationReport, "report", "a PropagationReport from gradprobe.propagation"
    )
    title = f"{report.depth} layers, {report.activation}: {report.summary}"
    figure = _signal_figure({"network": report}, title, size, dpi)
    if all(layer.name is None for layer in report.layers):
        for axes in figure.axes:  # a shallow network's layers are 1, 2, 3, not 1.25
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _finish(figure, path, dpi)


def plot_deep_linear(
    results: DeepLinearResult | Sequence[DeepLinearResult],
    path: Path | None = None,
    *,
    size: tuple[float, float] = (11.0, 4.5),
    dpi: int = 100,
) -> Figure:
    """Plot the course notes' deep linear example: |a[l]| and |∂ŷ/∂a[l]| against layer.

    Parameters
    ----------
    results : DeepLinearResult or sequence of them
        From :func:`gradprobe.deep_linear`, e.g. for ``w = 1.5`` and ``w = 0.5``.
    path, size, dpi
        As in :func:`plot_depth_sweep`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from gradprobe.signals.deep_linear import deep_linear
    >>> figure = plot_deep_linear([deep_linear(1.5, 50), deep_linear(0.5, 50)])
    >>> [axes.get_yscale() for axes in figure.axes]
    ['log', 'log']
    """
    items = [results] if isinstance(results, DeepLinearResult) else list(results)
    if not items or not all(isinstance(item, DeepLinearResult) for item in items):
        raise InvalidTypeError(
            "results: expected a DeepLinearResult or a non-empty list of them from "
            "gradprobe.deep_linear"
        )
    figure = Figure(figsize=size, dpi=dpi, layout="constrained")
    forward, backward = figure.subplots(1, 2)
    for item in items:
        layers = np.arange(item.depth + 1)
        label = f"w = {item.w:g}: {item.verdict}"
        _line(forward, layers, item.activation, label)
        _line(backward, layers, item.gradient, label)
    forward.set(xlabel="layer l", ylabel="|a[l]| (root mean square)", title="activations")
    backward.set(xlabel="layer l", ylabel="|∂ŷ/∂a[l]| (root mean square)", title="gradients")
    depths = sorted({item.depth for item in items})
    figure.suptitle(
        f"deep linear network, every layer w·I, depth {', '.join(map(str, depths))}: ŷ = w^L·x"
    )
    return _finish(figure, path, dpi)


def plot_comparison(
    reports: Mapping[str, PropagationReport],
    path: Path | None = None,
    *,
    title: str | None = None,
    size: tuple[float, float] = (11.0, 4.5),
    dpi: int = 100,
) -> Figure:
    """Plot several probes of the same architecture, one line each (before/after a fix).

    Parameters
    ----------
    reports : dict of str to PropagationReport
        Label -> report, e.g. ``{"default init": …, "after initialize_(model, 'he')": …}``;
        every report has the same layers.
    path, size, dpi
        As in :func:`plot_depth_sweep`.
    title : str, optional
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    items = dict(reports) if isinstance(reports, Mapping) else {}
    if not items or not all(isinstance(item, PropagationReport) for item in items.values()):
        raise InvalidTypeError(
            "reports: expected a non-empty dict of label -> PropagationReport from "
            "gradprobe.propagation or gradprobe.torch.propagation"
        )
    depths = {report.depth for report in items.values()}
    if len(depths) != 1:
        raise InvalidTypeError(
            f"reports: got reports of {sorted(depths)} layers, expected the same architecture"
        )
    heading = title or f"{depths.pop()} weight layers: signals through depth"
    return _finish(_signal_figure(items, heading, size, dpi), path, dpi)


def plot_init_sweep(
    sweep: InitSweep,
    path: Path | None = None,
    *,
    size: tuple[float, float] = (11.0, 4.5),
    dpi: int = 100,
) -> Figure:
    """Plot a model's activation std and gradient norm per layer, one line per initialization.

    Parameters and return value as in :func:`plot_depth_sweep`, for an
    :class:`~gradprobe.signals.sweep.InitSweep` from :func:`gradprobe.torch.init_sweep`.
    """
    check_instance(sweep, InitSweep, "sweep", "an InitSweep from gradprobe.torch.init_sweep")
    title = f"{sweep.model}: signals through depth by initialization"
    return _finish(_signal_figure(sweep.reports, title, size, dpi), path, dpi)


def plot_rescale(
    result: RescaleReport,
    path: Path | None = None,
    *,
    size: tuple[float, float] = (11.0, 4.5),
    dpi: int = 100,
) -> Figure:
    """Plot a model before and after :func:`gradprobe.torch.rescale_`.

    Parameters and return value as in :func:`plot_depth_sweep`, for a
    :class:`~gradprobe.signals.rescale.RescaleReport`.
    """
    check_instance(result, RescaleReport, "result", "a RescaleReport from gradprobe.torch.rescale_")
    reports = {"before rescale_": result.before, "after rescale_": result.after}
    title = f"{result.before.depth} weight layers, rescaled to output std {result.target:g}"
    return plot_comparison(reports, path, title=title, size=size, dpi=dpi)
