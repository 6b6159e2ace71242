"""Guest operations: GuestOperationsManager, GuestFileManager and GuestProcessManager."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pyVmomi import vim, vmodl

from . import _vmprops
from ._base import MOIDS, MOImpl, soap
from ._guestops import GuestOperations
from ._virtualmachine import VirtualMachineImpl

if TYPE_CHECKING:
    from .._endpoint import Context

__all__ = ["GuestFileManagerImpl", "GuestOperationsManagerImpl", "GuestProcessManagerImpl"]


class GuestOperationsManagerImpl(MOImpl):
    vim_type = vim.vm.guest.GuestOperationsManager

    def p_fileManager(self) -> Any:  # noqa: N802
        return vim.vm.guest.FileManager(MOIDS["guestfiles"])

    def p_processManager(self) -> Any:  # noqa: N802
        return vim.vm.guest.ProcessManager(MOIDS["guestprocs"])


class _GuestImpl(MOImpl):
    """Shared checks of the guest file and process managers."""

    def _target(self, vm: Any, auth: Any) -> tuple[GuestOperations, str, str, str]:
        be = self.ep.guest
        impl = self.ep.registry.require(vm)
        if not isinstance(impl, VirtualMachineImpl):
            raise vmodl.fault.InvalidArgument(msg="vm: expected a VirtualMachine", invalidProperty="vm")
        if not isinstance(auth, vim.vm.guest.NamePasswordAuthentication):
            raise vmodl.fault.NotSupported(msg="Only name and password authentication is supported.")
        self.ep.changed.notify_all()  # guest changes show in property updates
        return be, impl.moid, auth.username or "", auth.password or ""

    def _os(self, moid: str) -> str:
        return str(self.ep.inventory.host_vm(moid).os_family)

    def _attributes(self, moid: str, f: Any) -> Any:
        mtime = _vmprops.ts(f.modification_time)
        if self._os(moid) == "windows":
            return vim.vm.guest.FileManager.WindowsFileAttributes(
                modificationTime=mtime, accessTime=mtime, createTime=mtime, hidden=False, readOnly=False
            )
        return vim.vm.guest.FileManager.PosixFileAttributes(
            modificationTime=mtime,
            accessTime=mtime,
            ownerId=0,
            groupId=0,
            permissions=0o755 if f.type == "directory" else 0o644,
        )


class GuestFileManagerImpl(_GuestImpl):
    vim_type = vim.vm.guest.FileManager
    #: entries per ListFilesInGuest answer when ``maxResults`` is not given
    default_page = 50

    @soap
    def ListFilesInGuest(  # noqa: N802
        self, ctx: Context, vm: Any, auth: Any, filePath: str, index: int | None = None,  # noqa: N803
        maxResults: int | None = None, matchPattern: str | None = None,  # noqa: N803
    ) -> Any:
        be, moid, user, password = self._target(vm, auth)
        try:
            pattern = re.compile(matchPattern or ".*")
        except re.error as exc:
            raise vmodl.fault.InvalidArgument(msg=f"matchPattern: {exc}", invalidProperty="matchPattern") from None
        entries = [f for f in be.guest_list_files(moid, user, password, filePath) if pattern.fullmatch(f.path)]
        start = max(0, index or 0)
        size = maxResults if maxResults and maxResults > 0 else self.default_page
        page = entries[start : start + size]
        return vim.vm.guest.FileManager.ListFileInfo(
            files=[
                vim.vm.guest.FileManager.FileInfo(
                    path=f.path, type=f.type, size=f.size, attributes=self._attributes(moid, f)
                )
                for f in page
            ],
            remaining=max(0, len(entries) - start - len(page)),
        )

    @soap
    def MakeDirectoryInGuest(  # noqa: N802
        self, ctx: Context, vm: Any, auth: Any, directoryPath: str, createParentDirectories: bool  # noqa: N803
    ) -> None:
        be, moid, user, password = self._target(vm, auth)
        be.guest_make_directory(moid, user, password, directoryPath, bool(createParentDirectories))

    @soap
    def DeleteFileInGuest(self, ctx: Context, vm: Any, auth: Any, filePath: str) -> None:  # noqa: N802, N803
        be, moid, user, password = self._target(vm, auth)
        be.guest_delete_file(moid, user, password, filePath)

    @soap
    def DeleteDirectoryInGuest(  # noqa: N802
        self, ctx: Context, vm: Any, auth: Any, directoryPath: str, recursive: bool  # noqa: N803
    ) -> None:
        be, moid, user, password = self._target(vm, auth)
        be.guest_delete_directory(moid, user, password, directoryPath, bool(recursive))

    @soap
    def InitiateFileTransferToGuest(  # noqa: N802
        self, ctx: Context, vm: Any, auth: Any, guestFilePath: str, fileAttributes: Any,  # noqa: N803
        fileSize: int, overwrite: bool,  # noqa: N803
    ) -> str:
        be, moid, user, password = self._target(vm, auth)
        # the guest checks the credentials when the transfer is set up (InvalidGuestLogin), not
        # only at the PUT: listing processes is the side-effect-free check of them
        be.guest_list_processes(moid, user, password, [])
        return self.ep.auth.create_transfer("to", moid, user, password, guestFilePath, bool(overwrite), fileSize)

    @soap
    def InitiateFileTransferFromGuest(self, ctx: Context, vm: Any, auth: Any, guestFilePath: str) -> Any:  # noqa: N802, N803
        be, moid, user, password = self._target(vm, auth)
        found = be.guest_list_files(moid, user, password, guestFilePath)
        if len(found) != 1 or found[0].type != "file":
            raise vim.fault.NotAFile(msg=f"{guestFilePath} is not a file", file=guestFilePath)
        url = self.ep.auth.create_transfer("from", moid, user, password, guestFilePath, False, found[0].size)
        return vim.vm.guest.FileManager.FileTransferInformation(
            attributes=self._attributes(moid, found[0]), size=found[0].size, url=url
        )


class GuestProcessManagerImpl(_GuestImpl):
    vim_type = vim.vm.guest.ProcessManager

    @soap
    def StartProgramInGuest(self, ctx: Context, vm: Any, auth: Any, spec: Any) -> int:  # noqa: N802
        be, moid, user, password = self._target(vm, auth)
        if not spec.programPath:
            raise vmodl.fault.InvalidArgument(msg="spec.programPath is required", invalidProperty="programPath")
        return be.guest_start_program(
            moid, user, password, spec.programPath, spec.arguments or "", spec.workingDirectory
        )

    @soap
    def ListProcessesInGuest(self, ctx: Context, vm: Any, auth: Any, pids: list[int] | None = None) -> list[Any]:  # noqa: N802
        be, moid, user, password = self._target(vm, auth)
        return [
            vim.vm.guest.ProcessManager.ProcessInfo(
                name=p.name,
                pid=p.pid,
                owner=p.owner,
                cmdLine=p.cmd_line,
                startTime=_vmprops.ts(p.start_time),
                endTime=_vmprops.ts(p.end_time) if p.end_time is not None else None,
                exitCode=p.exit_code,
            )
            for p in be.guest_list_processes(moid, user, password, list(pids or []))
        ]
