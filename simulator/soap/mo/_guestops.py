"""Guest operations on the ``Host``'s guests (``GuestFileManager``, ``GuestProcessManager``).

The VM must be powered on with VMware Tools running, and the credentials must be one of
``credentials`` (default ``Administrator``/``vmware`` and ``root``/``vmware``). Files are the
guest's own file system on its virtual disks, so a script a product installs this way is the
script VMware Tools runs when quiescing. Programs are not executed: a program that is a guest
file is read by the Tools script interpreter (``simulator/tools/_script.py``: ``exit N``,
``sleep S``, ``echo text >> file``), also when it is started through ``cmd.exe /c`` or
``/bin/sh``; it ends at once (its ``sleep``s pass on the virtual clock) and
``ListProcessesInGuest`` reports its exit code. Faults are a real host's: ``InvalidPowerState``,
``GuestOperationsUnavailable``, ``InvalidGuestLogin``, ``FileNotFound``, ``FileAlreadyExists``,
``NotAFile``, ``NotADirectory``, ``DirectoryNotEmpty``.
"""

from __future__ import annotations

import hmac
import itertools
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..._errors import NotFoundError, StateError
from ..._faults import make_fault

if TYPE_CHECKING:
    from ..._host import Host
    from ..._vm import VM

__all__ = ["DEFAULT_GUEST_CREDENTIALS", "GuestFile", "GuestOperations", "GuestProcess"]

#: Guest accounts the simulated guests accept (user -> password).
DEFAULT_GUEST_CREDENTIALS: dict[str, str] = {"Administrator": "vmware", "root": "vmware"}


@dataclass(frozen=True, slots=True)
class GuestFile:
    path: str
    type: Literal["file", "directory", "symlink"]
    size: int
    modification_time: float


@dataclass(frozen=True, slots=True)
class GuestProcess:
    pid: int
    name: str
    owner: str
    cmd_line: str
    start_time: float
    end_time: float | None = None
    exit_code: int | None = None


