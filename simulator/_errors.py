"""vcbsim's one error hierarchy: every exception vcbsim raises on purpose descends from
``VcbsimError``, and also from the built-in that says what kind of error it is (as
Hypothesis' errors do), so ``except ValueError`` and ``except VcbsimError`` both work.

Faults that a real ESX host would raise are pyVmomi ``vim.fault.*`` objects, built by
``simulator._faults.raise_fault``; the classes here are for input that no real host would
ever be sent (a negative disk size, an unknown profile name) and for the project's own
layers::

    VcbsimError
    ├── InvalidInputError (ValueError)      bad argument: says what was expected and what came
    │   ├── GrainLogError                    a redo-log file that is not one (disk/_persistent)
    │   ├── UnsupportedGuestError            file-level backup of a guest VCB cannot mount
    │   └── InvalidDefinition (+ KitError)   a bad rule, profile, option or kit input file
    ├── NotFoundError (LookupError)          unknown VM, snapshot, volume, file, job ...
    ├── StateError (RuntimeError)            operation not allowed in the current state
    ├── CorruptBlobError                     a backup blob whose content is not its digest
    ├── RequestError (ValueError)            not a well-formed vSphere SOAP call (soap/wire)
    ├── ControlError                         the control API refused a request (its status)
    ├── CommandError (ValueError)            a REPL command used wrongly (vcbsim/_repl)
    └── KitError                             the conformance kit (conformance/_errors.py)
        ├── AdapterError (RuntimeError)      the implementation's adapter misbehaved: ERROR
        │   └── FlakyAdapterError            the same steps gave different outcomes
        ├── ConformanceViolation (AssertionError)   a rule failed: FAIL
        └── InvalidDefinition                (above)

    SimulatedCrash (BaseException)           injected crash point: not caught by
                                             ``except Exception``, so not a VcbsimError

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

    def __init__(self, message: str = "", **fields: Any) -> None:
        super().__init__(message)
        self.fields = fields


class InvalidInputError(VcbsimError, ValueError):
    """An argument was malformed. The message names what was expected, what came, and a fix."""

    def __init__(self, what: str, *, expected: str, got: Any, hint: str = "") -> None:
        msg = f"{what}: expected {expected}, got {got!r}"
        if hint:
            msg += f"; {hint}"
        super().__init__(msg, what=what, expected=expected, got=got, hint=hint)
        self.what = what
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
