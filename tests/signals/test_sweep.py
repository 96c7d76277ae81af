import numpy as np

from gradprobe import MLP, propagation
from gradprobe.signals.sweep import DepthSweep, InitSweep


def test_both_sweeps_share_rows_data_and_table():
    X = np.random.default_rng(0).standard_normal((32, 8))
    reports = {
        "he": propagation(MLP([8] * 6, init="he", output="linear"), X),
        "small": propagation(MLP([8] * 6, init="normal", output="linear"), X),
    }
    depth, init = DepthSweep(5, 8, "relu", reports), InitSweep("MLP", reports)
    assert depth.rows == init.rows and depth.data == init.data
    assert [row["trouble_name"] for row in init.rows] == [None, "1"]
    assert str(init).splitlines()[1:] == str(depth).splitlines()[1:]
    assert init.to_dict()["model"] == "MLP" and set(init.to_dict()["reports"]) == {"he", "small"}
