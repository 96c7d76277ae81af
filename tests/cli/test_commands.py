"""The command line through typer's runner: exit codes and the lines that matter."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import gradprobe.diagnose.pipeline as pipeline
import gradprobe.nn.sweep as sweep_module
import gradprobe.report.page as page
from gradprobe.cli.commands import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "two_layer_net.py"
SMALL = ["--dataset", "circles", "--epochs", "3", "--layers", "4"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"COLUMNS": "100", "NO_COLOR": "1"})


def run(runner: CliRunner, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def strict_json(text: str) -> object:
    """Parse ``text`` as standard JSON: NaN and Infinity are not JSON and fail here."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not valid JSON")

    return json.loads(text, parse_constant=refuse)


def assert_usage_error(code: int, stdout: str, stderr: str, *fragments: str) -> None:
    assert code == 2, stdout + stderr
    # Not stripped: a blank line before the message (a progress bar's) is a second line.
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradprobe: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in stdout + stderr


# ------------------------------------------------------------------------ derivative


def test_derivative_reproduces_the_seed_example(runner: CliRunner) -> None:
    code, out, _ = run(runner, "derivative", "x**3", "--at", "1", "--eps", "0.01")
    assert code == 0
    assert "f'(x) = 3*x**2" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "3.0301" in lines["forward"] and "3.01e-02" in lines["forward"]
    assert "3.0001" in lines["central"] and "1.00e-04" in lines["central"]
    assert "301× more accurate" in out


def test_derivative_json_matches_sympy(runner: CliRunner) -> None:
    code, out, _ = run(runner, "derivative", "tanh(2*x)", "--at", "0.5", "--json", "-m", "central")
    assert code == 0
    data = json.loads(out)
    assert data["exact"] == pytest.approx(2 / np.cosh(1.0) ** 2, rel=1e-14)
    [central] = data["methods"]
    assert central["method"] == "central" and central["error"] < 1e-9


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["__import__('os').system('echo pwned')"], "is not allowed"),
        (["x.__class__"], "is not allowed"),
        (["x^2"], "write powers as **"),
        (["x +"], "is not a formula"),
        (["log(x)", "--at", "-1"], "pick a point inside its domain"),
        (["sqrt(x)", "--at", "0"], "pick a point where the function is differentiable"),
        (["x**2", "--method", "secant"], "--method: got 'secant'"),
        (["x**2", "--eps", "0"], "--eps: got 0.0"),
    ],
)
def test_derivative_usage_errors(runner: CliRunner, args: list[str], fragment: str) -> None:
    assert_usage_error(*run(runner, "derivative", *args), fragment)


def test_derivative_of_a_non_analytic_function_marks_the_complex_step_na(
    runner: CliRunner,
) -> None:
    code, out, err = run(runner, "derivative", "abs(x)", "--at", "1")
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "n/a" in rows["complex"] and "n/a" not in rows["central"]
    assert "complex: n/a, not analytic" in out
    code, out, _ = run(runner, "derivative", "abs(x)", "--at", "1", "--json")
    methods = {m["method"]: m for m in strict_json(out)["methods"]}  # type: ignore[index]
    assert code == 0 and methods["complex"]["value"] is None
    assert methods["complex"]["not_available"].startswith("not analytic")
    assert methods["central"]["error"] == 0.0


def test_derivative_with_only_a_failing_method_is_a_usage_error(runner: CliRunner) -> None:
    result = run(runner, "derivative", "abs(x)", "--at", "1", "--method", "complex")
    assert_usage_error(*result, "--method: no method could differentiate abs(x)", "not analytic")
    assert "np.float64" not in result[2]


