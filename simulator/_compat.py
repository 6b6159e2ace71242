"""Old public names kept importable for one release, with a ``DeprecationWarning``.

Why: one name per concept across the public API (``VMInfo`` meant a different class in
``vcbsim.reference`` and in ``vcbsim.simulator.soap``), but code written against the old
names must keep working for a release while it moves. A package's ``__init__`` sets
``__getattr__ = deprecated_names(__name__, {"Old": ("New", New)})``; ``import *`` and
``__all__`` show only the new names.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["deprecated_names"]


def deprecated_names(module: str, renamed: Mapping[str, tuple[str, Any]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that answers each old name with its new object and a warning
    naming the new spelling; any other unknown name is the usual ``AttributeError``."""

    def __getattr__(name: str) -> Any:
        if name in renamed:
            new, obj = renamed[name]
            warnings.warn(
                f"{module}.{name} is deprecated and goes in the next release: use {module}.{new}",
                DeprecationWarning,
                stacklevel=2,
            )
            return obj
        msg = f"module {module!r} has no attribute {name!r}"
        raise AttributeError(msg)

    return __getattr__
