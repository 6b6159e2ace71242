"""The simulator's own error hierarchy (for misuse of the Python API).

Faults that a real ESX host would raise are pyVmomi ``vim.fault.*`` objects, built by
``simulator._faults.raise_fault``; the classes here are for input that no real host would
ever be sent (a negative disk size, an unknown profile name) and for kit-level problems::

    VcbsimError
    ├── InvalidInputError (ValueError)   bad argument: says what was expected and what came
    ├── NotFoundError (LookupError)       unknown VM, snapshot, volume, file, job ...
    ├── StateError (RuntimeError)         operation not allowed in the current state
    └── SimulatedCrash (BaseException)    injected crash point: not caught by ``except Exception``

Each carries structured fields (``expected``, ``got``, ``hint``) besides the message.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "VcbsimError",
    "InvalidInputError",
    "NotFoundError",
    "StateError",
    "SimulatedCrash",
]


class VcbsimError(Exception):
    """Root of every error vcbsim raises that is not a simulated vSphere fault."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.fields = fields


class InvalidInputError(VcbsimError, ValueError):
    """An argument was malformed. The message names what was expected, what came, and a fix."""

    def __init__(self, what: str, *, expected: str, got: Any, hint: str = "") -> None:
        msg = f"{what}: expected {expected}, got {got!r}"
        if hint:
            msg += f"; {hint}"
        super().__init__(msg, what=what, expected=expected, got=got, hint=hint)
        self.expected = expected
        self.got = got
        self.hint = hint


class NotFoundError(VcbsimError, LookupError):
    """A named object does not exist. The message lists what does exist."""

    def __init__(self, kind: str, name: Any, *, known: list[str] | None = None) -> None:
        msg = f"no {kind} named {name!r}"
        if known is not None:
            shown = ", ".join(repr(k) for k in known[:10]) or "none"
            more = f" (and {len(known) - 10} more)" if len(known) > 10 else ""
            msg += f"; known: {shown}{more}"
        super().__init__(msg, kind=kind, name=name, known=known)
        self.kind = kind
        self.name = name


class StateError(VcbsimError, RuntimeError):
    """The object is in a state where the operation is not allowed."""


class SimulatedCrash(BaseException):  # noqa: N818 - it is an event, not an error
    """An injected crash point fired: the process 'dies' here.

    A ``BaseException`` so that ordinary ``except Exception`` cleanup code in an orchestrator
    does not run, exactly as it would not after a real crash.
    """

    def __init__(self, point: str) -> None:
        super().__init__(f"simulated crash at {point}")
        self.point = point
