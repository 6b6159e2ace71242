"""ServiceInstance: the root object and its content."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyVmomi import vim

from . import _vmprops
from ._base import MOImpl, soap

if TYPE_CHECKING:
    from .._endpoint import Context

__all__ = ["ServiceInstanceImpl"]


class ServiceInstanceImpl(MOImpl):
    vim_type = vim.ServiceInstance

    def p_content(self) -> Any:
        return self.ep.registry.service_content()

    def p_serverClock(self) -> Any:  # noqa: N802
        return _vmprops.ts(self.ep.now())

    def p_capability(self) -> Any:
        return vim.Capability(
            provisioningSupported=False,
            multiHostSupported=False,
            userShellAccessSupported=False,
            supportedEVCMode=[],
            networkBackupAndRestoreSupported=False,
        )

    @soap
    def RetrieveServiceContent(self, ctx: Context) -> Any:  # noqa: N802
        return self.ep.registry.service_content()

    @soap
    def CurrentTime(self, ctx: Context) -> Any:  # noqa: N802
        return _vmprops.ts(self.ep.now())
