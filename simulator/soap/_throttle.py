"""Login throttling with an ESXi-like account lockout, on the endpoint's injectable clock.

ESXi locks an account after ``Security.AccountLockFailures`` failed logins (default 5, since
ESXi 6.0) for ``Security.AccountUnlockTime`` seconds (default 900) — VMware vSphere Security
guide, "ESXi Account Lockout Behavior". While locked, a login is refused with the same
``InvalidLogin`` as a wrong password (no oracle for a guesser), even with the right one; a
successful login resets the count. Here the count is kept per client address and user name,
so a guesser on one connection does not lock out the operator on another; ``failures=0``
turns locking off (tests that hammer Login on purpose).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LoginThrottle", "ACCOUNT_LOCK_FAILURES", "ACCOUNT_UNLOCK_SECONDS"]

#: ESXi's ``Security.AccountLockFailures`` default
ACCOUNT_LOCK_FAILURES = 5
#: ESXi's ``Security.AccountUnlockTime`` default (seconds)
ACCOUNT_UNLOCK_SECONDS = 900.0
#: (client, user) pairs remembered at most (the oldest are forgotten first)
_MAX_ENTRIES = 10_000


@dataclass
class _Entry:
    failures: int = 0
    locked_until: float = 0.0


class LoginThrottle:
    """Counts failed logins per ``(client, user)`` and locks the pair after ``failures``."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        failures: int = ACCOUNT_LOCK_FAILURES,
        unlock_seconds: float = ACCOUNT_UNLOCK_SECONDS,
    ) -> None:
        self.clock = clock
        self.failures = failures
        self.unlock_seconds = unlock_seconds
        self._entries: dict[tuple[str, str], _Entry] = {}
        #: logins refused because the pair was locked (for reports and tests)
        self.refused = 0

    def locked(self, client: str, user: str) -> bool:
        """Whether a login of ``user`` from ``client`` is refused without checking it."""
        if self.failures <= 0:
            return False
        entry = self._entries.get((client, user))
        if entry is None or entry.locked_until <= self.clock():
            return False
        self.refused += 1
        return True

    def failed(self, client: str, user: str) -> None:
        if self.failures <= 0:
            return
        key = (client, user)
        entry = self._entries.pop(key, None) or _Entry()
        now = self.clock()
        if entry.locked_until and entry.locked_until <= now:
            entry = _Entry()  # the lock ran out: counting starts again
        entry.failures += 1
        if entry.failures >= self.failures:
            entry.locked_until = now + self.unlock_seconds
        self._entries[key] = entry  # most recent last
        while len(self._entries) > _MAX_ENTRIES:
            del self._entries[next(iter(self._entries))]

    def succeeded(self, client: str, user: str) -> None:
        self._entries.pop((client, user), None)
