"""Build pyVmomi data objects for the endpoint's hot paths without ``DataObject.__init__``.

Why: ``__init__`` sets every property of the type to its default and then each given value
through ``CheckField`` (under pyVmomi's global lock): about 24 µs for a ``TaskInfo``. The
endpoint makes a ``TaskInfo`` per task and an ``ObjectContent`` with its
``DynamicProperty`` values per object a collector call returns, all from its own, already
typed values. ``make`` fills the instance from a template that ``__init__`` itself produced
(every array a fresh typed array) and then the given values, so the object is the one
``__init__`` would make; a unit test compares both, attribute by attribute and by their
serialization. An unknown property name is refused as ``__init__`` refuses it.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["make"]

#: type -> (defaults made by ``__init__``, array properties and their array types)
_TEMPLATES: dict[type, tuple[dict[str, Any], tuple[tuple[str, type], ...]]] = {}
_LOCK = threading.Lock()


def _template(cls: type) -> tuple[dict[str, Any], tuple[tuple[str, type], ...]]:
    with _LOCK:
        entry = _TEMPLATES.get(cls)
        if entry is None:
            proto = cls()
            arrays = tuple(
                (p.name, p.type) for p in cls._GetPropertyList() if issubclass(p.type, list)  # type: ignore[attr-defined]
            )
            entry = _TEMPLATES[cls] = (dict(proto.__dict__), arrays)
    return entry


def make(cls: type, **values: Any) -> Any:
    """``cls(**values)`` for a pyVmomi data object type, without the per-property checks."""
    entry = _TEMPLATES.get(cls) or _template(cls)
    defaults, arrays = entry
    if not defaults.keys() >= values.keys():
        unknown = ", ".join(sorted(values.keys() - defaults.keys()))
        msg = f"{cls.__name__} has no property {unknown}"
        raise TypeError(msg)
    obj: Any = object.__new__(cls)
    state = obj.__dict__
    state.update(defaults)
    for name, array in arrays:
        state[name] = array()
    state.update(values)
    return obj
