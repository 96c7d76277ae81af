"""One test per defect the fuzzing found (issue 16), each failing on the code before the fix."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import gradprobe
from gradprobe.cli.commands import app
from gradprobe.errors import (
    GradprobeError,
    InvalidArgumentError,
    InvalidTypeError,
    LossEvaluationError,
)
from gradprobe.report._atomic import write_together

SRC = Path(gradprobe.__file__).resolve().parents[1]
W = np.array([[1.0, 2.0], [3.0, 4.0]])


def square(params: Any) -> float:
    return float(np.sum(params["W"] ** 2))


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": "100", "NO_COLOR": "1"}).invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _one_line_error(code: int, stderr: str, *fragments: str) -> None:
    lines = stderr.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("gradprobe: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _python(script: str, **options: Any) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        **options,
    )


# ------------------------------------------------------------ a false "ok" exit code


def test_check_exits_2_not_0_when_the_loss_calls_sys_exit(tmp_path: Path) -> None:
    user = tmp_path / "problem.py"
    user.write_text(
        "import sys\nimport numpy as np\nparams = {'W': np.ones(2)}\n"
        "def loss(p):\n    sys.exit(0)\n"
        "def grads(p):\n    return {'W': 2 * p['W']}\n"
    )
    code, _, stderr = _run("check", str(user))
    _one_line_error(code, stderr, "loss raised SystemExit")


@pytest.mark.parametrize("raised", [SystemExit(0), KeyboardInterrupt(), GeneratorExit()])
def test_whatever_the_loss_raises_is_a_loss_evaluation_error(raised: BaseException) -> None:
    def loss(params: Any) -> float:
        raise raised

    with pytest.raises(LossEvaluationError, match=f"loss raised {type(raised).__name__}"):
        gradprobe.check_gradients(loss, {"W": W}, {"W": 2 * W})
    with pytest.raises(LossEvaluationError, match="the function raised"):
        gradprobe.derivative(lambda x: loss({}), 1.0)


def test_a_real_ctrl_c_in_the_loss_still_interrupts() -> None:
    def loss(params: Any) -> float:
        signal.raise_signal(signal.SIGINT)  # what Ctrl-C does: the default handler raises
        return square(params)

    try:
        report = gradprobe.check_gradients(loss, {"W": W}, {"W": 2 * W})
    except KeyboardInterrupt:
        return
    assert getattr(report, "partial", False)  # a partial report, once checks keep their work


# ------------------------------------------------------------------ destructive writes


def test_depth_plot_refuses_a_fifo_and_a_symlink(tmp_path: Path) -> None:
    fifo, target = tmp_path / "fifo", tmp_path / "kept.txt"
    os.mkfifo(fifo)
    target.write_text("not a plot")
    link = tmp_path / "link.png"
    link.symlink_to(target)
    for path, what in ((fifo, "a FIFO"), (link, "a symbolic link")):
        code, _, stderr = _run("depth", "--depth", "2", "--width", "3", "--plot", str(path))
        _one_line_error(code, stderr, "--plot", what)
    assert fifo.is_fifo() and link.is_symlink() and target.read_text() == "not a plot"


def test_the_report_pair_is_replaced_together_or_not_at_all(tmp_path: Path) -> None:
    (tmp_path / "report.html").write_text("old html")
    (tmp_path / "report.json").mkdir()  # cannot be replaced by a file
    with pytest.raises(OSError, match="a folder, not a regular file"):
        write_together({tmp_path / "report.html": "new", tmp_path / "report.json": "{}"})
    assert (tmp_path / "report.html").read_text() == "old html"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.json"]


def test_sigterm_while_writing_leaves_no_temporary_files(tmp_path: Path) -> None:
    # The content's encode() sends SIGTERM in the middle of staging: deterministic.
    script = f"""
        import os, signal
        from pathlib import Path
        from gradprobe.report._atomic import write_together

        class Killing(str):
            def encode(self, *args, **kwargs):
                os.kill(os.getpid(), signal.SIGTERM)
                return str(self).encode()

        folder = Path({str(tmp_path)!r})
        write_together({{folder / "report.html": "html", folder / "report.json": Killing("{{}}")}})
    """
    (tmp_path / "report.json").write_text("old")
    run = _python(script)
    assert run.returncode == -signal.SIGTERM, run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    assert (tmp_path / "report.json").read_text() == "old"


# -------------------------------------------------------------- unexpected exception types

TOO_BIG = 10**400


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (
            lambda: gradprobe.check_gradients(
                square, {"W": W}, {"W": 2 * W}, thresholds=(TOO_BIG, TOO_BIG)
            ),
            "thresholds",
        ),
        (lambda: gradprobe.check_gradients(square, {"W": W}, {"W": 2 * W}, eps=TOO_BIG), "eps"),
        (
            lambda: gradprobe.check_gradients(
                square, {"W": W}, {"W": 2 * W}, memory=2**70, batched=True
            ),
            "memory",
        ),
        (lambda: gradprobe.derivative(np.sin, TOO_BIG), "x"),
        (lambda: gradprobe.MLP([2, 1], l2=TOO_BIG), "l2"),
        (lambda: gradprobe.MLP([2, 1]).fit(np.zeros((3, 2)), [0, 1, 0], lr=TOO_BIG), "lr"),
        (lambda: gradprobe.MLP([2, TOO_BIG]), "layer_sizes"),
        (lambda: gradprobe.MLP([2, float("inf")]), "layer_sizes"),
        (lambda: gradprobe.deep_linear(1.0, TOO_BIG), "depth"),
        (lambda: gradprobe.deep_linear(1.0, 3, tolerance=TOO_BIG), "tolerance"),
        (lambda: gradprobe.deep_linear(TOO_BIG, 3), "w"),
        (lambda: gradprobe.deep_linear(1.5, 10, width=TOO_BIG), "width"),
        (lambda: gradprobe.depth_sweep(TOO_BIG, 4), "depth"),
        (lambda: gradprobe.recommend_scale("relu", rtol=TOO_BIG), "rtol"),
        (lambda: gradprobe.init.normal((4, TOO_BIG), 0), "shape"),
        (lambda: gradprobe.init.gain("leaky_relu", 1e200), "slope"),
    ],
)
def test_numbers_too_big_for_a_float_are_refused_by_name(call: Any, argument: str) -> None:
    with pytest.raises(GradprobeError, match=f"^{argument}: got"):
        call()


@pytest.mark.parametrize(
    ("value", "fragment"),
    [(TOO_BIG, "401 digits"), ("1.5", "str '1.5'"), (True, "bool True")],
)
def test_a_loss_value_that_is_not_a_float_is_refused(value: Any, fragment: str) -> None:
    with pytest.raises(LossEvaluationError, match=f"loss returned .*{fragment}"):
        gradprobe.check_gradients(lambda p: value, {"W": W}, {"W": 0 * W})


def test_a_loss_whose_float_raises_is_refused() -> None:
    class Bad:
        def __float__(self) -> float:
            raise ZeroDivisionError

    with pytest.raises(LossEvaluationError, match="float\\(\\) cannot read"):
        gradprobe.check_gradients(lambda p: Bad(), {"W": W}, {"W": 2 * W})


def test_ragged_lists_are_refused_by_name() -> None:
    ragged = [[1.0, 2.0], [3.0]]
    with pytest.raises(InvalidArgumentError, match="grads: .* not a rectangular array"):
        gradprobe.check_gradients(square, {"W": W}, {"W": ragged})
    with pytest.raises(InvalidArgumentError, match="X: got .* not a rectangular array"):
        gradprobe.MLP([2, 1]).fit(ragged, [0, 1])
    with pytest.raises(InvalidArgumentError, match="rectangular"):
        gradprobe.deep_linear(1.0, 3, width=2, x=[[1.0], [2.0, 3.0]])


@pytest.mark.parametrize("option", ["method", "mode"])
def test_method_and_mode_as_arrays(option: str) -> None:
    with pytest.raises(InvalidTypeError, match=f"{option}: got array"):
        gradprobe.check_gradients(square, {"W": W}, {"W": 2 * W}, **{option: np.array(["a", "b"])})


def test_notes_none_is_no_notes_and_non_strings_are_refused() -> None:
    report = gradprobe.check_gradients(square, {"W": W}, {"W": 2 * W}, notes=None)
    assert report.verdict == "ok" and str(report)
    with pytest.raises(InvalidTypeError, match="notes: got the line int 1"):
        gradprobe.check_gradients(square, {"W": W}, {"W": 2 * W}, notes=[1, 2])


@pytest.mark.parametrize(
    ("options", "argument"),
    [({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"inits": [["he"]]}, "inits")],
)
def test_depth_sweep_seeds_and_nested_inits(options: dict[str, Any], argument: str) -> None:
    with pytest.raises(GradprobeError, match=f"{argument}: got"):
        gradprobe.depth_sweep(3, 4, **options)


@pytest.mark.parametrize(
    ("formula", "options"),
    [
        ("sigmoid(" * 30 + "x" + ")" * 30, []),
        ("(x-1)**1000*(x+2)**1000", []),
        ("log(" * 10 + "x" + ")" * 10, ["--at", "3"]),  # sympy's evalf took minutes
    ],
)
def test_derivative_formulas_that_broke_sympy_or_floats(formula: str, options: list[str]) -> None:
    started = time.perf_counter()
    code, stdout, stderr = _run("derivative", formula, *options)
    assert "Traceback" not in stdout + stderr
    if code != 0:
        _one_line_error(code, stderr)
    assert time.perf_counter() - started < 60


def test_derivative_with_a_step_that_does_not_move_x_says_so() -> None:
    code, stdout, stderr = _run("derivative", "x**2", "--eps", "1e-17")
    assert code == 0 and "Traceback" not in stdout + stderr
    assert "does not move x = 1" in stdout  # per method; the complex step still works


def test_ctrl_c_while_the_command_line_loads_is_one_line_and_130() -> None:
    # A finder that raises KeyboardInterrupt when gradprobe.cli is imported: a Ctrl-C
    # during start-up, at a moment chosen exactly. `import gradprobe` itself is lazy: the
    # console script imports the facade, then the command line, as here.
    script = """
        import sys
        class CtrlC:
            def find_spec(self, name, path=None, target=None):
                if name == "gradprobe.cli":
                    raise KeyboardInterrupt
        sys.meta_path.insert(0, CtrlC())
        sys.argv = [{command!r}]
        import gradprobe
        from gradprobe.cli.commands import main
    """
    command_line = _python(script.format(command="/usr/local/bin/gradprobe"))
    assert command_line.returncode == 130
    assert command_line.stderr == "gradprobe: interrupted\n"
    library = _python(script.format(command="my_program.py"))  # Python's own behaviour kept
    assert "Traceback" in library.stderr and "KeyboardInterrupt" in library.stderr


# ---------------------------------------------------------------- silent wrong results


def test_a_step_that_does_not_move_x_is_refused_instead_of_nan() -> None:
    for call in (
        lambda: gradprobe.derivative(lambda t: t * t, 1.0, eps=1e-17),
        lambda: gradprobe.check_gradients(square, {"W": W}, {"W": 2 * W}, eps=1e-17),
        lambda: gradprobe.numerical_gradient(square, {"W": W}, eps=1e-17),
    ):
        with pytest.raises(InvalidArgumentError, match="eps: got 1e-17, which does not move"):
            call()
    with pytest.raises(InvalidArgumentError, match="eps: got 1e\\+308, too large"):
        gradprobe.derivative(lambda t: t, 1.0, eps=1e308)


def test_batched_with_the_complex_step_is_refused_before_any_call() -> None:
    calls = []

    def batched(params: Any) -> Any:
        calls.append(1)
        return np.sum(params["W"] ** 2, axis=(1, 2))

    with pytest.raises(InvalidArgumentError, match="method: got 'complex' with batched=True"):
        gradprobe.check_gradients(batched, {"W": W}, {"W": 2 * W}, batched=True, method="complex")
    assert not calls


def _csv(folder: Path, header: str, big: float = 1.0) -> Path:
    rng = np.random.default_rng(0)
    rows = [header] + [
        f"{big if i == 5 else rng.normal()},{rng.normal()},{i % 2}" for i in range(30)
    ]
    path = folder / "data.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_csv_value_too_large_for_statistics_is_named(tmp_path: Path) -> None:
    data = _csv(tmp_path, "a,b,label", big=1e308)
    code, _, stderr = _run(
        "diagnose", "--data", str(data), "--target", "label", "--out", str(tmp_path / "out")
    )
    _one_line_error(code, stderr, "column 'a' holds 1e+308 (line 7)")


def test_duplicate_csv_column_names_are_refused(tmp_path: Path) -> None:
    data = _csv(tmp_path, "a,a,label")
    code, _, stderr = _run(
        "diagnose", "--data", str(data), "--target", "label", "--out", str(tmp_path / "out")
    )
    _one_line_error(code, stderr, "'a' appears twice")


# ------------------------------------------------------------------- bounds on work


def test_epochs_and_depth_are_bounded_and_the_limit_is_said() -> None:
    net = gradprobe.MLP([2, 1])
    with pytest.raises(InvalidArgumentError, match="epochs: got .*at most 1,000,000"):
        net.fit(np.zeros((3, 2)), [0, 1, 0], epochs=10**400)
    started = time.perf_counter()
    with pytest.raises(InvalidArgumentError, match="depth: got 10000000, expected at most"):
        gradprobe.deep_linear(1.0, 10**7)
    assert time.perf_counter() - started < 1


# ------------------------------------------------------------------ lenient acceptance


def test_text_and_bools_are_not_numbers() -> None:
    with pytest.raises(InvalidArgumentError, match="thresholds: got '12'"):
        gradprobe.check_gradients(square, {"W": W}, {"W": 2 * W}, thresholds="12")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="x: got str '1.5'"):
        gradprobe.derivative(np.sin, "1.5")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="layer_sizes: got '23'"):
        gradprobe.MLP("23")  # type: ignore[arg-type]


# --------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["bogus"], "No such command 'bogus'"),
        (["depth", "--bogus"], "No such option: --bogus (see gradprobe depth --help)"),
        (["depth", "--depth", "abc"], "Invalid value for '--depth'"),
        (["check"], "Missing argument"),
    ],
)
def test_the_parsers_own_usage_errors_are_one_line(args: list[str], fragment: str) -> None:
    code, _, stderr = _run(*args)
    _one_line_error(code, stderr, fragment)
