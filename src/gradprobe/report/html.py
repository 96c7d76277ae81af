"""A self-contained HTML page: styles inline, figures as PNG data URIs, nothing fetched.

The page is described by a small model (:class:`Page` of :class:`Section` of
blocks) and rendered by :func:`render_html`. It opens offline from disk: there
are no scripts, no external styles or fonts, and a Content-Security-Policy that
forbids loading anything but the embedded images. Every piece of text is escaped.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gradprobe.report._atomic import write_atomic, write_together
from gradprobe.report.jsonout import to_json
from gradprobe.report.plots import plot_depth_sweep

if TYPE_CHECKING:
    from gradprobe.depth import DepthSweep
    from gradprobe.diagnose import Diagnosis
    from gradprobe.gradreport import GradCheckReport

__all__ = [
    "SECTION_TITLES",
    "Figure",
    "Findings",
    "Page",
    "Paragraph",
    "Section",
    "Table",
    "diagnosis_page",
    "figure_png",
    "render_html",
    "write_depth_plot",
    "write_report",
]


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of plain text."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table of already formatted cells.

    Attributes
    ----------
    headers : sequence of str
        The column headings.
    rows : sequence of sequence of str
        The cells, one sequence per row.
    caption : str
        A line under the table.
    highlight : sequence of int
        Rows to highlight (say, the parameters a gradient check found wrong).
    """

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    caption: str = ""
    highlight: Sequence[int] = ()


@dataclass(frozen=True)
class Figure:
    """A PNG image with a caption, embedded as a data URI."""

    png: bytes
    caption: str


@dataclass(frozen=True)
class Findings:
    """A list of findings; each is (level, text) with level "ok", "warn" or "bad"."""

    items: Sequence[tuple[str, str]]


Block = Paragraph | Table | Figure | Findings


@dataclass(frozen=True)
class Section:
    """One numbered part of the page: a heading and its blocks."""

    title: str
    blocks: Sequence[Block] = field(default_factory=tuple)


@dataclass(frozen=True)
class Page:
    """A whole report page."""

    title: str
    subtitle: str
    sections: Sequence[Section]


_STYLE = """
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1d232b; background: #f6f7f9; margin: 0; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 32px 48px; background: #fff;
       box-shadow: 0 0 12px rgba(0,0,0,.06); }
h1 { font-size: 26px; margin: 8px 0 0; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #e3e7ec; }
.subtitle { color: #5b6673; margin: 4px 0 16px; }
table { border-collapse: collapse; margin: 10px 0; font-size: 13px;
        font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e3e7ec; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f0f3f6; font-weight: 600; }
tr.highlight td { background: #fdecea; }
.caption { color: #5b6673; font-size: 13px; margin: 2px 0 12px; }
figure { margin: 12px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e7ec; }
figcaption { color: #5b6673; font-size: 13px; }
ul.findings { list-style: none; padding: 0; }
ul.findings li { margin: 6px 0; padding: 6px 10px; border-left: 4px solid; background: #f8f9fb; }
li.ok { border-color: #2e9e5b; }
li.warn { border-color: #d69e2e; }
li.bad { border-color: #d64541; }
footer { color: #8a94a0; font-size: 12px; margin-top: 32px; }
"""

# Nothing but the embedded images and the inline style may load.
_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def figure_png(figure: Any, dpi: int = 96) -> bytes:
    """Return a matplotlib figure as PNG bytes and close it.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        The figure.
    dpi : int, default=96
        The resolution.

    Returns
    -------
    bytes
    """
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{_escape(block.text)}</p>"
    if isinstance(block, Table):
        head = "".join(f"<th>{_escape(h)}</th>" for h in block.headers)
        rows = []
        for number, row in enumerate(block.rows):
            cells = "".join(f"<td>{_escape(cell)}</td>" for cell in row)
            marker = ' class="highlight"' if number in block.highlight else ""
            rows.append(f"<tr{marker}>{cells}</tr>")
        caption = f'<p class="caption">{_escape(block.caption)}</p>' if block.caption else ""
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>" + (
            caption
        )
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        caption = _escape(block.caption)
        return (
            f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    items = "".join(
        f'<li class="{_escape(level)}">{_escape(text)}</li>' for level, text in block.items
    )
    return f'<ul class="findings">{items}</ul>'


def render_html(page: Page) -> str:
    """Render a page as one self-contained HTML document.

    Parameters
    ----------
    page : Page
        The title, subtitle and numbered sections.

    Returns
    -------
    str
        The document; it references no file, script, style sheet or font.

    Examples
    --------
    >>> page = Page("Report", "a test", [Section("Inputs", [Paragraph("x < y & z")])])
    >>> text = render_html(page)
    >>> "<h2>1. Inputs</h2>" in text, "x &lt; y &amp; z" in text
    (True, True)
    """
    body = [f"<h1>{_escape(page.title)}</h1>", f'<p class="subtitle">{_escape(page.subtitle)}</p>']
    for number, section in enumerate(page.sections, start=1):
        body.append(f"<section><h2>{number}. {_escape(section.title)}</h2>")
        body.extend(_block(block) for block in section.blocks)
        body.append("</section>")
    body.append(
        "<footer>Written by gradprobe. This file is self-contained and opens offline.</footer>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{_escape(page.title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )


# --------------------------------------------------------------- the diagnose report


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
    """Lay out a :class:`~gradprobe.diagnose.Diagnosis` as a page of four sections."""
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


def write_report(diagnosis: Diagnosis, folder: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.json`` into ``folder``, atomically and together.

    Parameters
    ----------
    diagnosis : Diagnosis
        What :func:`gradprobe.diagnose.run_diagnosis` found.
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
