"""The kit's own exceptions, a branch of vcbsim's one hierarchy (``simulator/_errors.py``).

::

    VcbsimError
    └── KitError                     root of everything the kit raises on purpose
        ├── AdapterError (RuntimeError)
        │   │                        the implementation's adapter misbehaved: reported as ERROR
        │   └── FlakyAdapterError    the same steps gave different outcomes on replay
        ├── ConformanceViolation (AssertionError)
        │                            a rule failed: reported as FAIL (rule id, witness, why)
        └── InvalidDefinition (InvalidInputError, so ValueError)
                                     a bad rule, profile, option or input file

ERROR and FAIL never mix: an ``AdapterError`` says nothing about the rules (the run could not
judge them), a ``ConformanceViolation`` says the run judged a rule and it failed.

Messages name what was expected, what happened, and what to do. Structured pieces ride on the
exception (``rule_id``, ``witness``, ``vm``, ``expected``, ``got``) so reports need not parse text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vcbsim.simulator import InvalidInputError, VcbsimError

if TYPE_CHECKING:
    from vcbsim.simulator import Event

__all__ = [
    "KitError",
    "AdapterError",
    "FlakyAdapterError",
    "ConformanceViolation",
    "InvalidDefinition",
]


class KitError(VcbsimError):
    """Root of every exception the conformance kit raises on purpose. ``case`` names the
    suite case that raised it, when there is one."""

    case: str | None = None


class AdapterError(KitError, RuntimeError):
    """The adapter of the implementation under test misbehaved (raised, returned the wrong
    type, never returned). Reported as ERROR, not FAIL: no rule was judged.

    ``adapter`` names the adapter, ``operation`` the call that misbehaved.
    """

    def __init__(self, message: str, *, adapter: str = "", operation: str = "") -> None:
        super().__init__(message)
        self.adapter = adapter
        self.operation = operation


class FlakyAdapterError(AdapterError):
    """Replaying the same steps gave a different outcome: the adapter is not deterministic
    (it reads wall time, global state or its own randomness)."""


class ConformanceViolation(KitError, AssertionError):
    """A conformance rule failed. Reported as FAIL (an ``AssertionError``: a test that runs a
    scenario fails, it does not error).

    ``rule_id`` is the catalogue id (``WF-3a``), ``witness`` the few trace events that prove
    the violation, ``explanation`` a plain sentence saying why.
    """

    def __init__(
        self,
        rule_id: str,
        explanation: str,
        *,
        witness: Sequence[Event] = (),
        vm: str | None = None,
        rule_ids: Sequence[str] = (),
    ) -> None:
        self.rule_id = rule_id
        #: every rule the failing case broke, this one first
        self.rule_ids: tuple[str, ...] = tuple(dict.fromkeys([rule_id, *rule_ids]))
        self.explanation = explanation
        self.witness = tuple(witness)
        self.vm = vm
        lines = [f"{rule_id}: {explanation}"]
        lines += [f"    {ev.line()}" for ev in self.witness]
        super().__init__("\n".join(lines))


class InvalidDefinition(KitError, InvalidInputError):
    """A rule, profile, option or input is malformed. The message says what was expected,
    what came, and how to fix it (``InvalidInputError``'s fields: ``what``, ``expected``,
    ``got``, ``hint``)."""

    def __init__(self, what: str, *, expected: str, got: Any, hint: str = "") -> None:
        InvalidInputError.__init__(self, what, expected=expected, got=got, hint=hint)