def test_derivative_never_evaluates_the_input(runner: CliRunner, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    code, _, _ = run(runner, "derivative", f"__import__('pathlib').Path('{marker}').touch()")
    assert code == 2 and not marker.exists()


def test_debug_shows_the_traceback(runner: CliRunner) -> None:
    code, _, err = run(runner, "derivative", "x^2", "--debug")
    assert code == 2 and "Traceback" in err and "InvalidArgumentError" in err
    code, _, err = run(runner, "--debug", "derivative", "x^2")
    assert code == 2 and "Traceback" in err


# ----------------------------------------------------------------------------- check


def test_check_passes_on_the_correct_example(runner: CliRunner) -> None:
    code, out, _ = run(runner, "check", str(EXAMPLE))
    assert code == 0
    assert "gradient check: OK" in out
    assert all(name in out for name in ("W1", "b1", "W2", "b2"))


def test_check_names_the_planted_bug(runner: CliRunner) -> None:
    code, out, _ = run(runner, "check", f"{EXAMPLE}:with_planted_bug")
    assert code == 1
    assert "gradient check: WRONG" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "wrong" in rows["W1"] and "ok" in rows["W2"] and "ok" in rows["b1"]
    assert "regularization" in out


def test_check_json(runner: CliRunner) -> None:
    code, out, _ = run(runner, "check", f"{EXAMPLE}:with_planted_bug", "--json")
    assert code == 1
    report = json.loads(out)
    assert report["verdict"] == "wrong" and report["wrong_parameters"] == ["W1"]


def test_check_options_reach_the_check(runner: CliRunner) -> None:
    code, out, _ = run(
        runner,
        "check",
        str(EXAMPLE),
        "--json",
        "--method",
        "forward",
        "--eps",
        "1e-4",
        "--sample",
        "3",
        "--seed",
        "1",
        "--thresholds",
        "1e-12",
        "1e-10",
    )
    report = json.loads(out)
    assert report["method"] == "forward" and report["eps"] == 1e-4
    assert report["thresholds"] == [1e-12, 1e-10] and report["checked"] < report["total"]
    # One-sided differences at ε = 1e-4 miss the 1e-10 band, but every entry is within its
    # own error bound once re-checked, so the verdict is ok and the note says why.
    assert report["difference"] > 1e-10
    assert code == 0 and report["verdict"] == "ok"
    assert any("within the error bound" in note for note in report["notes"])


def _user_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "user_code.py"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("source", "suffix", "fragments"),
    [
        ("raise RuntimeError('boom')\n", "", ["raised RuntimeError on import: boom"]),
        ("def f(:\n", "", ["raised SyntaxError on import"]),
        ("import sys\nsys.exit(3)\n", "", ["raised SystemExit on import"]),
        ("params = {}\n", "", ["defines no loss, grads", "loss(params) -> float"]),
        ("x = 1\n", ":make", ["defines no function 'make'"]),
        ("def make():\n    return 1\n", ":make", ["returned int, expected a tuple"]),
        (
            "def make():\n    return (1, 2)\n",
            ":make",
            ["returned a tuple of 2 items, expected 3: (loss, params, grads)"],
        ),
        ("def make():\n    1 / 0\n", ":make", ["make() in", "raised ZeroDivisionError"]),
        (
            "import numpy as np\nparams = {'w': np.ones(2)}\n"
            "def loss(p):\n    raise ValueError('bad loss')\n"
            "def grads(p):\n    return p\n",
            "",
            ["loss raised ValueError", "bad loss"],
        ),
        (
            "params = {'w': [1, 2]}\nloss = 3\ngrads = None\n",
            "",
            ["loss in", "expected a function"],
        ),
    ],
)
def test_check_user_code_errors(
    runner: CliRunner, tmp_path: Path, source: str, suffix: str, fragments: list[str]
) -> None:
    target = _user_file(tmp_path, source) + suffix
    result = run(runner, "check", target)
    assert_usage_error(*result, *fragments)
    # The hint must not send pip users to a file only the source tree has.
    assert "examples/" not in result[2]


def test_check_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nope.py"
    assert_usage_error(*run(runner, "check", str(missing)), f"{missing}: no such file")


