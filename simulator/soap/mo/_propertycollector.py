"""PropertyCollector and PropertyFilter (the engine is ``soap/_collector.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyVmomi import vmodl

from .. import _collector
from ._base import MOImpl, soap

if TYPE_CHECKING:
    from .._endpoint import Context

__all__ = ["PropertyCollectorImpl", "PropertyFilterImpl"]


class PropertyCollectorImpl(MOImpl):
    vim_type = vmodl.query.PropertyCollector

    def _coll(self, ctx: Context) -> _collector.Collector:
        return ctx.sess.collector(self.moid)

    def p_filter(self) -> list[Any]:
        ctx = self.ep.current_context()
        if not ctx or not ctx.session:
            return []
        return [vmodl.query.PropertyCollector.Filter(f) for f in self._coll(ctx).filters]

    @soap
    def RetrievePropertiesEx(self, ctx: Context, specSet: list[Any], options: Any = None) -> Any:  # noqa: N802, N803
        return _collector.retrieve_ex(self.ep, ctx.sess, specSet, options)

    @soap
    def ContinueRetrievePropertiesEx(self, ctx: Context, token: str) -> Any:  # noqa: N802
        return _collector.continue_retrieve(ctx.sess, token)

    @soap
    def CancelRetrievePropertiesEx(self, ctx: Context, token: str) -> None:  # noqa: N802
        _collector.cancel_retrieve(ctx.sess, token)

    @soap
    def RetrieveProperties(self, ctx: Context, specSet: list[Any]) -> list[Any]:  # noqa: N802, N803
        """Also what pyVmomi's ``RetrieveContents`` sends."""
        return _collector.retrieve(self.ep, specSet)

    @soap
    def CreateFilter(self, ctx: Context, spec: Any, partialUpdates: bool) -> Any:  # noqa: N802, N803
        return _collector.create_filter(self.ep, ctx.sess, self._coll(ctx), spec, partialUpdates)

    @soap
    def WaitForUpdatesEx(self, ctx: Context, version: str | None = None, options: Any = None) -> Any:  # noqa: N802
        wait = options.maxWaitSeconds if options is not None else None
        return _collector.wait_for_updates(self.ep, ctx, self._coll(ctx), version, wait)

    @soap
    def WaitForUpdates(self, ctx: Context, version: str | None = None) -> Any:  # noqa: N802
        return _collector.wait_for_updates(self.ep, ctx, self._coll(ctx), version, None)

    @soap
    def CheckForUpdates(self, ctx: Context, version: str | None = None) -> Any:  # noqa: N802
        return _collector.wait_for_updates(self.ep, ctx, self._coll(ctx), version, 0)

    @soap
    def CancelWaitForUpdates(self, ctx: Context) -> None:  # noqa: N802
        _collector.cancel_wait(self.ep, self._coll(ctx))

    @soap
    def CreatePropertyCollector(self, ctx: Context) -> Any:  # noqa: N802
        return self.ep.scoped.create_collector(ctx.sess)

    @soap
    def DestroyPropertyCollector(self, ctx: Context) -> None:  # noqa: N802
        self.ep.scoped.destroy_collector(ctx.sess, self.moid)


class PropertyFilterImpl(MOImpl):
    vim_type = vmodl.query.PropertyCollector.Filter

    def _filter(self) -> Any:
        return self.ep.scoped.find_filter(self.moid)

    def p_spec(self) -> Any:
        return self._filter().spec

    def p_partialUpdates(self) -> bool:  # noqa: N802
        return bool(self._filter().partial)

    @soap
    def DestroyPropertyFilter(self, ctx: Context) -> None:  # noqa: N802
        _collector.destroy_filter(self.ep, self.moid)
