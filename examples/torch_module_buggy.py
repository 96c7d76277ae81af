""":mod:`torch_module` with a planted bug: the bias gradient averages instead of summing.

``gradprobe check examples/torch_module_buggy.py`` exits 1 and names ``hidden.bias``,
with the diagnosis "a constant factor is wrong (a missing or extra 1/m …)".
"""

from __future__ import annotations

from torch_module import build

module, inputs, loss_fn, targets = build(planted_bug=True)
