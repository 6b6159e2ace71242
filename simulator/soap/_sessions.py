"""Sessions, clone tickets and guest file transfer URLs: who may call, and until when.

Time is the store's ``clock`` (seconds, any origin; ``_endpoint.py`` says why it is the wall
clock by default and how tests drive it). A session idle for ``SESSION_IDLE_SECONDS`` is
dropped, as hostd does after 30 minutes; beyond ``MAX_SESSIONS`` a login is refused
(``InvalidLogin``; nobody is logged out to make room), so a client that logs in for every call
and never logs out does not make the host grow. A transfer URL is good for one transfer, for ``TRANSFER_SECONDS``, and dies with its
session. What else a session holds (collectors, filters, views) is ``SessionScoped``'s
(``_scoped.py``): it is told through ``on_drop``. Who may open a session is ``Auth``'s
(``_auth.py``). The store reads as a mapping of the sessions by key
(``key in ep.sessions``, ``ep.sessions.get(key)``, ``ep.sessions.values()``).
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from .._errors import InvalidInputError
from ._collector import Collector
from .mo._base import MOIDS
from .mo._vmprops import ts

if TYPE_CHECKING:
    from ._scoped import View

__all__ = ["COOKIE_NAME", "Session", "Sessions", "Transfer", "clock_function"]

COOKIE_NAME = "vmware_soap_session"
#: sessions idle this long (endpoint clock seconds) are dropped, as hostd does after 30 minutes
SESSION_IDLE_SECONDS = 1800.0
MAX_SESSIONS = 500
CLONE_TICKET_SECONDS = 30.0
#: open guest file transfer URLs, and how long one stays valid (endpoint clock seconds)
MAX_TRANSFERS = 1000
TRANSFER_SECONDS = 600.0


@dataclass
class Session:
    key: str
    user: str
    login_time: float
    last_active: float
    locale: str = "en"
    call_count: int = 0
    #: the endpoint clock's time of the last call: idle sessions expire as on a real host
    last_used: float = 0.0
    collectors: dict[str, Collector] = field(default_factory=dict)
    views: dict[str, View] = field(default_factory=dict)
    retrieve_tokens: dict[str, tuple[list[Any], int]] = field(default_factory=dict)

    def collector(self, moid: str) -> Collector:
        """This session's state of collector ``moid`` (the service's one is made on first use)."""
        coll = self.collectors.get(moid)
        if coll is None:
            if moid != MOIDS["pc"]:
                raise vmodl.fault.ManagedObjectNotFound(
                    msg=f"The object '{moid}' has already been deleted or has not been completely created",
                    obj=vmodl.query.PropertyCollector(moid),
                )
            coll = self.collectors[moid] = Collector(moid, self.key)
        return coll

    def user_session(self) -> Any:
        return vim.UserSession(
            key=self.key,
            userName=self.user,
            fullName=self.user,
            loginTime=ts(self.login_time),
            lastActiveTime=ts(self.last_active),
            locale=self.locale,
            messageLocale=self.locale,
            extensionSession=False,
            ipAddress="127.0.0.1",
            userAgent="",
            callCount=self.call_count,
        )


@dataclass
class Transfer:
    """A guest file transfer URL: who may use it, for what, until when (endpoint clock)."""

    kind: str  # "to" (HTTP PUT into the guest) or "from" (HTTP GET out of it)
    vm: str
    user: str
    password: str
    path: str
    overwrite: bool
    size: int
    expires: float
    #: the session that asked for it: the URL dies with it (logout, idle expiry)
    session: str = ""


def clock_function(clock: Callable[[], float] | Any) -> Callable[[], float]:
    """``None`` (the wall clock), a function giving seconds, or an object with ``now``
    (``VirtualClock``)."""
    if clock is None:
        return time.monotonic
    if callable(clock):
        return clock  # type: ignore[no-any-return]
    if isinstance(getattr(clock, "now", None), int | float):
        return lambda: float(clock.now)
    raise InvalidInputError("endpoint clock", expected="a function returning seconds, or a VirtualClock",
                            got=type(clock).__name__)


@functools.lru_cache(maxsize=256)
def _session_key(cookie_header: str) -> str | None:
    """The session key in a ``Cookie`` header, or ``None``."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return None
    morsel = jar.get(COOKIE_NAME)
    return None if morsel is None else morsel.value


