"""Lazy re-exports: every public name still works, and ``import gradprobe`` stays cheap."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import gradprobe
from gradprobe._lazy import lazy_exports

ROOT = Path(__file__).resolve().parents[1]
LAZY_PACKAGES = ["gradprobe", "gradprobe.check", "gradprobe.nn", "gradprobe.diagnose"]


def _fresh_python(code: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture
def demo() -> Iterator[types.ModuleType]:
    package = types.ModuleType("lazy_demo")
    sys.modules["lazy_demo"] = package
    yield package
    del sys.modules["lazy_demo"]


def test_a_name_is_read_from_its_module_and_cached(demo: types.ModuleType) -> None:
    attribute, listing = lazy_exports(
        "lazy_demo", {"sqrt": "math", "root": "math:sqrt", "paths": "os.path:"}
    )
    import math
    import os.path

    assert attribute("sqrt") is math.sqrt and attribute("root") is math.sqrt
    assert attribute("paths") is os.path
    assert vars(demo)["sqrt"] is math.sqrt  # cached: __getattr__ is not asked again
    assert set(listing()) >= {"sqrt", "root", "paths"}


def test_an_unknown_name_is_an_attribute_error(demo: types.ModuleType) -> None:
    attribute, _ = lazy_exports("lazy_demo", {"sqrt": "math"})
    with pytest.raises(AttributeError, match="module 'lazy_demo' has no attribute 'cube'"):
        attribute("cube")
    assert not hasattr(gradprobe, "no_such_name")


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_public_name_resolves_and_is_listed(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
    assert set(module.__all__) <= set(dir(module))


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_no_lazy_name_is_hidden_by_a_submodule(package: str) -> None:
    # Importing a submodule binds its name on the package; a lazy function of that name
    # would then read as the module. Only a name that *is* the submodule may share it.
    module = importlib.import_module(package)
    submodules = {info.name for info in pkgutil.iter_modules(module.__path__)}
    for name in set(module.__all__) & submodules:
        assert getattr(module, name) is importlib.import_module(f"{package}.{name}"), name


def test_the_facade_gives_the_implementing_objects() -> None:
    from gradprobe.check.checker import check_gradients
    from gradprobe.nn import initializers
    from gradprobe.nn.mlp import MLP
    from gradprobe.signals.deep_linear import deep_linear

    assert gradprobe.check_gradients is check_gradients and gradprobe.MLP is MLP
    assert gradprobe.init is initializers and gradprobe.deep_linear is deep_linear
    assert gradprobe.datasets.__name__ == "gradprobe.nn.datasets"


def test_import_gradprobe_loads_no_heavy_library() -> None:
    heavy = ("numpy", "scipy", "sklearn", "matplotlib", "torch", "jax", "sympy", "rich")
    code = (
        "import sys, gradprobe\n"
        f"print('heavy:' + ','.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    assert _fresh_python(code) == "heavy:"


def test_the_first_use_loads_what_it_needs() -> None:
    # The same probe sees NumPy arrive once a name is read, so it can tell the difference.
    code = "import sys, gradprobe\ngradprobe.MLP\nprint('numpy' in sys.modules)\n"
    assert _fresh_python(code) == "True"


def test_subpackages_read_as_attributes_as_when_imports_were_eager() -> None:
    # `import gradprobe` used to import check, nn, numdiff and signals as a side effect,
    # so gradprobe.nn.MLP and gradprobe.check.checker worked; they still do.
    code = (
        "import gradprobe\n"
        "print(gradprobe.nn.MLP is gradprobe.MLP, gradprobe.nn.mlp.MLP is gradprobe.MLP,\n"
        "      gradprobe.check.checker.run_check.__name__, hasattr(gradprobe, 'no_such'),\n"
        "      hasattr(gradprobe.nn, 'no_such'))\n"
    )
    assert _fresh_python(code).split() == ["True", "True", "run_check", "False", "False"]
