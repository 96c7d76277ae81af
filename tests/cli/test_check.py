"""``gradprobe check`` on a long NumPy check: Ctrl-C prints the partial report, exit 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from typer.testing import CliRunner

from gradprobe.cli.commands import app

SOURCE = Path(__file__).resolve().parents[2] / "src"

_SLOW = textwrap.dedent(
    """
    import time
    import numpy as np

    params = {"W": np.random.default_rng(0).normal(size=(60, 50))}

    def loss(p):
        time.sleep(0.002)
        return float(np.sum(p["W"] ** 3))

    def grads(p):
        g = 3 * p["W"] ** 2
        g[0, 0] *= 2  # a planted bug in the first chunk
        return {"W": g}
    """
)


def test_ctrl_c_prints_what_was_checked_and_exits_130(tmp_path: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text(_SLOW)
    env = dict(os.environ, PYTHONPATH=str(SOURCE), COLUMNS="100")
    child = subprocess.Popen(
        [sys.executable, "-m", "gradprobe", "check", str(script)],
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(4)
    os.killpg(child.pid, signal.SIGINT)
    started = time.perf_counter()
    out, err = child.communicate(timeout=30)
    assert child.returncode == 130, out + err
    assert time.perf_counter() - started < 2
    assert "gradient check: WRONG" in out and "(partial)" in out
    assert "Interrupted: checked " in out and "of 3,000; worst so far W[0, 0]" in out
    assert "Traceback" not in err


def test_quiet_and_piped_output_show_no_progress_bar(tmp_path: Path) -> None:
    script = tmp_path / "ok.py"
    script.write_text(
        "import numpy as np\nparams = {'w': np.ones(3)}\n"
        "def loss(p):\n    return float(np.sum(p['w'] ** 2))\n"
        "def grads(p):\n    return {'w': 2 * p['w']}\n"
    )
    for extra in ([], ["--quiet"]):
        result = CliRunner().invoke(app, ["check", str(script), *extra])
        assert result.exit_code == 0
        assert result.stderr == ""
        assert "gradient check: OK" in result.stdout