class Sessions(Mapping[str, Session]):
    """The sessions of one endpoint (a mapping by key: ``by_key``), their clone tickets and
    transfer URLs."""

    def __init__(
        self, clock: Callable[[], float], idle_seconds: float | None, on_drop: Callable[[Session], None]
    ) -> None:
        self.clock = clock
        #: ``None``: ``SESSION_IDLE_SECONDS`` (read when used, so a test may change it)
        self.idle_seconds = idle_seconds
        self.by_key: dict[str, Session] = {}
        self.transfers: dict[str, Transfer] = {}
        self._clone_tickets: dict[str, tuple[str, float]] = {}
        self._on_drop = on_drop

    def __getitem__(self, key: str) -> Session:
        return self.by_key[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_key)

    def __len__(self) -> int:
        return len(self.by_key)

    def idle_limit(self) -> float:
        return SESSION_IDLE_SECONDS if self.idle_seconds is None else self.idle_seconds

    def open(self, user: str, locale: str, login_time: float) -> Session:
        """A new session of ``user`` (idle and surplus sessions go first)."""
        self.expire()
        if len(self.by_key) >= MAX_SESSIONS:
            # refused, not made room for: evicting the oldest would log out a live client
            raise vim.fault.InvalidLogin(
                msg=f"Cannot complete login: the host already has {MAX_SESSIONS} sessions "
                "(its limit); log out sessions that are not needed, or wait until idle ones "
                "expire."
            )
        session = Session(secrets.token_hex(20), user, login_time, login_time, locale, last_used=self.clock())
        self.by_key[session.key] = session
        return session

    def drop(self, key: str) -> None:
        session = self.by_key.pop(key, None)
        if session is None:
            return
        for token in [t for t, x in self.transfers.items() if x.session == key]:
            del self.transfers[token]
        self._on_drop(session)

    def expire(self) -> None:
        limit = self.clock() - self.idle_limit()
        for key in [k for k, s in self.by_key.items() if s.last_used < limit]:
            self.drop(key)

    def live(self, key: str) -> Session | None:
        """The session ``key`` if it exists and has not been idle too long (else drop it)."""
        session = self.by_key.get(key)
        if session is not None and self.clock() - session.last_used > self.idle_limit():
            self.drop(key)
            return None
        return session

    def touch(self, session: Session) -> None:
        """A call of ``session``: its idle time starts again."""
        session.call_count += 1
        session.last_used = self.clock()

    def keep_alive(self, session: Session) -> None:
        """Not a call, but use (a ``/folder`` transfer): its idle time starts again."""
        session.last_used = self.clock()

    def from_cookie(self, cookie_header: str | None) -> Session | None:
        if not cookie_header:
            return None
        # a client sends the same header with every call: parse each distinct one once
        key = _session_key(cookie_header) if len(cookie_header) <= 512 else _session_key.__wrapped__(cookie_header)
        if key is None:
            return None
        return self.live(key)

    def acquire_clone_ticket(self, user: str) -> str:
        """A one-time ticket another connection turns into a session of ``user``."""
        ticket = f"cst-{secrets.token_hex(20)}"
        self._clone_tickets[ticket] = (user, self.clock() + CLONE_TICKET_SECONDS)
        while len(self._clone_tickets) > MAX_SESSIONS:
            del self._clone_tickets[next(iter(self._clone_tickets))]
        return ticket

    def take_clone_ticket(self, ticket: str) -> str:
        """The user of a good ticket (it is used up); ``InvalidLogin`` otherwise."""
        entry = self._clone_tickets.pop(ticket, None)
        if entry is None or entry[1] < self.clock():
            raise vim.fault.InvalidLogin(msg="The clone ticket is not valid (unknown, used or expired).")
        return entry[0]

    def create_transfer(
        self, kind: str, vm: str, user: str, password: str, path: str, overwrite: bool, size: int, session: str
    ) -> str:
        """A one-shot transfer token (valid for ``TRANSFER_SECONDS``)."""
        now = self.clock()
        for token in [t for t, x in self.transfers.items() if x.expires < now]:
            del self.transfers[token]
        while len(self.transfers) >= MAX_TRANSFERS:
            del self.transfers[next(iter(self.transfers))]
        token = secrets.token_urlsafe(24)
        self.transfers[token] = Transfer(kind, vm, user, password, path, overwrite, size, now + TRANSFER_SECONDS,
                                         session)
        return token

    def transfer_pending(self, token: str, kind: str) -> bool:
        """Whether ``token`` is a good ``kind`` transfer (not taken: ``take_transfer`` does)."""
        entry = self.transfers.get(token)
        return entry is not None and entry.kind == kind and self.live(entry.session) is not None

    def take_transfer(self, token: str, kind: str) -> Transfer | None:
        entry = self.transfers.get(token)
        if entry is None or entry.kind != kind or entry.expires < self.clock():
            return None
        if self.live(entry.session) is None:  # its session logged out or expired
            self.transfers.pop(token, None)
            return None
        del self.transfers[token]
        return entry

