"""Load the user's code for ``gradprobe check FILE.py[:NAME]``.

The protocol: the file defines ``params``, ``loss(params)`` and ``grads(params)``;
or ``FILE.py:NAME`` names a function ``NAME()`` returning ``(loss, params, grads)``;
or it is an ordinary PyTorch file, one that defines an ``nn.Module`` instance (``model``,
``net``, ``module`` or the only one), its inputs (``x``, ``inputs``) and optionally a
criterion (``criterion``, ``loss_fn``) and targets (``y``, ``targets``): its namespace is
handed to :func:`gradprobe.torch.check_namespace`, which finds those names. The file is
imported as a registered module, so that its functions can be pickled for ``--workers``.
Whatever the user's code raises becomes a :class:`UserCodeError` that says what to fix.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from gradprobe.errors import InvalidArgumentError

__all__ = ["UserCodeError", "is_torch_file", "load_problem"]


class UserCodeError(InvalidArgumentError):
    """The user's file for ``gradprobe check`` raised on import or lacks the protocol's names."""


# Self-contained: pip users have no examples/ folder to look at.
_PROTOCOL = (
    "a file that defines params = {'W': array, ...}, loss(params) -> float and "
    "grads(params) -> {'W': array, ...}; or FILE.py:NAME with NAME() returning "
    "(loss, params, grads); or, for PyTorch, a model (an nn.Module instance) and its "
    "inputs x, optionally a criterion and targets y"
)


def _import_file(path: Path) -> ModuleType:
    """Import a user's Python file as a fresh module, its folder importable meanwhile."""
    if path.is_dir():
        raise InvalidArgumentError(f"{path} is a folder, expected the path of {_PROTOCOL}")
    if not path.is_file():
        raise InvalidArgumentError(f"{path}: no such file, expected the path of {_PROTOCOL}")
    spec = importlib.util.spec_from_file_location(f"_gradprobe_user_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise InvalidArgumentError(f"{path}: cannot be imported as Python; expected a .py file")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    # Registered so that pickle finds the file's functions (a process pool's workers do).
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: BLE001 - user code may raise anything, SystemExit too
        sys.modules.pop(spec.name, None)
        raise UserCodeError(
            f"{path} raised {type(error).__name__} on import: {_first_line(error)}; fix the "
            "file (run it with python to see where) or use --debug for the traceback"
        ) from error
    finally:
        sys.path.remove(folder)
    return module


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"


def load_problem(target: str) -> tuple[Callable[..., Any], Any, Any] | dict[str, Any]:
    """Return ``(loss, params, grads)`` from ``FILE.py`` or ``FILE.py:NAME``.

    An ordinary PyTorch file (see :func:`is_torch_file`) gives its namespace instead.
    """
    file_part, _, name = target.rpartition(":") if _has_name(target) else (target, "", "")
    path = Path(file_part)
    module = _import_file(path)
    if name:
        factory = getattr(module, name, None)
        if not callable(factory):
            raise UserCodeError(f"{path} defines no function {name!r}, expected {_PROTOCOL}")
        try:
            produced = factory()
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # noqa: BLE001 - reported as the user's error
            raise UserCodeError(
                f"{name}() in {path} raised {type(error).__name__}: {_first_line(error)}"
            ) from error
        if not isinstance(produced, tuple):
            raise UserCodeError(
                f"{name}() in {path} returned {type(produced).__name__}, expected a tuple "
                "(loss, params, grads)"
            )
        if len(produced) != 3:
            raise UserCodeError(
                f"{name}() in {path} returned a tuple of {len(produced)} items, expected 3: "
                "(loss, params, grads)"
            )
        loss, params, grads = produced
    else:
        if is_torch_file(vars(module)):
            return dict(vars(module))
        missing = [key for key in ("params", "loss", "grads") if not hasattr(module, key)]
        if missing:
            raise UserCodeError(f"{path} defines no {', '.join(missing)}, expected {_PROTOCOL}")
        loss, params, grads = module.loss, module.params, module.grads
    if not callable(loss):
        raise UserCodeError(f"loss in {path} is {type(loss).__name__}, expected a function")
    return loss, params, grads


def is_torch_file(namespace: dict[str, Any]) -> bool:
    """Tell a PyTorch file from a NumPy one: it defines an ``nn.Module`` instance.

    A file with the NumPy protocol's ``params``, ``loss`` and ``grads`` is a NumPy file
    whatever else it holds. torch is looked for only where the file imported it, so a
    NumPy file never pays for importing it.
    """
    if all(name in namespace for name in ("params", "loss", "grads")):
        return False
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    return any(isinstance(value, torch.nn.Module) for value in namespace.values())


def _has_name(target: str) -> bool:
    """Tell ``FILE.py:NAME`` from a plain path (which, on Windows, may hold ``C:``)."""
    head, separator, tail = target.rpartition(":")
    return bool(separator) and tail.isidentifier() and not Path(target).exists() and bool(head)
