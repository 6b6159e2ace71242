"""TaskManager and Task (the runner is ``soap/_tasks.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyVmomi import vim

from ._base import MOImpl, soap

if TYPE_CHECKING:
    from .._endpoint import Context

__all__ = ["TaskImpl", "TaskManagerImpl"]


class TaskManagerImpl(MOImpl):
    vim_type = vim.TaskManager

    def p_recentTask(self) -> list[Any]:  # noqa: N802
        return self.ep.tasks.recent()

    def p_maxCollector(self) -> int:  # noqa: N802
        return 0


class TaskImpl(MOImpl):
    vim_type = vim.Task

    def p_info(self) -> Any:
        return self.ep.tasks.info(self.moid)

    @soap
    def CancelTask(self, ctx: Context) -> None:  # noqa: N802
        self.ep.tasks.cancel(self.moid)


# --------------------------------------------------------------------------------------
# inventory
# --------------------------------------------------------------------------------------
