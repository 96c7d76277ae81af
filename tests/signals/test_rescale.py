import numpy as np

from gradprobe import MLP, propagation
from gradprobe.signals.rescale import RescaledLayer, RescaleReport


def test_report_properties_and_rendering():
    X = np.random.default_rng(0).standard_normal((16, 4))
    report = propagation(MLP([4, 4, 2], output="linear"), X)
    layers = (RescaledLayer("a", 2.5, 1, 0.99, True), RescaledLayer("b", 0.5, 10, 1.3, False))
    result = RescaleReport(1.0, 0.05, False, layers, ("c (not called)",), report, report)
    assert result.scales == {"a": 2.5, "b": 0.5}
    assert not result.converged
    text = str(result)
    assert "(not converged)" in text and "skipped: c (not called)" in text
    assert result.to_dict()["layers"][0]["name"] == "a"
    assert RescaleReport(1.0, 0.05, True, layers[:1], (), report, report).converged
