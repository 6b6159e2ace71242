"""SessionManager: login, logout, session clones and tickets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from ._base import MOImpl, soap

if TYPE_CHECKING:
    from .._endpoint import Context

__all__ = ["SessionManagerImpl"]


class SessionManagerImpl(MOImpl):
    vim_type = vim.SessionManager

    def p_currentSession(self) -> Any:  # noqa: N802
        ctx = self.ep.current_context()
        return ctx.session.user_session() if ctx and ctx.session else None

    def p_sessionList(self) -> list[Any]:  # noqa: N802
        return [s.user_session() for s in self.ep.sessions.values()]

    def p_defaultLocale(self) -> str:  # noqa: N802
        return "en"

    def p_messageLocaleList(self) -> list[str]:  # noqa: N802
        return ["en"]

    def p_supportedLocaleList(self) -> list[str]:  # noqa: N802
        return ["en"]

    @soap
    def Login(self, ctx: Context, userName: str, password: str, locale: str | None = None) -> Any:  # noqa: N802, N803
        return self.ep.auth.login(ctx, userName, password, locale)

    @soap
    def Logout(self, ctx: Context) -> None:  # noqa: N802
        self.ep.auth.logout(ctx)

    @soap
    def AcquireCloneTicket(self, ctx: Context) -> str:  # noqa: N802
        return self.ep.auth.acquire_clone_ticket(ctx)

    @soap
    def CloneSession(self, ctx: Context, cloneTicket: str) -> Any:  # noqa: N802, N803
        return self.ep.auth.clone_session(ctx, cloneTicket)

    @soap
    def TerminateSession(self, ctx: Context, sessionId: list[str]) -> None:  # noqa: N802, N803
        unknown = [k for k in sessionId if k not in self.ep.sessions]
        if unknown:
            raise vim.fault.NotFound(msg=f"No session with key {unknown[0]!r}.")
        if ctx.sess.key in sessionId:
            raise vmodl.fault.InvalidArgument(
                msg="A session cannot terminate itself; use Logout.", invalidProperty="sessionId"
            )
        for key in sessionId:
            self.ep.sessions.drop(key)

    @soap
    def SetLocale(self, ctx: Context, locale: str) -> None:  # noqa: N802
        ctx.sess.locale = locale

    @soap
    def SessionIsActive(self, ctx: Context, sessionID: str, userName: str) -> bool:  # noqa: N802, N803
        s = self.ep.sessions.get(sessionID)
        return bool(s and s.user == userName)
