"""Lazy re-exports for package ``__init__`` modules (PEP 562).

``import gradprobe`` should cost little more than Python's own start: a package lists
what it re-exports as ``name -> implementing module`` and imports that module only when
the name is first read. The ``__init__`` repeats the imports under ``TYPE_CHECKING`` so
that type checkers and editors see the real objects.

A lazily exported name must not be the name of one of the package's own submodules:
importing such a submodule binds its name on the package, which would hide the
function of the same name. Such names are imported eagerly instead.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return a package's module-level ``__getattr__`` and ``__dir__``.

    Parameters
    ----------
    package : str
        The package's ``__name__``, e.g. ``"gradprobe"``.
    names : mapping of str to str
        Public name -> where it lives: ``"gradprobe.nn.mlp"`` reads the attribute of
        the same name from that module, ``"module:attribute"`` another attribute, and
        ``"gradprobe.nn.initializers:"`` (a trailing colon) is the module itself.

    Returns
    -------
    getattr, dir : callables
        Assign them to ``__getattr__`` and ``__dir__`` of the package. The first
        imports on demand and caches the object in the package, and reads a name that
        is none of these but one of the package's submodules (``gradprobe.nn`` after
        ``import gradprobe``, as when everything was imported eagerly) as that
        submodule; the second lists the package's names together with the lazy ones.

    Examples
    --------
    >>> import types
    >>> package = types.ModuleType("demo")
    >>> sys.modules["demo"] = package
    >>> attribute, names = lazy_exports("demo", {"sqrt": "math", "paths": "os.path:"})
    >>> attribute("sqrt")(9.0), attribute("paths").__name__ in ("posixpath", "ntpath")
    (3.0, True)
    >>> "sqrt" in names() and "sqrt" in vars(package)
    True
    >>> del sys.modules["demo"]
    """

    def attribute(name: str) -> Any:
        target = names.get(name)
        if target is None:
            submodule = f"{package}.{name}"
            is_package = hasattr(sys.modules[package], "__path__")
            if is_package and not name.startswith("__") and importlib.util.find_spec(submodule):
                return importlib.import_module(submodule)
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_name, colon, attribute_name = target.partition(":")
        module = importlib.import_module(module_name)
        if not colon:
            attribute_name = name
        value = getattr(module, attribute_name) if attribute_name else module
        setattr(sys.modules[package], name, value)
        return value

    def listing() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return attribute, listing