class GuestOperations:
    """The guests of one ``Host``, with the processes they ran (the last 256 per VM)."""

    def __init__(self, host: Host, credentials: Mapping[str, str] | None = None) -> None:
        self.host = host
        self.guest_credentials = dict(DEFAULT_GUEST_CREDENTIALS if credentials is None else credentials)
        self.processes: dict[str, dict[int, GuestProcess]] = {}
        self._pids = itertools.count(4096)

    def _vm(self, moref: str) -> VM:
        vm = self.host.vms.get(moref)
        if vm is None:
            raise NotFoundError("VM", moref, known=list(self.host.vms))
        return vm

    def _guest(self, moref: str, user: str, password: str) -> tuple[VM, Any]:
        vm = self._vm(moref)
        if vm.power_state != "poweredOn":
            raise make_fault(
                "InvalidPowerState", state=vm.power_state, requestedState="poweredOn", existingState=vm.power_state
            )
        if vm.tools is None or vm.tools.state != "running":
            raise make_fault(
                "GuestOperationsUnavailable", "The guest operations agent could not be contacted."
            )
        expected = self.guest_credentials.get(user)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            raise make_fault(
                "InvalidGuestLogin",
                "Failed to authenticate with the guest operating system using the supplied credentials.",
            )
        try:
            fs = self.host.guest_fs(vm)
        except StateError as exc:
            raise make_fault("GuestOperationsUnavailable", str(exc)) from None
        return vm, fs

    @staticmethod
    def _parent(fs: Any, path: str) -> str:
        norm = fs.normpath(path)
        sep = "\\" if fs.os_family == "windows" else "/"
        head = norm.rstrip(sep).rsplit(sep, 1)[0]
        if fs.os_family == "windows" and len(head) == 2 and head.endswith(":"):
            return head + sep
        return head or sep

    def _entry(self, fs: Any, path: str, name: str) -> GuestFile:
        st = fs.stat(path)
        return GuestFile(name, "directory" if st.is_dir else "file", 0 if st.is_dir else st.size, st.mtime)

    def guest_list_files(self, vm: str, user: str, password: str, path: str) -> list[GuestFile]:
        _, fs = self._guest(vm, user, password)
        if not fs.exists(path):
            raise make_fault("FileNotFound", "File {file} was not found", file=path)
        if not fs.is_dir(path):
            return [self._entry(fs, path, fs.realpath(path))]
        sep = "\\" if fs.os_family == "windows" else "/"
        base = fs.normpath(path).rstrip(sep) + sep
        return [self._entry(fs, base + name, name) for name in sorted(fs.listdir(path), key=str.casefold)]

    def guest_make_directory(self, vm: str, user: str, password: str, path: str, create_parents: bool) -> None:
        _, fs = self._guest(vm, user, password)
        if fs.exists(path):
            raise make_fault("FileAlreadyExists", "File {file} already exists", file=path)
        parent = self._parent(fs, path)
        if not create_parents and not fs.is_dir(parent):
            raise make_fault("FileNotFound", "File {file} was not found", file=parent)
        fs.mkdir(path, parents=create_parents, exist_ok=False)

    def guest_delete_file(self, vm: str, user: str, password: str, path: str) -> None:
        _, fs = self._guest(vm, user, password)
        if not fs.exists(path):
            raise make_fault("FileNotFound", "File {file} was not found", file=path)
        if fs.is_dir(path):
            raise make_fault("NotAFile", "{file} is not a file", file=path)
        fs.delete(path)

    def guest_delete_directory(self, vm: str, user: str, password: str, path: str, recursive: bool) -> None:
        _, fs = self._guest(vm, user, password)
        if not fs.exists(path):
            raise make_fault("FileNotFound", "File {file} was not found", file=path)
        if not fs.is_dir(path):
            raise make_fault("NotADirectory", "{file} is not a directory", file=path)
        if fs.listdir(path) and not recursive:
            raise make_fault("DirectoryNotEmpty", "Directory {file} is not empty", file=path)
        fs.delete(path, recursive=recursive)

    def guest_read_file(self, vm: str, user: str, password: str, path: str) -> bytes:
        _, fs = self._guest(vm, user, password)
        if not fs.exists(path):
            raise make_fault("FileNotFound", "File {file} was not found", file=path)
        if fs.is_dir(path):
            raise make_fault("NotAFile", "{file} is not a file", file=path)
        return bytes(fs.read_bytes(path))

    def guest_write_file(
        self, vm: str, user: str, password: str, path: str, data: bytes, overwrite: bool
    ) -> None:
        _, fs = self._guest(vm, user, password)
        if fs.exists(path):
            if fs.is_dir(path):
                raise make_fault("NotAFile", "{file} is not a file", file=path)
            if not overwrite:
                raise make_fault("FileAlreadyExists", "File {file} already exists", file=path)
        parent = self._parent(fs, path)
        if not fs.is_dir(parent):
            raise make_fault("FileNotFound", "File {file} was not found", file=parent)
        existed = fs.exists(path)
        fs.write_bytes(path, data)
        # host truth for the kit (RST-FILES-EXACT): a file put into the guest, and whether it
        # replaced one, whatever the product reports
        self.host.trace.emit("host", "guest.file.put", vm=vm, path=path, size=len(data), existed=existed)

    def guest_start_program(
        self, vm: str, user: str, password: str, program: str, arguments: str, cwd: str | None
    ) -> int:
        from ...tools._programs import find_program, run_program

        v, fs = self._guest(vm, user, password)
        windows = fs.os_family == "windows"
        try:
            args = shlex.split(arguments or "", posix=not windows)
        except ValueError as exc:
            raise make_fault("InvalidArgument", f"arguments: {exc}", invalidProperty="arguments") from None
        if windows:
            args = [a.strip('"') for a in args]
        name = program.replace("\\", "/").rsplit("/", 1)[-1]
        # the guest's own programs (sh, echo, cmd.exe, ...) exist and run; a guest file runs
        # as a script (simulator/tools/_programs.py)
        found = find_program(program, fs)
        if found is None:
            raise make_fault("FileNotFound", "File {file} was not found", file=program)
        start = self.host.clock.now
        outcome = run_program(found, args, fs)
        self.host.clock.advance(outcome.duration)
        pid = next(self._pids)
        table = self.processes.setdefault(v.moref, {})
        while len(table) >= 256:  # a guest remembers recently ended processes only
            del table[next(iter(table))]
        table[pid] = GuestProcess(
            pid=pid,
            name=name,
            owner=user,
            cmd_line=f'"{program}" {arguments}'.strip() if arguments else f'"{program}"',
            start_time=start,
            end_time=self.host.clock.now,
            exit_code=outcome.exit_code if outcome.exit_code is not None else 1,
        )
        return pid

    def guest_list_processes(
        self, vm: str, user: str, password: str, pids: Sequence[int]
    ) -> list[GuestProcess]:
        v, _ = self._guest(vm, user, password)
        table = self.processes.get(v.moref, {})
        if pids:
            return [table[p] for p in pids if p in table]
        return list(table.values())
