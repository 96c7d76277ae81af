"""Find the module, loss, inputs and targets in an ordinary PyTorch file, for ``gradprobe check``.

A training script names its pieces ``model``, ``criterion``, ``x`` and ``y`` (or
``net``, ``loss_fn``, ``inputs``, ``targets``); :func:`recognize` takes them from
the file's globals by those conventional names, by the only ``nn.Module`` instance
the file defines, or by the names the user gives, and says which it took.
:func:`gradprobe.torch.check_namespace` then runs :func:`~gradprobe.torch.check_module`
on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from gradprobe.errors import InvalidArgumentError

__all__ = ["ROLES", "Recognized", "recognize"]

ROLES: dict[str, tuple[str, ...]] = {
    "module": ("module", "model", "net", "network"),
    "loss": ("loss_fn", "criterion", "loss_function", "loss"),
    "inputs": ("inputs", "x", "X", "input", "data", "features"),
    "targets": ("targets", "y", "Y", "target", "labels"),
}
"""The conventional names of each role, tried in order."""


@dataclass(frozen=True)
class Recognized:
    """What :func:`recognize` took from a file, and under which names."""

    module: nn.Module
    inputs: Any
    loss: Any
    targets: Any
    taken: dict[str, str]

    @property
    def summary(self) -> str:
        """One line: ``module = model (Sequential), loss = criterion, inputs = x, …``."""
        parts = []
        for role, name in self.taken.items():
            kind = f" ({type(self.module).__name__})" if role == "module" else ""
            parts.append(f"{role} = {name}{kind}")
        return "took " + ", ".join(parts)


def _find(
    namespace: Mapping[str, Any], role: str, given: str | None, accept: Any
) -> tuple[str, Any] | None:
    if given is not None:
        if given not in namespace:
            raise InvalidArgumentError(
                f"--{role}: got {given!r}, which the file does not define; expected one of "
                f"{sorted(k for k in namespace if not k.startswith('_'))[:20]}"
            )
        return given, namespace[given]
    for name in ROLES[role]:
        if name in namespace and accept(namespace[name]):
            return name, namespace[name]
    return None


def _is_tensors(value: Any) -> bool:
    if isinstance(value, Tensor):
        return True
    if isinstance(value, (tuple, list)) and value:
        return all(isinstance(v, Tensor) for v in value)
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(v, Tensor) for v in value.values())
    )


def recognize(
    namespace: Mapping[str, Any],
    *,
    module: str | None = None,
    loss: str | None = None,
    inputs: str | None = None,
    targets: str | None = None,
) -> Recognized:
    """Take the module, loss, inputs and targets from a file's globals.

    Parameters
    ----------
    namespace : mapping
        The file's globals.
    module, loss, inputs, targets : str, optional
        The names to take; by default the conventional ones of :data:`ROLES`, and for
        the module the only ``nn.Module`` instance in the file when none is so named.

    Returns
    -------
    Recognized

    Raises
    ------
    InvalidArgumentError
        When a role cannot be filled (or a name given is not defined); the message lists
        the names tried and what to pass.
    """
    public = {k: v for k, v in namespace.items() if not k.startswith("_")}
    found = _find(public, "module", module, lambda v: isinstance(v, nn.Module))
    if found is None:
        instances = [k for k, v in public.items() if isinstance(v, nn.Module)]
        losses = {k for k in instances if k in ROLES["loss"] or k.endswith("loss")}
        models = [k for k in instances if k not in losses]
        if len(models) != 1:
            raise InvalidArgumentError(
                f"the file defines {len(models)} nn.Module instances "
                f"({', '.join(models) or 'none'}) "
                f"and none named {', '.join(ROLES['module'])}; expected one model: name it "
                "model, or pass --module NAME"
            )
        found = (models[0], public[models[0]])
    module_name, model = found
    if not isinstance(model, nn.Module):
        raise InvalidArgumentError(
            f"--module: {module_name} is a {type(model).__name__}, expected a torch.nn.Module"
        )
    data = _find(public, "inputs", inputs, _is_tensors)
    if data is None:
        raise InvalidArgumentError(
            f"the file defines no input tensor named {', '.join(ROLES['inputs'])}; expected "
            "one (a tensor, or a tuple of tensors), or pass --inputs NAME"
        )
    criterion = _find(
        public, "loss", loss, lambda v: callable(v) and v is not model and not isinstance(v, type)
    )
    labels = _find(public, "targets", targets, lambda v: v is not data[1])
    taken = {"module": module_name, "inputs": data[0]}
    if criterion is not None:
        taken["loss"] = criterion[0]
    if labels is not None:
        if criterion is None:
            raise InvalidArgumentError(
                f"the file defines targets ({labels[0]}) but no loss named "
                f"{', '.join(ROLES['loss'])}; expected a criterion such as "
                "criterion = torch.nn.CrossEntropyLoss(), or pass --loss NAME"
            )
        taken["targets"] = labels[0]
    return Recognized(
        module=model,
        inputs=data[1],
        loss=None if criterion is None else criterion[1],
        targets=None if labels is None else labels[1],
        taken=taken,
    )
