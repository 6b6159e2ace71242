"""Who gets a session: login, session clones, logout, the session cookie, guest transfer URLs.

``Auth`` (``Endpoint.auth``) checks the host's one account (``user``/``password``, compared
in constant time) under ESXi's account lockout (``throttle``, ``_throttle.py``), opens and
ends sessions in the store (``Sessions``, ``_sessions.py``), hands out clone tickets and the
one-shot ``/guestFile`` URLs of ``InitiateFileTransfer*``, and writes the ``Set-Cookie`` header
of a new session (``Secure`` unless the server speaks plain HTTP).
"""

from __future__ import annotations

import hmac
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyVmomi import vim

from ._sessions import COOKIE_NAME, Sessions
from ._throttle import LoginThrottle

if TYPE_CHECKING:
    from ._endpoint import Context

__all__ = ["Auth"]


class Auth:
    """The endpoint's account, its lockout, and the sessions it opens."""

    def __init__(
        self,
        sessions: Sessions,
        *,
        user: str,
        password: str,
        secure_cookie: bool,
        host_now: Callable[[], float],
        current_context: Callable[[], Context | None],
        base_url: Callable[[], str],
    ) -> None:
        self.sessions = sessions
        self.user = user
        self.password = password
        self.secure_cookie = secure_cookie
        #: failed logins per (client, user), ESXi's account lockout (``_throttle.py``);
        #: ``serve(login_lock_failures=0)`` turns it off
        self.throttle = LoginThrottle(sessions.clock)
        #: the host's (virtual) time, for the session's ``loginTime``
        self._host_now = host_now
        self._current_context = current_context
        self._base_url = base_url
        self._transfer_ids = itertools.count(1)

    def credentials_ok(self, user: str, password: str) -> bool:
        """Whether ``user``/``password`` is the host's account (constant-time comparison)."""
        ok_user = hmac.compare_digest(user.encode(), self.user.encode())
        ok_pass = hmac.compare_digest(password.encode(), self.password.encode())
        return ok_user and ok_pass

    def login(self, ctx: Context, user: str, password: str, locale: str | None) -> Any:
        """``SessionManager.Login``: a new session for this connection (its old one ends)."""
        client = getattr(ctx, "client", None) or "-"
        refused = vim.fault.InvalidLogin(msg="Cannot complete login due to an incorrect user name or password.")
        if self.throttle.locked(client, user):
            raise refused  # locked out: the same answer as a wrong password, as on ESXi
        if not self.credentials_ok(user, password):
            self.throttle.failed(client, user)
            raise refused
        self.throttle.succeeded(client, user)
        if ctx.session is not None:
            self.sessions.drop(ctx.session.key)
        return self._new_session(ctx, user, locale or "en")

    def _new_session(self, ctx: Context, user: str, locale: str) -> Any:
        session = self.sessions.open(user, locale, self._host_now())
        ctx.session = session
        ctx.new_cookie = session.key
        return session.user_session()

    def acquire_clone_ticket(self, ctx: Context) -> str:
        """A one-time ticket another connection turns into a session of the same user."""
        return self.sessions.acquire_clone_ticket(ctx.sess.user)

    def clone_session(self, ctx: Context, ticket: str) -> Any:
        user = self.sessions.take_clone_ticket(ticket)
        return self._new_session(ctx, user, ctx.session.locale if ctx.session else "en")

    def logout(self, ctx: Context) -> None:
        if ctx.session is not None:
            self.sessions.drop(ctx.session.key)
            ctx.logout = True

    def cookie_header(self, key: str) -> str:
        """The ``Set-Cookie`` value that hands session ``key`` to the client."""
        secure = "; Secure" if self.secure_cookie else ""
        return f'{COOKIE_NAME}="{key}"; Path=/; HttpOnly{secure}'

    def create_transfer(
        self, kind: str, vm: str, user: str, password: str, path: str, overwrite: bool, size: int
    ) -> str:
        """A one-shot URL for ``/guestFile`` (valid for ``_sessions.TRANSFER_SECONDS``; it dies
        with the calling session)."""
        ctx = self._current_context()
        owner = ctx.session.key if ctx is not None and ctx.session is not None else ""
        token = self.sessions.create_transfer(kind, vm, user, password, path, overwrite, size, owner)
        return f"{self._base_url()}/guestFile?id={next(self._transfer_ids)}&token={token}"
