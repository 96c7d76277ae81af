import struct
import zlib

import numpy as np
import pytest

from gradprobe import deep_linear, depth_sweep, propagation
from gradprobe.errors import InvalidTypeError
from gradprobe.nn.mlp import MLP
from gradprobe.report.plots import plot_deep_linear, plot_depth_sweep, plot_propagation


def _png_size(path):
    """Read width and height from the IHDR chunk, checking the signature and its CRC."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    header = data[16:29]
    (crc,) = struct.unpack(">I", data[29:33])
    assert zlib.crc32(kind + header) == crc
    assert data[-8:-4] == b"IEND"
    width, height = struct.unpack(">II", header[:8])
    return width, height


@pytest.fixture(scope="module")
def sweep():
    return depth_sweep(8, 16, "relu", seed=0, batch_size=32)


def test_depth_sweep_figure(sweep, tmp_path):
    path = tmp_path / "sweep.png"
    figure = plot_depth_sweep(sweep, path, size=(8.0, 3.0), dpi=50)
    assert _png_size(path) == (400, 150)
    assert path.stat().st_size > 5000
    forward, backward = figure.axes
    assert forward.get_yscale() == backward.get_yscale() == "log"
    assert forward.get_xlabel() and forward.get_ylabel() and backward.get_ylabel()
    labels = [text.get_text() for text in forward.get_legend().get_texts()]
    assert [label.split(":")[0] for label in labels] == list(sweep.reports)
    assert "(all 0: no line on a log scale)" in labels[0]  # zeros: the legend says why
    he = sweep.reports["he"]
    np.testing.assert_allclose(forward.lines[-1].get_ydata(), he.column("std"))
    np.testing.assert_allclose(backward.lines[-1].get_ydata(), he.column("gradient_norm"))


def test_deep_linear_figure(tmp_path):
    results = [deep_linear(1.5, 50), deep_linear(0.5, 50)]
    path = tmp_path / "linear.png"
    figure = plot_deep_linear(results, path)
    assert _png_size(path) == (1100, 450)
    activations, gradients = figure.axes
    for line, result in zip(activations.lines, results, strict=True):
        np.testing.assert_allclose(line.get_ydata(), result.activation)
    for line, result in zip(gradients.lines, results, strict=True):
        np.testing.assert_allclose(line.get_ydata(), result.gradient)
    assert "w = 1.5: exploding" in [
        text.get_text() for text in activations.get_legend().get_texts()
    ]


def test_overflowed_values_are_left_out(tmp_path):
    figure = plot_deep_linear(deep_linear(1e10, 50), tmp_path / "overflow.png")
    line = figure.axes[0].lines[0]
    assert np.isnan(line.get_ydata()[31:]).all() and np.isfinite(line.get_ydata()[:31]).all()
    assert "gaps" in line.get_label()


def test_propagation_figure(tmp_path, rng):
    report = propagation(MLP([8] * 6, output="linear"), rng.standard_normal((16, 8)))
    path = tmp_path / "one.png"
    plot_propagation(report, path, size=(6.0, 4.0), dpi=80)
    assert _png_size(path) == (480, 320)


def test_figures_need_result_objects():
    with pytest.raises(InvalidTypeError, match="sweep: got dict"):
        plot_depth_sweep({})  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="results"):
        plot_deep_linear([])
    with pytest.raises(InvalidTypeError, match="report: got int"):
        plot_propagation(3)  # type: ignore[arg-type]


# -- PyTorch models ------------------------------------------------------------------------


def _torch_reports():
    import torch
    from torch import nn

    from gradprobe.torch import init_sweep, rescale_

    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(*[nn.Sequential(nn.Linear(16, 16), nn.ReLU()) for _ in range(15)])
    x = torch.randn(64, 16, generator=generator)
    return init_sweep(model, x, ["default", "he"]), rescale_(model, x)


def test_torch_figures_name_the_layers(tmp_path):
    from gradprobe.report.plots import plot_comparison, plot_init_sweep, plot_rescale

    sweep, result = _torch_reports()
    path = tmp_path / "sweep.png"
    figure = plot_init_sweep(sweep, path, size=(8.0, 3.0), dpi=50)
    assert _png_size(path) == (400, 150)
    labels = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert labels == ["default: vanishing", "he: healthy"]
    ticks = [text.get_text() for text in figure.axes[0].get_xticklabels()]
    assert ticks[0] == "0.0" and len(ticks) <= 12
    figure = plot_rescale(result, tmp_path / "rescale.png")
    labels = [text.get_text() for text in figure.axes[1].get_legend().get_texts()]
    assert labels == ["before rescale_: vanishing", "after rescale_: healthy"]
    figure = plot_comparison({"a": result.before, "b": result.after}, title="t")
    assert figure.get_suptitle() == "t"


def test_torch_figures_need_result_objects():
    from gradprobe.report.plots import plot_comparison, plot_init_sweep, plot_rescale

    sweep, result = _torch_reports()
    with pytest.raises(InvalidTypeError, match="sweep: got DepthSweep"):
        plot_init_sweep(depth_sweep(3, 4))  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="result: got InitSweep"):
        plot_rescale(sweep)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="reports: expected"):
        plot_comparison({})
    with pytest.raises(InvalidTypeError, match="the same architecture"):
        small = propagation(MLP([4, 4, 2]), np.ones((3, 4)))
        plot_comparison({"a": small, "b": result.after})
