"""ViewManager and ContainerView."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyVmomi import VmomiSupport, vim, vmodl

from ._base import ManagedEntityImpl, MOImpl, soap

if TYPE_CHECKING:
    from .._endpoint import Context

__all__ = ["ContainerViewImpl", "ViewManagerImpl"]


class ViewManagerImpl(MOImpl):
    vim_type = vim.view.ViewManager

    def p_viewList(self) -> list[Any]:  # noqa: N802
        ctx = self.ep.current_context()
        if not ctx or not ctx.session:
            return []
        return [vim.view.ContainerView(v) for v in ctx.session.views]

    @soap
    def CreateContainerView(  # noqa: N802
        self, ctx: Context, container: Any, type: list[Any] | None = None, recursive: bool = False
    ) -> Any:
        target = self.ep.registry.lookup(container)
        if target is None:
            raise vmodl.fault.ManagedObjectNotFound(
                msg=f"The object '{container._moId}' has already been deleted or has not been completely created",
                obj=container,
            )
        return self.ep.scoped.create_view(ctx.sess, container, list(type or []), bool(recursive))


class ContainerViewImpl(MOImpl):
    vim_type = vim.view.ContainerView

    def _view(self) -> Any:
        return self.ep.scoped.find_view(self.moid)

    def p_container(self) -> Any:
        return self._view().container

    def p_type(self) -> list[str]:
        return [VmomiSupport.GetWsdlName(t) for t in self._view().types]

    def p_recursive(self) -> bool:
        return bool(self._view().recursive)

    def p_view(self) -> list[Any]:
        v = self._view()
        root = self.ep.registry.lookup(v.container)
        if root is None:
            return []
        found: list[Any] = []
        seen: set[str] = set()
        # depth first with a stack of child iterators, not a closure that calls itself: such a
        # closure is a reference cycle that kept ``found`` alive until the cyclic collector ran
        stack = [iter(root.children())] if isinstance(root, ManagedEntityImpl) else []
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                continue
            if child._moId in seen:
                continue
            seen.add(child._moId)
            cimpl = self.ep.registry.lookup(child)
            if cimpl is None:
                continue
            if not v.types or any(issubclass(cimpl.vim_type, t) for t in v.types):
                found.append(child)
            if v.recursive and isinstance(cimpl, ManagedEntityImpl):
                stack.append(iter(cimpl.children()))
        return found

    @soap
    def DestroyView(self, ctx: Context) -> None:  # noqa: N802
        self.ep.scoped.destroy_view(self.moid)