def test_check_a_folder_says_it_is_a_folder(runner: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "model.py"
    folder.mkdir()
    result = run(runner, "check", str(folder))
    assert_usage_error(*result, f"{folder} is a folder")
    assert "no such file" not in result[2]


def test_check_json_is_strict_and_counts_are_worded(runner: CliRunner, tmp_path: Path) -> None:
    # w[0] sits 1e-7 from the kink of abs: one kink, and "1 kink", not "1 kinks".
    source = (
        "import numpy as np\n"
        "params = {'w': np.array([1e-7, 1.0])}\n"
        "def loss(p):\n    return float(abs(p['w'][0]) + p['w'][1] ** 2)\n"
        "def grads(p):\n    return {'w': np.array([np.sign(p['w'][0]), 2 * p['w'][1]])}\n"
    )
    target = _user_file(tmp_path, source)
    code, out, _ = run(runner, "check", target)
    assert code == 0 and " 1 kink." in out and "2 of 2 values" in out
    code, out, _ = run(runner, "check", target, "--json")
    assert code == 0 and strict_json(out)["kinks"] == 1  # type: ignore[index]


# ----------------------------------------------------------------------------- depth


def test_depth_table_and_plot(runner: CliRunner, tmp_path: Path) -> None:
    plot = tmp_path / "sweep.png"
    code, out, _ = run(
        runner,
        "depth",
        "--activation",
        "relu",
        "--depth",
        "12",
        "--width",
        "32",
        "--plot",
        str(plot),
    )
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "healthy" in rows["he"] and "exploding" in rows["large"]
    assert "Var(W) = 2/fan_in" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_depth_shows_a_bar_on_a_terminal_unless_quiet() -> None:
    # FORCE_COLOR makes rich treat stderr as a terminal, as a user's shell is.
    runner = CliRunner()
    arguments = ["depth", "--depth", "3", "--width", "8", "--init", "he,xavier"]
    loud = runner.invoke(app, arguments, env={"FORCE_COLOR": "1", "COLUMNS": "100"})
    quiet = runner.invoke(app, [*arguments, "--quiet"], env={"FORCE_COLOR": "1"})
    assert loud.exit_code == quiet.exit_code == 0
    assert "initializations measured" in loud.stderr and "2/2" in loud.stderr
    assert quiet.stderr == ""
    assert "healthy" in loud.stdout and "healthy" in quiet.stdout


def test_depth_json(runner: CliRunner) -> None:
    code, out, _ = run(
        runner, "depth", "--activation", "tanh", "--depth", "6", "--width", "16", "--json"
    )
    data = strict_json(out)
    assert code == 0 and data["depth"] == 6 and data["activation"] == "tanh"  # type: ignore[index]
    assert {row["init"] for row in data["rows"]} >= {"he", "xavier"}  # type: ignore[index]


def test_depth_json_writes_null_for_nan_and_infinity(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The zeros initialization has no gradient to take a ratio of: NaN is not JSON.
    code, out, _ = run(runner, "depth", "--depth", "6", "--width", "16", "--json")
    assert code == 0
    strict_json(out)
    real_sweep = sweep_module.depth_sweep

    def sweep_with_infinities(*args: object, **kwargs: object) -> object:
        sweep = real_sweep(*args, **kwargs)  # type: ignore[arg-type]
        data = {**sweep.to_dict(), "rows": [{"gradient_ratio": float("inf")}]}

        class Sweep:
            def to_dict(self) -> dict[str, object]:
                return data

        return Sweep()

    monkeypatch.setattr(sweep_module, "depth_sweep", sweep_with_infinities)
    code, out, _ = run(runner, "depth", "--depth", "3", "--width", "8", "--json")
    assert code == 0 and strict_json(out)["rows"] == [{"gradient_ratio": None}]  # type: ignore[index]


def test_depth_plot_to_an_unwritable_path(runner: CliRunner, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    plot = blocker / "sweep.png"
    result = run(runner, "depth", "--depth", "3", "--width", "8", "--plot", str(plot))
    assert_usage_error(*result, "--plot: cannot write", str(blocker))


def test_depth_bad_activation(runner: CliRunner) -> None:
    assert_usage_error(*run(runner, "depth", "--activation", "swishy", "--depth", "3"), "swishy")


# -------------------------------------------------------------------------- diagnose


def test_diagnose_small_run_writes_both_files(runner: CliRunner, tmp_path: Path) -> None:
    out_dir = tmp_path / "report"
    code, out, _ = run(runner, "diagnose", *SMALL, "--out", str(out_dir))
    assert code == 0
    for heading in ("1. Inputs", "2. Depth and init", "3. Gradient check", "4. Result"):
        assert heading in out
    assert "Test accuracy" in out and str(out_dir / "report.html") in out
    assert (out_dir / "report.html").stat().st_size > 10_000
    assert json.loads((out_dir / "report.json").read_text())["data"]["name"] == "circles"
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]


def _csv(tmp_path: Path, text: str, name: str = "data.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _table(rows: int = 40, first_cell: str | None = None) -> str:
    """A CSV with features a (spread 1) and b (spread 1000) and a 0/1 label y."""
    rng = np.random.default_rng(0)
    lines = ["a,b,y"]
    for _ in range(rows):
        a, b = rng.normal(size=2)
        lines.append(f"{a:.4f},{1000 * b:.2f},{int(a + b > 0)}")
    if first_cell is not None:
        lines[1] = first_cell + lines[1][lines[1].index(",") :]
    return "\n".join(lines) + "\n"


def test_diagnose_on_a_user_csv(runner: CliRunner, tmp_path: Path) -> None:
    data = _csv(tmp_path, _table())
    code, out, _ = run(
        runner,
        "diagnose",
        "--data",
        data,
        "--target",
        "y",
        "--epochs",
        "3",
        "--layers",
        "4",
        "--out",
        str(tmp_path / "r"),
    )
    assert code == 0 and "classification" in out
    code, out, _ = run(
        runner,
        "diagnose",
        "--data",
        data,
        "--target",
        "y",
        "--task",
        "regression",
        "--epochs",
        "3",
        "--layers",
        "4",
        "--out",
        str(tmp_path / "r"),
    )
    assert code == 0 and "regression" in out and "R²" in out


@pytest.mark.parametrize(
    ("content", "args", "fragments"),
    [
        (None, ["--target", "y"], ["no such file", "give the path of a CSV file"]),
        (b"\xff\xfe\x00\x01garbage", ["--target", "y"], ["cannot be read as a UTF-8 CSV"]),
        ("a,b,y\n1,2,0\n", ["--target", "y"], ["expected at least 10"]),
        (_table(), ["--target", "label"], ["no column 'label'", "a, b, y"]),
        (
            _table(first_cell="red"),
            ["--target", "y"],
            ["'a' on line 2", "is 'red', expected a number"],
        ),
        (_table(first_cell="nan"), ["--target", "y"], ["missing (NaN)", "fill in or drop"]),
        (_table(first_cell=""), ["--target", "y"], ["missing (NaN)"]),
        (_table(first_cell="inf"), ["--target", "y"], ["expected a finite number"]),
        (_table() + "1.0,1.0\n", ["--target", "y"], ["has 2 fields, expected 3"]),
        (_table(), [], ["--data needs --target"]),
        (_table(), ["--target", "y", "--task", "ranking"], ["--task: got 'ranking'"]),
        (
            "a,b,y\n" + "1,2,0\n1,2,1\n" * 10,
            ["--target", "y"],
            ["every feature column", "is constant (a, b)"],
        ),
    ],
    ids=[
        "missing",
        "binary",
        "few-rows",
        "no-target",
        "text",
        "nan",
        "empty",
        "inf",
        "ragged",
        "no-target-option",
        "bad-task",
        "constant-features",
    ],
)
def test_diagnose_data_errors(
    runner: CliRunner,
    tmp_path: Path,
    content: str | bytes | None,
    args: list[str],
    fragments: list[str],
) -> None:
    path = tmp_path / "data.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    result = run(runner, "diagnose", "--data", str(path), *args, "--out", str(tmp_path / "r"))
    assert_usage_error(*result, *fragments)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("spec", ["64,x", "0", "", "64,,32", "-3", "1.5"])
def test_diagnose_bad_layers(runner: CliRunner, tmp_path: Path, spec: str) -> None:
    result = run(runner, "diagnose", "--layers", spec, "--out", str(tmp_path / "r"))
    assert_usage_error(*result, f"--layers: got {spec!r}", "e.g. --layers 64,32")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--dataset", "mnist"], "--dataset: got 'mnist'"),
        (["--target", "y"], "--target needs --data"),
        (["--activation", "swishy"], "--activation: got 'swishy'"),
        (["--init", "foo"], "--init: got 'foo'"),
        (["--dropout", "1.5"], "--dropout: got 1.5, expected a number in [0, 1)"),
        (["--l2", "-1"], "--l2: got -1.0, expected a number >= 0"),
        (["--optimizer", "sgd"], "--optimizer: got 'sgd'"),
        (["--lr", "0"], "--lr: got 0.0, expected a positive number"),
        (["--epochs", "0"], "--epochs: got 0, expected an integer >= 1"),
        (["--seed", "-1"], "--seed: got -1, expected a non-negative int"),
    ],
)
def test_diagnose_option_errors(
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    fragment: str,
) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the options must be checked before the run starts")

    # Checked before the progress display and the run, so no blank line precedes the error.
    monkeypatch.setattr(pipeline, "run_diagnosis", never)
    result = run(runner, "diagnose", *args, "--out", str(tmp_path / "r"))
    assert_usage_error(*result, fragment)
    assert not (tmp_path / "r").exists()


def test_diagnose_out_is_a_file(runner: CliRunner, tmp_path: Path) -> None:
    blocker = tmp_path / "report"
    blocker.write_text("not a folder")
    for out in (blocker, blocker / "sub"):
        result = run(runner, "diagnose", *SMALL, "--out", str(out))
        assert_usage_error(*result, "--out: cannot write", f"{blocker} is a file, not a folder")
    assert blocker.read_text() == "not a folder"


def test_diagnose_out_write_failure_names_the_option(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A failure the early check cannot foresee (a full disk, /proc): still one line.
    def full_disk(path: object, content: object) -> None:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(page, "write_page", lambda d, out: full_disk(Path(out) / "x", ""))
    result = run(runner, "diagnose", *SMALL, "--out", str(tmp_path / "r"))
    assert_usage_error(
        *result, f"--out: cannot write {tmp_path / 'r' / 'x'} (No space left on device)"
    )


def test_diagnose_summary_time_covers_the_whole_command(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = page.write_page

    def slow_write(*args: Any) -> Any:
        time.sleep(0.5)
        return real_write(*args)

    monkeypatch.setattr(page, "write_page", slow_write)
    code, out, _ = run(runner, "diagnose", *SMALL, "--out", str(tmp_path / "r"))
    assert code == 0
    total, analysis = re.search(r"\((\S+) s, analysis (\S+) s\)", out).groups()  # type: ignore[union-attr]
    assert float(total) >= 0.5 + float(analysis) - 0.05


def test_interrupted_run_writes_nothing(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "run_diagnosis", interrupted)
    code, _, err = run(runner, "diagnose", *SMALL, "--out", str(tmp_path / "r"))
    assert code == 130 and "interrupted" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_version_and_help(runner: CliRunner) -> None:
    code, out, _ = run(runner, "--version")
    assert code == 0 and out.startswith("gradprobe ")
    code, out, _ = run(runner, "--help")
    assert code == 0
    for command in ("diagnose", "check", "depth", "derivative"):
        assert command in out
    assert "--debug" in out and "<bool>" not in out
    for command in ("diagnose", "check", "depth", "derivative"):
        code, out, _ = run(runner, command, "--help")
        assert code == 0 and "--help" in out and "<bool>" not in out, command


# ------------------------------------------------------------------ start-up and options


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from gradprobe.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "for name in ('diagnose', 'depth', 'derivative', 'check'):\n"
        "    try:\n        app([name, '--help'])\n    except SystemExit:\n        pass\n"
        "heavy = ('matplotlib', 'sklearn', 'scipy', 'sympy', 'rich.progress', 'threadpoolctl',\n"
        "         'numpy', 'gradprobe.check.checker')\n"
        "print('heavy:' + ','.join(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), COLUMNS="100")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines()[-1] == "heavy:", result.stdout[-300:]


def _options(command: str) -> list[Any]:
    group = typer.main.get_command(app)
    return list(group.commands[command].params)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", ["diagnose", "check", "depth", "derivative"])
def test_every_option_has_help_text(command: str) -> None:
    for param in _options(command):
        assert getattr(param, "help", None), f"{command} {param.name} has no help"


@pytest.mark.parametrize(
    ("command", "option", "choices"),
    [
        ("diagnose", "activation", ["relu", "tanh", "gelu"]),
        ("diagnose", "optimizer", ["gd", "momentum", "adam"]),
        ("diagnose", "task", ["classification", "regression"]),
        ("diagnose", "init", ["auto", "he", "xavier"]),
        ("depth", "init", ["zeros", "small", "large"]),
        ("derivative", "method", ["forward", "central", "richardson"]),
    ],
)
def test_options_with_choices_name_them(command: str, option: str, choices: list[str]) -> None:
    (param,) = [p for p in _options(command) if p.name == option]
    assert all(choice in param.help for choice in choices), param.help


def test_check_help_mentions_pytorch_files_and_the_extra(runner: CliRunner) -> None:
    code, out, _ = run(runner, "check", "--help")
    assert code == 0 and "PyTorch" in out and "gradprobe[torch]" in out


def test_completion_completes_choices_after_a_comma() -> None:
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT / "src"),
        _GRADPROBE_COMPLETE="complete_bash",
        COMP_WORDS="gradprobe depth --init he,xa",
        COMP_CWORD="3",
    )
    result = subprocess.run(
        [sys.executable, "-m", "gradprobe"], env=env, capture_output=True, text=True
    )
    assert result.stdout.split() == ["he,xavier", "he,xavier_normal", "he,xavier_uniform"]


def test_depth_takes_a_comma_list_of_inits(runner: CliRunner) -> None:
    code, out, _ = run(runner, "depth", "--depth", "6", "--width", "16", "--init", "he,xavier")
    assert code == 0
    rows = [
        line.split()[0] for line in out.splitlines() if line.split()[:1] in (["he"], ["xavier"])
    ]
    assert rows == ["xavier", "he"] or rows == ["he", "xavier"]
    assert "zeros" not in out


def test_depth_refuses_an_unknown_init_in_one_line(runner: CliRunner) -> None:
    result = run(runner, "depth", "--depth", "6", "--init", "he,foo")
    assert_usage_error(*result, "--init: got 'foo'", "separated by commas")
    assert "callable" not in result[2] and "inits:" not in result[2]


def test_derivative_takes_a_comma_list_of_methods(runner: CliRunner) -> None:
    code, out, _ = run(runner, "derivative", "x**3", "--method", "forward,central", "--json")
    assert code == 0
    assert [m["method"] for m in strict_json(out)["methods"]] == ["forward", "central"]  # type: ignore[index]


def test_classification_of_a_continuous_target_is_a_usage_error(
    runner: CliRunner, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "continuous.csv"
    rows = "\n".join(f"{a:.4f},{b:.4f},{a + b:.5f}" for a, b in rng.normal(size=(300, 2)))
    path.write_text("a,b,y\n" + rows + "\n")
    args = ["diagnose", "--data", str(path), "--target", "y", "--task", "classification"]
    result = run(runner, *args, "--out", str(tmp_path / "r"))
    assert_usage_error(*result, "--task: classification needs class labels", "--task regression")
    assert not (tmp_path / "r").exists()


def test_the_summary_says_why_the_task_was_chosen(runner: CliRunner, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = tmp_path / "two.csv"
    X = rng.normal(size=(60, 2))
    rows = "\n".join(f"{a:.4f};{b:.4f};{int(a > 0)}" for a, b in X)
    path.write_text("a;b;label\n" + rows + "\n")  # semicolons: sniffed
    code, out, _ = run(
        runner,
        "diagnose",
        "--data",
        str(path),
        "--target",
        "label",
        "--epochs",
        "2",
        "--layers",
        "4",
        "--out",
        str(tmp_path / "r"),
    )
    assert code == 0, out
    assert "inferred: 'label' has 2 distinct integer values" in out.splitlines()[0]


def test_piped_output_has_no_trailing_spaces(runner: CliRunner, tmp_path: Path) -> None:
    outputs = [
        run(runner, "check", f"{EXAMPLE}:with_planted_bug")[1],
        run(runner, "depth", "--depth", "6", "--width", "16")[1],
        run(runner, "derivative", "x**3")[1],
        run(runner, "diagnose", *SMALL, "--out", str(tmp_path / "r"))[1],
    ]
    for out in outputs:
        assert out.strip()
        assert all(line == line.rstrip() for line in out.splitlines()), out
        # Every line fits, but the one naming the report's files: paths stay whole.
        assert max(len(line) for line in out.splitlines() if not line.startswith("report: ")) <= 100
