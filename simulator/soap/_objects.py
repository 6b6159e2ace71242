"""Managed objects of the simulated ESX host: properties (``p_<name>``) and methods.

Each class implements one vSphere managed type. A property is a method ``p_<name>`` that
returns a pyVmomi value (or ``None`` when unset); a SOAP method is a method named exactly as
its WSDL operation (``CreateSnapshot_Task``) marked with ``@soap``; its keyword arguments are
the WSDL parameter names. ``docs/vsphere-coverage.md`` is generated from these marks.

Objects are cheap views: they hold the endpoint and a managed object id and ask the endpoint
(and through it the backend) for current state on every read.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pyVmomi import VmomiSupport, vim, vmodl

from . import _collector, _vmprops
from ._backend import GuestBackend, SnapshotInfo, VMInfo

if TYPE_CHECKING:
    from ._endpoint import Context, Endpoint

__all__ = ["MOImpl", "soap", "STATIC_TYPES", "MOIDS"]

F = TypeVar("F", bound=Callable[..., Any])
_SNAPSHOT: Any = vim.vm.Snapshot  # its task methods are not in the type stubs


def soap(fn: F) -> F:
    """Mark a method as the implementation of the SOAP operation of the same name."""
    fn._soap = True  # type: ignore[attr-defined]
    return fn


#: Managed object ids of the fixed inventory, as a standalone ESX host names them.
MOIDS = {
    "si": "ServiceInstance",
    "session": "ha-sessionmgr",
    "pc": "ha-property-collector",
    "views": "ViewManager",
    "search": "ha-searchindex",
    "taskmgr": "ha-taskmgr",
    "root": "ha-folder-root",
    "dc": "ha-datacenter",
    "vmfolder": "ha-folder-vm",
    "hostfolder": "ha-folder-host",
    "dsfolder": "ha-folder-datastore",
    "netfolder": "ha-folder-network",
    "compute": "ha-compute-res",
    "host": "ha-host",
    "pool": "ha-root-pool",
    "browser": "ha-host-datastorebrowser",
    "guestops": "ha-guest-operations-manager",
    "guestfiles": "ha-guest-operations-file-manager",
    "guestprocs": "ha-guest-operations-process-manager",
}


def _typed(value: Any, declared: Any) -> Any:
    """Plain lists become typed arrays (an ``anyType`` value must carry its array type)."""
    if isinstance(value, list) and not isinstance(value, VmomiSupport.Array):
        if isinstance(declared, type) and issubclass(declared, list):
            return declared(value)
    return value


class MOImpl:
    vim_type: ClassVar[Any] = VmomiSupport.ManagedObject

    def __init__(self, ep: Endpoint, moid: str) -> None:
        self.ep = ep
        self.moid = moid
        # an implementation object lives for one call (under the endpoint lock): values read
        # for several paths of one object (config.name, config.uuid) are built once
        self._memo: dict[str, Any] = {}

    @property
    def ref(self) -> Any:
        return self.vim_type(self.moid)

    @classmethod
    def property_names(cls, version: str | None = None) -> list[str]:
        """Properties of the vSphere type that this class implements (those that exist in API
        ``version``, when given: a host answers an older client with that version's properties
        only, whose types the client knows)."""
        valid = {
            p.name for p in cls.vim_type._GetPropertyList()
            if version is None or VmomiSupport.IsChildVersion(version, p.version)
        }
        return [n[2:] for n in dir(cls) if n.startswith("p_") and n[2:] in valid]

    @classmethod
    def soap_methods(cls) -> list[str]:
        return sorted(n for n in dir(cls) if getattr(getattr(cls, n, None), "_soap", False))

    def get(self, name: str) -> Any:
        """A top-level property, typed; ``None`` when unset; ``InvalidProperty`` if unknown."""
        try:
            self.vim_type._GetPropertyInfo(name)  # InvalidProperty for a name the type lacks
        except AttributeError:
            raise vmodl.query.InvalidProperty(msg=f"invalid property {name!r}", name=name) from None
        if name in self._memo:
            return self._memo[name]
        getter = getattr(self, "p_" + name, None)
        value = None if getter is None else _typed(getter(), _collector.declared_type(self.vim_type, name))
        self._memo[name] = value
        return value


class ManagedEntityImpl(MOImpl):
    vim_type = vim.ManagedEntity
    entity_name: str = ""
    parent_id: str | None = None
    parent_type: Any = vim.Folder

    def p_name(self) -> str:
        return self.entity_name

    def p_parent(self) -> Any:
        return self.parent_type(self.parent_id) if self.parent_id else None

    def p_overallStatus(self) -> str:  # noqa: N802
        return "green"

    def p_configStatus(self) -> str:  # noqa: N802
        return "green"

    def p_alarmActionsEnabled(self) -> bool:  # noqa: N802
        return True

    def p_declaredAlarmState(self) -> list[Any]:  # noqa: N802
        return []

    def p_triggeredAlarmState(self) -> list[Any]:  # noqa: N802
        return []

    def p_disabledMethod(self) -> list[Any]:  # noqa: N802
        return []

    def p_customValue(self) -> list[Any]:  # noqa: N802
        return []

    def p_tag(self) -> list[Any]:
        return []

    def p_recentTask(self) -> list[Any]:  # noqa: N802
        return self.ep.tasks.recent(entity=self.moid)

    def children(self) -> list[Any]:
        """Children in the inventory (for container views and inventory paths)."""
        return []


# --------------------------------------------------------------------------------------
# service objects
# --------------------------------------------------------------------------------------


class ServiceInstanceImpl(MOImpl):
    vim_type = vim.ServiceInstance

    def p_content(self) -> Any:
        return self.ep.service_content()

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
        return self.ep.service_content()

    @soap
    def CurrentTime(self, ctx: Context) -> Any:  # noqa: N802
        return _vmprops.ts(self.ep.now())


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
        return self.ep.login(ctx, userName, password, locale)

    @soap
    def Logout(self, ctx: Context) -> None:  # noqa: N802
        self.ep.logout(ctx)

    @soap
    def AcquireCloneTicket(self, ctx: Context) -> str:  # noqa: N802
        return self.ep.acquire_clone_ticket(ctx)

    @soap
    def CloneSession(self, ctx: Context, cloneTicket: str) -> Any:  # noqa: N802, N803
        return self.ep.clone_session(ctx, cloneTicket)

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
            self.ep.drop_session(key)

    @soap
    def SetLocale(self, ctx: Context, locale: str) -> None:  # noqa: N802
        ctx.sess.locale = locale

    @soap
    def SessionIsActive(self, ctx: Context, sessionID: str, userName: str) -> bool:  # noqa: N802, N803
        s = self.ep.sessions.get(sessionID)
        return bool(s and s.user == userName)


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
        return self.ep.create_collector(ctx)

    @soap
    def DestroyPropertyCollector(self, ctx: Context) -> None:  # noqa: N802
        self.ep.destroy_collector(ctx, self.moid)


class PropertyFilterImpl(MOImpl):
    vim_type = vmodl.query.PropertyCollector.Filter

    def _filter(self) -> Any:
        return self.ep.find_filter(self.moid)

    def p_spec(self) -> Any:
        return self._filter().spec

    def p_partialUpdates(self) -> bool:  # noqa: N802
        return bool(self._filter().partial)

    @soap
    def DestroyPropertyFilter(self, ctx: Context) -> None:  # noqa: N802
        _collector.destroy_filter(self.ep, self.moid)


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
        target = self.ep.lookup(container)
        if target is None:
            raise vmodl.fault.ManagedObjectNotFound(
                msg=f"The object '{container._moId}' has already been deleted or has not been completely created",
                obj=container,
            )
        return self.ep.create_view(ctx, container, list(type or []), bool(recursive))


class ContainerViewImpl(MOImpl):
    vim_type = vim.view.ContainerView

    def _view(self) -> Any:
        return self.ep.find_view(self.moid)

    def p_container(self) -> Any:
        return self._view().container

    def p_type(self) -> list[str]:
        return [VmomiSupport.GetWsdlName(t) for t in self._view().types]

    def p_recursive(self) -> bool:
        return bool(self._view().recursive)

    def p_view(self) -> list[Any]:
        v = self._view()
        root = self.ep.lookup(v.container)
        if root is None:
            return []
        found: list[Any] = []
        seen: set[str] = set()

        def walk(impl: ManagedEntityImpl, depth: int) -> None:
            for child in impl.children():
                if child._moId in seen:
                    continue
                seen.add(child._moId)
                cimpl = self.ep.lookup(child)
                if cimpl is None:
                    continue
                if not v.types or any(issubclass(cimpl.vim_type, t) for t in v.types):
                    found.append(child)
                if v.recursive and isinstance(cimpl, ManagedEntityImpl):
                    walk(cimpl, depth + 1)

        if isinstance(root, ManagedEntityImpl):
            walk(root, 0)
        return found

    @soap
    def DestroyView(self, ctx: Context) -> None:  # noqa: N802
        self.ep.destroy_view(self.moid)


class SearchIndexImpl(MOImpl):
    vim_type = vim.SearchIndex

    def _vms(self) -> Sequence[VMInfo]:
        return self.ep.backend.vms()

    def _in_dc(self, datacenter: Any) -> None:
        if datacenter is not None and datacenter._moId != MOIDS["dc"]:
            raise vmodl.fault.ManagedObjectNotFound(
                msg=f"The object '{datacenter._moId}' has already been deleted or has not been completely created",
                obj=datacenter,
            )

    def _match_uuid(self, uuid: str, vm_search: bool | None, instance: bool | None) -> list[Any]:
        if vm_search is False:
            host_uuid = self.ep.about().instance_uuid
            return [vim.HostSystem(MOIDS["host"])] if host_uuid and host_uuid.lower() == uuid.lower() else []
        out = []
        for vm in self._vms():
            value = vm.instance_uuid if instance else vm.uuid
            if value.lower() == uuid.lower():
                out.append(vim.VirtualMachine(vm.moref))
        return out

    def _match(self, attr: str, value: str, vm_search: bool | None) -> list[Any]:
        if vm_search is False:
            about = self.ep.about()
            return [vim.HostSystem(MOIDS["host"])] if attr == "host_name" and about.host_name.lower() == value.lower() else []
        out = []
        for vm in self._vms():
            if not (vm.tools_running and vm.power_state == "poweredOn"):
                continue  # IP and DNS name are reported by VMware Tools only
            got = getattr(vm, attr)
            if got and got.lower() == value.lower():
                out.append(vim.VirtualMachine(vm.moref))
        return out

    @soap
    def FindByUuid(  # noqa: N802
        self, ctx: Context, uuid: str, vmSearch: bool, datacenter: Any = None, instanceUuid: bool | None = None  # noqa: N803
    ) -> Any:
        self._in_dc(datacenter)
        found = self._match_uuid(uuid, vmSearch, instanceUuid)
        return found[0] if found else None

    @soap
    def FindAllByUuid(  # noqa: N802
        self, ctx: Context, uuid: str, vmSearch: bool, datacenter: Any = None, instanceUuid: bool | None = None  # noqa: N803
    ) -> list[Any]:
        self._in_dc(datacenter)
        return self._match_uuid(uuid, vmSearch, instanceUuid)

    @soap
    def FindByIp(self, ctx: Context, ip: str, vmSearch: bool, datacenter: Any = None) -> Any:  # noqa: N802, N803
        self._in_dc(datacenter)
        found = self._match("ip_address", ip, vmSearch)
        return found[0] if found else None

    @soap
    def FindAllByIp(self, ctx: Context, ip: str, vmSearch: bool, datacenter: Any = None) -> list[Any]:  # noqa: N802, N803
        self._in_dc(datacenter)
        return self._match("ip_address", ip, vmSearch)

    @soap
    def FindByDnsName(self, ctx: Context, dnsName: str, vmSearch: bool, datacenter: Any = None) -> Any:  # noqa: N802, N803
        self._in_dc(datacenter)
        found = self._match("host_name", dnsName, vmSearch)
        return found[0] if found else None

    @soap
    def FindAllByDnsName(  # noqa: N802
        self, ctx: Context, dnsName: str, vmSearch: bool, datacenter: Any = None  # noqa: N803
    ) -> list[Any]:
        self._in_dc(datacenter)
        return self._match("host_name", dnsName, vmSearch)

    @soap
    def FindByInventoryPath(self, ctx: Context, inventoryPath: str) -> Any:  # noqa: N802, N803
        parts = [p for p in inventoryPath.strip("/").split("/") if p]
        current: Any = self.ep.lookup(vim.Folder(MOIDS["root"]))
        for part in parts:
            nxt = None
            for child in current.children() if isinstance(current, ManagedEntityImpl) else []:
                cimpl = self.ep.lookup(child)
                if isinstance(cimpl, ManagedEntityImpl) and cimpl.p_name() == part:
                    nxt = cimpl
                    break
            if nxt is None:
                return None
            current = nxt
        return current.ref if parts else None

    @soap
    def FindChild(self, ctx: Context, entity: Any, name: str) -> Any:  # noqa: N802
        impl = self.ep.require(entity)
        for child in impl.children() if isinstance(impl, ManagedEntityImpl) else []:
            cimpl = self.ep.lookup(child)
            if isinstance(cimpl, ManagedEntityImpl) and cimpl.p_name() == name:
                return child
        return None

    @soap
    def FindByDatastorePath(self, ctx: Context, datacenter: Any, path: str) -> Any:  # noqa: N802
        self._in_dc(datacenter)
        for vm in self._vms():
            if vm.vmx_path == path:
                return vim.VirtualMachine(vm.moref)
        return None


class GuestOperationsManagerImpl(MOImpl):
    vim_type = vim.vm.guest.GuestOperationsManager

    def p_fileManager(self) -> Any:  # noqa: N802
        return vim.vm.guest.FileManager(MOIDS["guestfiles"])

    def p_processManager(self) -> Any:  # noqa: N802
        return vim.vm.guest.ProcessManager(MOIDS["guestprocs"])


class _GuestImpl(MOImpl):
    """Shared checks of the guest file and process managers."""

    def _backend(self) -> GuestBackend:
        be = self.ep.backend
        if not isinstance(be, GuestBackend):
            raise vmodl.fault.NotSupported(msg="This host does not support guest operations.")
        return be

    def _target(self, vm: Any, auth: Any) -> tuple[GuestBackend, str, str, str]:
        be = self._backend()
        impl = self.ep.require(vm)
        if not isinstance(impl, VirtualMachineImpl):
            raise vmodl.fault.InvalidArgument(msg="vm: expected a VirtualMachine", invalidProperty="vm")
        if not isinstance(auth, vim.vm.guest.NamePasswordAuthentication):
            raise vmodl.fault.NotSupported(msg="Only name and password authentication is supported.")
        self.ep.changed.notify_all()  # guest changes show in property updates
        return be, impl.moid, auth.username or "", auth.password or ""

    def _os(self, moid: str) -> str:
        return self.ep.backend.vm(moid).os_family

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
        # only at the PUT: listing processes is the backend's side-effect-free check of them
        be.guest_list_processes(moid, user, password, [])
        return self.ep.create_transfer("to", moid, user, password, guestFilePath, bool(overwrite), fileSize)

    @soap
    def InitiateFileTransferFromGuest(self, ctx: Context, vm: Any, auth: Any, guestFilePath: str) -> Any:  # noqa: N802, N803
        be, moid, user, password = self._target(vm, auth)
        found = be.guest_list_files(moid, user, password, guestFilePath)
        if len(found) != 1 or found[0].type != "file":
            raise vim.fault.NotAFile(msg=f"{guestFilePath} is not a file", file=guestFilePath)
        url = self.ep.create_transfer("from", moid, user, password, guestFilePath, False, found[0].size)
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


class DatastoreBrowserImpl(MOImpl):
    """The host's datastore browser (``HostSystem.datastoreBrowser``, every ``Datastore.browser``)."""

    vim_type = vim.host.DatastoreBrowser
    _B: Any = vim.host.DatastoreBrowser

    def p_datastore(self) -> list[Any]:
        return list(self.ep.datastore_refs().values())

    def p_supportedType(self) -> list[Any]:  # noqa: N802
        return [self._B.FolderQuery(), self._B.Query()]

    def _parse(self, datastore_path: str) -> tuple[str, str]:
        m = re.fullmatch(r"\[([^\]]+)\]\s*(.*)", datastore_path or "")
        if m is None:
            raise vim.fault.InvalidDatastorePath(
                msg=f"Invalid datastore path '{datastore_path}'.", datastorePath=datastore_path or ""
            )
        name, folder = m.group(1), m.group(2).strip("/")
        if name not in self.ep.datastore_refs():
            raise vim.fault.InvalidDatastore(msg=f"Invalid datastore '{name}'.", name=name)
        return name, folder

    def _search(self, ds: str, folder: str, spec: Any, recursive: bool) -> list[Any]:
        files = list(self.ep.backend.datastore_file_list(ds))
        prefix = f"{folder}/" if folder else ""
        if folder and not any(p.startswith(prefix) for p, _ in files):
            raise vim.fault.FileNotFound(msg=f"File [{ds}] {folder} was not found", file=f"[{ds}] {folder}")
        patterns = list(spec.matchPattern or []) if spec is not None else []
        fold = bool(spec is not None and spec.searchCaseInsensitive)
        details = spec.details if spec is not None else None
        by_folder: dict[str, dict[str, int | None]] = {}
        for path, size in files:
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            parts = rest.split("/")
            for depth in range(len(parts)):
                here = "/".join([folder, *parts[:depth]] if folder else parts[:depth])
                if depth and not recursive:
                    break
                children = by_folder.setdefault(here, {})
                is_file = depth == len(parts) - 1
                children[parts[depth]] = size if is_file else None
        results = []
        now = _vmprops.ts(self.ep.now())
        ref = self.ep.datastore_ref(ds)
        for here in sorted(by_folder):
            entries = []
            for name, entry_size in by_folder[here].items():
                if patterns and not any(
                    fnmatch.fnmatchcase(name.lower() if fold else name, p.lower() if fold else p) for p in patterns
                ):
                    continue
                cls = self._B.FolderInfo if entry_size is None else self._B.FileInfo
                info = cls(path=name)
                if details is None or details.fileSize:
                    info.fileSize = entry_size or 0
                if details is not None and details.modification:
                    info.modification = now
                entries.append(info)
            if spec is not None and spec.sortFoldersFirst:
                entries.sort(key=lambda e: (not isinstance(e, self._B.FolderInfo), e.path))
            else:
                entries.sort(key=lambda e: e.path)
            results.append(self._B.SearchResults(datastore=ref, folderPath=f"[{ds}] {here}".rstrip(), file=entries))
        return results

    @soap
    def SearchDatastore_Task(self, ctx: Context, datastorePath: str, searchSpec: Any = None) -> Any:  # noqa: N802, N803
        ds, folder = self._parse(datastorePath)

        def run() -> Any:
            results = self._search(ds, folder, searchSpec, recursive=False)
            return results[0] if results else self._B.SearchResults(
                datastore=self.ep.datastore_ref(ds), folderPath=datastorePath, file=[]
            )

        return self.ep.tasks.submit_for(ctx, self._B.SearchDatastore_Task, self.ep.datastore_ref(ds), ds, run)

    @soap
    def SearchDatastoreSubFolders_Task(self, ctx: Context, datastorePath: str, searchSpec: Any = None) -> Any:  # noqa: N802, N803
        ds, folder = self._parse(datastorePath)

        def run() -> Any:
            return self._B.SearchResults.Array(self._search(ds, folder, searchSpec, recursive=True))

        return self.ep.tasks.submit_for(
            ctx, self._B.SearchDatastoreSubFolders_Task, self.ep.datastore_ref(ds), ds, run
        )


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


class FolderImpl(ManagedEntityImpl):
    vim_type = vim.Folder
    child_types: ClassVar[dict[str, list[str]]] = {
        MOIDS["root"]: ["Folder", "Datacenter"],
        MOIDS["vmfolder"]: ["Folder", "VirtualMachine", "VirtualApp"],
        MOIDS["hostfolder"]: ["Folder", "ComputeResource"],
        MOIDS["dsfolder"]: ["Folder", "Datastore"],
        MOIDS["netfolder"]: ["Folder", "Network"],
    }
    names: ClassVar[dict[str, tuple[str, str | None, Any]]] = {
        MOIDS["root"]: ("ha-folder-root", None, None),
        MOIDS["vmfolder"]: ("vm", MOIDS["dc"], vim.Datacenter),
        MOIDS["hostfolder"]: ("host", MOIDS["dc"], vim.Datacenter),
        MOIDS["dsfolder"]: ("datastore", MOIDS["dc"], vim.Datacenter),
        MOIDS["netfolder"]: ("network", MOIDS["dc"], vim.Datacenter),
    }

    def __init__(self, ep: Endpoint, moid: str) -> None:
        super().__init__(ep, moid)
        self.entity_name, self.parent_id, self.parent_type = self.names[moid]

    def p_childType(self) -> list[str]:  # noqa: N802
        return list(self.child_types[self.moid])

    def p_childEntity(self) -> list[Any]:  # noqa: N802
        return self.children()

    def children(self) -> list[Any]:
        if self.moid == MOIDS["root"]:
            return [vim.Datacenter(MOIDS["dc"])]
        if self.moid == MOIDS["vmfolder"]:
            return [vim.VirtualMachine(vm.moref) for vm in self.ep.backend.vms()]
        if self.moid == MOIDS["hostfolder"]:
            return [vim.ComputeResource(MOIDS["compute"])]
        if self.moid == MOIDS["dsfolder"]:
            return list(self.ep.datastore_refs().values())
        if self.moid == MOIDS["netfolder"]:
            return list(self.ep.network_refs().values())
        return []


class DatacenterImpl(ManagedEntityImpl):
    vim_type = vim.Datacenter
    entity_name = "ha-datacenter"
    parent_id = MOIDS["root"]

    def p_vmFolder(self) -> Any:  # noqa: N802
        return vim.Folder(MOIDS["vmfolder"])

    def p_hostFolder(self) -> Any:  # noqa: N802
        return vim.Folder(MOIDS["hostfolder"])

    def p_datastoreFolder(self) -> Any:  # noqa: N802
        return vim.Folder(MOIDS["dsfolder"])

    def p_networkFolder(self) -> Any:  # noqa: N802
        return vim.Folder(MOIDS["netfolder"])

    def p_datastore(self) -> list[Any]:
        return list(self.ep.datastore_refs().values())

    def p_network(self) -> list[Any]:
        return list(self.ep.network_refs().values())

    def children(self) -> list[Any]:
        return [vim.Folder(MOIDS[k]) for k in ("vmfolder", "hostfolder", "dsfolder", "netfolder")]


class ComputeResourceImpl(ManagedEntityImpl):
    vim_type = vim.ComputeResource
    parent_id = MOIDS["hostfolder"]

    def p_name(self) -> str:
        return self.ep.about().host_name

    def p_host(self) -> list[Any]:
        return [vim.HostSystem(MOIDS["host"])]

    def p_resourcePool(self) -> Any:  # noqa: N802
        return vim.ResourcePool(MOIDS["pool"])

    def p_datastore(self) -> list[Any]:
        return list(self.ep.datastore_refs().values())

    def p_network(self) -> list[Any]:
        return list(self.ep.network_refs().values())

    def p_summary(self) -> Any:
        return vim.ComputeResource.Summary(
            totalCpu=8000,
            totalMemory=32 * 1024**3,
            numCpuCores=4,
            numCpuThreads=8,
            effectiveCpu=8000,
            effectiveMemory=32 * 1024,
            numHosts=1,
            numEffectiveHosts=1,
            overallStatus="green",
        )

    def children(self) -> list[Any]:
        return [vim.HostSystem(MOIDS["host"]), vim.ResourcePool(MOIDS["pool"])]


class HostSystemImpl(ManagedEntityImpl):
    vim_type = vim.HostSystem
    parent_id = MOIDS["compute"]
    parent_type = vim.ComputeResource

    def p_name(self) -> str:
        return self.ep.about().host_name

    def p_vm(self) -> list[Any]:
        return [vim.VirtualMachine(vm.moref) for vm in self.ep.backend.vms()]

    def p_datastore(self) -> list[Any]:
        return list(self.ep.datastore_refs().values())

    def p_network(self) -> list[Any]:
        return list(self.ep.network_refs().values())

    def p_datastoreBrowser(self) -> Any:  # noqa: N802
        return vim.host.DatastoreBrowser(MOIDS["browser"])

    def p_runtime(self) -> Any:
        return vim.host.RuntimeInfo(
            connectionState="connected",
            powerState="poweredOn",
            inMaintenanceMode=False,
            standbyMode="none",
            bootTime=_vmprops.ts(self.ep.boot_time),
        )

    def p_summary(self) -> Any:
        about = self.ep.about_info()
        return vim.host.Summary(
            host=self.ref,
            runtime=self.p_runtime(),
            config=vim.host.Summary.ConfigSummary(
                name=self.ep.about().host_name,
                port=443,
                product=about,
                vmotionEnabled=False,
                faultToleranceEnabled=False,
            ),
            quickStats=vim.host.Summary.QuickStats(overallCpuUsage=0, overallMemoryUsage=0),
            overallStatus="green",
            rebootRequired=False,
            managementServerIp=None,
        )


class ResourcePoolImpl(ManagedEntityImpl):
    vim_type = vim.ResourcePool
    entity_name = "Resources"
    parent_id = MOIDS["compute"]
    parent_type = vim.ComputeResource

    def p_owner(self) -> Any:
        return vim.ComputeResource(MOIDS["compute"])

    def p_vm(self) -> list[Any]:
        return [vim.VirtualMachine(vm.moref) for vm in self.ep.backend.vms()]

    def p_resourcePool(self) -> list[Any]:  # noqa: N802
        return []

    def children(self) -> list[Any]:
        return self.p_vm()


class DatastoreImpl(ManagedEntityImpl):
    vim_type = vim.Datastore
    parent_id = MOIDS["dsfolder"]

    def _info(self) -> Any:
        return self.ep.datastore_info(self.moid)

    def p_name(self) -> str:
        return str(self._info().name)

    def _url(self) -> str:
        info = self._info()
        return info.url or f"/vmfs/volumes/{info.name}"

    def p_summary(self) -> Any:
        info = self._info()
        return vim.Datastore.Summary(
            datastore=self.ref,
            name=info.name,
            url=self._url(),
            capacity=info.capacity,
            freeSpace=info.free_space,
            uncommitted=0,
            accessible=True,
            multipleHostAccess=False,
            type=info.type,
            maintenanceMode="normal",
        )

    def p_info(self) -> Any:
        info = self._info()
        return vim.Datastore.Info(
            name=info.name,
            url=self._url(),
            freeSpace=info.free_space,
            maxFileSize=info.capacity,
            maxVirtualDiskCapacity=info.capacity,
            maxMemoryFileSize=info.capacity,
            timestamp=_vmprops.ts(self.ep.now()),
        )

    def p_host(self) -> list[Any]:
        return [
            vim.Datastore.HostMount(
                key=vim.HostSystem(MOIDS["host"]),
                mountInfo=vim.host.MountInfo(
                    path=self._url(), accessMode="readWrite", mounted=True, accessible=True
                ),
            )
        ]

    def p_browser(self) -> Any:
        return vim.host.DatastoreBrowser(MOIDS["browser"])

    def p_vm(self) -> list[Any]:
        name = self._info().name
        return [vim.VirtualMachine(vm.moref) for vm in self.ep.backend.vms() if name in vm.datastores]


class NetworkImpl(ManagedEntityImpl):
    """A port group of the host's standard switch (``VM Network``)."""

    vim_type = vim.Network
    parent_id = MOIDS["netfolder"]

    def p_name(self) -> str:
        return self.ep.network_name(self.moid)

    def p_summary(self) -> Any:
        return vim.Network.Summary(network=self.ref, name=self.p_name(), accessible=True, ipPoolName="")

    def p_host(self) -> list[Any]:
        return [vim.HostSystem(MOIDS["host"])]

    def p_vm(self) -> list[Any]:
        name = self.p_name()
        return [vim.VirtualMachine(vm.moref) for vm in self.ep.backend.vms() if any(n.network == name for n in vm.nics)]


class VirtualMachineImpl(ManagedEntityImpl):
    vim_type = vim.VirtualMachine
    parent_id = MOIDS["vmfolder"]

    def vm(self) -> VMInfo:
        info = self._memo.get("_vminfo")
        if info is None:
            info = self._memo["_vminfo"] = self.ep.backend.vm(self.moid)
        return info  # type: ignore[no-any-return]

    def p_name(self) -> str:
        return self.vm().name

    def p_config(self) -> Any:
        return _vmprops.build_config(self.vm(), ds_ref=self.ep.datastore_ref, net_ref=self.ep.network_ref)

    def p_runtime(self) -> Any:
        return _vmprops.build_runtime(self.vm(), vim.HostSystem(MOIDS["host"]))

    def p_guest(self) -> Any:
        return _vmprops.build_guest(self.vm())

    def p_guestHeartbeatStatus(self) -> str:  # noqa: N802
        vm = self.vm()
        return "green" if vm.tools_running and vm.power_state == "poweredOn" else "gray"

    def p_summary(self) -> Any:
        return _vmprops.build_summary(self.vm(), self.ref, vim.HostSystem(MOIDS["host"]), self.ep.now())

    def p_capability(self) -> Any:
        return _vmprops.build_capability(self.vm())

    def p_layout(self) -> Any:
        return _vmprops.build_layout(self.vm())

    def p_layoutEx(self) -> Any:  # noqa: N802
        return _vmprops.build_layout_ex(self.vm(), self.ep.now())

    def p_storage(self) -> Any:
        return _vmprops.build_storage(self.vm(), self.ep.datastore_refs(), self.ep.now())

    def p_snapshot(self) -> Any:
        return _vmprops.build_snapshot_info(self.vm(), self.ref, vim.vm.Snapshot)

    def p_rootSnapshot(self) -> list[Any]:  # noqa: N802
        return [vim.vm.Snapshot(s.moref) for s in self.vm().snapshots]

    def p_datastore(self) -> list[Any]:
        refs = self.ep.datastore_refs()
        return [refs[n] for n in self.vm().datastores if n in refs]

    def p_network(self) -> list[Any]:
        refs = self.ep.network_refs()
        return [refs[n.network] for n in self.vm().nics if n.network in refs]

    def p_resourcePool(self) -> Any:  # noqa: N802
        return vim.ResourcePool(MOIDS["pool"])

    # --- methods -----------------------------------------------------------------------
    def _task(self, ctx: Context, method: str, fn: Callable[[], Any]) -> Any:
        return self.ep.tasks.submit(ctx, getattr(vim.VirtualMachine, method), self.moid, fn)

    @soap
    def CreateSnapshot_Task(  # noqa: N802
        self, ctx: Context, name: str, description: str | None = None, memory: bool = False, quiesce: bool = False
    ) -> Any:
        be = self.ep.backend

        def run() -> Any:
            moref = be.create_snapshot(self.moid, name, description or "", bool(memory), bool(quiesce))
            self.ep.note_snapshot(moref, self.moid)
            return vim.vm.Snapshot(moref)

        return self._task(ctx, "CreateSnapshot_Task", run)

    @soap
    def RemoveAllSnapshots_Task(self, ctx: Context, consolidate: bool | None = None, spec: Any = None) -> Any:  # noqa: N802
        be = self.ep.backend

        def run() -> None:
            be.remove_all_snapshots(self.moid, consolidate=consolidate is not False)
            self.ep.forget_snapshots(self.moid)

        return self._task(ctx, "RemoveAllSnapshots_Task", run)

    @soap
    def RevertToCurrentSnapshot_Task(  # noqa: N802
        self, ctx: Context, host: Any = None, suppressPowerOn: bool | None = None  # noqa: N803
    ) -> Any:
        be = self.ep.backend
        current = self.vm().current_snapshot
        if current is None:
            raise vim.fault.NotFound(msg="The virtual machine has no current snapshot.")
        return self._task(
            ctx,
            "RevertToCurrentSnapshot_Task",
            lambda: be.revert_to_snapshot(self.moid, current, suppress_power_on=bool(suppressPowerOn)),
        )

    @soap
    def ConsolidateVMDisks_Task(self, ctx: Context) -> Any:  # noqa: N802
        be = self.ep.backend
        return self._task(ctx, "ConsolidateVMDisks_Task", lambda: be.consolidate_disks(self.moid))

    @soap
    def PowerOnVM_Task(self, ctx: Context, host: Any = None) -> Any:  # noqa: N802
        be = self.ep.backend
        return self._task(ctx, "PowerOnVM_Task", lambda: be.power_on(self.moid))

    @soap
    def PowerOffVM_Task(self, ctx: Context) -> Any:  # noqa: N802
        be = self.ep.backend
        return self._task(ctx, "PowerOffVM_Task", lambda: be.power_off(self.moid))

    @soap
    def ReconfigVM_Task(self, ctx: Context, spec: Any) -> Any:  # noqa: N802
        ignored = {"dynamicType", "dynamicProperty", "changeTrackingEnabled", "changeVersion"}
        other = [
            p.name
            for p in spec._GetPropertyList()
            if p.name not in ignored and getattr(spec, p.name) not in (None, [], "")
        ]
        if other:
            raise vmodl.fault.NotSupported(
                msg="vcbsim reconfigures changeTrackingEnabled only; also given: " + ", ".join(other)
            )
        if spec.changeTrackingEnabled and not self.vm().change_tracking_supported:
            raise vmodl.fault.NotSupported(msg="Changed block tracking is not supported by this host.")
        be = self.ep.backend
        cbt = spec.changeTrackingEnabled
        return self._task(ctx, "ReconfigVM_Task", lambda: be.reconfigure(self.moid, change_tracking=cbt))

    @soap
    def QueryChangedDiskAreas(  # noqa: N802
        self, ctx: Context, deviceKey: int, startOffset: int, changeId: str, snapshot: Any = None  # noqa: N803
    ) -> Any:
        snap_id = snapshot._moId if snapshot is not None else None
        if snap_id is not None:
            owner = self.ep.find_snapshot(snap_id)
            if owner is None or owner[0].moref != self.moid:
                raise vmodl.fault.ManagedObjectNotFound(
                    msg=f"The object '{snap_id}' has already been deleted or has not been completely created",
                    obj=snapshot,
                )
        res = self.ep.backend.query_changed_disk_areas(self.moid, snap_id, deviceKey, startOffset, changeId)
        return vim.VirtualMachine.DiskChangeInfo(
            startOffset=res.start_offset,
            length=res.length,
            changedArea=[
                vim.VirtualMachine.DiskChangeInfo.DiskChangeExtent(start=s, length=n) for s, n in res.areas
            ],
        )


class SnapshotImpl(MOImpl):
    vim_type = vim.vm.Snapshot

    def _owner_vm(self) -> str:
        """The moid of the VM holding this snapshot (cheaper than ``_owner``)."""
        vm = self.ep.snapshot_vm(self.moid)
        if vm is None:
            raise self.ep._not_found(self.ref)
        return vm

    def _owner(self) -> tuple[VMInfo, SnapshotInfo]:
        found = self.ep.find_snapshot(self.moid)
        if found is None:
            raise self.ep._not_found(self.ref)
        return found

    def p_vm(self) -> Any:
        return vim.VirtualMachine(self._owner_vm())

    def p_childSnapshot(self) -> list[Any]:  # noqa: N802
        return [vim.vm.Snapshot(c.moref) for c in self._owner()[1].children]

    def p_config(self) -> Any:
        vm, snap = self._owner()
        return _vmprops.build_config(
            vm, snap.disks or vm.disks, ds_ref=self.ep.datastore_ref, net_ref=self.ep.network_ref
        )

    @soap
    def RemoveSnapshot_Task(  # noqa: N802
        self, ctx: Context, removeChildren: bool, consolidate: bool | None = None  # noqa: N803
    ) -> Any:
        vm = self._owner_vm()
        be = self.ep.backend

        def run() -> None:
            be.remove_snapshot(vm, self.moid, remove_children=bool(removeChildren), consolidate=consolidate is not False)
            self.ep.forget_snapshots(vm, self.moid)

        return self.ep.tasks.submit(ctx, _SNAPSHOT.RemoveSnapshot_Task, vm, run)

    @soap
    def RevertToSnapshot_Task(  # noqa: N802
        self, ctx: Context, host: Any = None, suppressPowerOn: bool | None = None  # noqa: N803
    ) -> Any:
        vm = self._owner_vm()
        be = self.ep.backend
        return self.ep.tasks.submit(
            ctx,
            _SNAPSHOT.RevertToSnapshot_Task,
            vm,
            lambda: be.revert_to_snapshot(vm, self.moid, suppress_power_on=bool(suppressPowerOn)),
        )


#: Implementations of the fixed inventory, by managed object id.
STATIC_TYPES: dict[str, type[MOImpl]] = {
    MOIDS["si"]: ServiceInstanceImpl,
    MOIDS["session"]: SessionManagerImpl,
    MOIDS["pc"]: PropertyCollectorImpl,
    MOIDS["views"]: ViewManagerImpl,
    MOIDS["search"]: SearchIndexImpl,
    MOIDS["taskmgr"]: TaskManagerImpl,
    MOIDS["root"]: FolderImpl,
    MOIDS["vmfolder"]: FolderImpl,
    MOIDS["hostfolder"]: FolderImpl,
    MOIDS["dsfolder"]: FolderImpl,
    MOIDS["netfolder"]: FolderImpl,
    MOIDS["dc"]: DatacenterImpl,
    MOIDS["compute"]: ComputeResourceImpl,
    MOIDS["host"]: HostSystemImpl,
    MOIDS["pool"]: ResourcePoolImpl,
    MOIDS["browser"]: DatastoreBrowserImpl,
    MOIDS["guestops"]: GuestOperationsManagerImpl,
    MOIDS["guestfiles"]: GuestFileManagerImpl,
    MOIDS["guestprocs"]: GuestProcessManagerImpl,
}

ALL_TYPES: list[type[MOImpl]] = [
    ServiceInstanceImpl,
    SessionManagerImpl,
    PropertyCollectorImpl,
    PropertyFilterImpl,
    ViewManagerImpl,
    ContainerViewImpl,
    SearchIndexImpl,
    TaskManagerImpl,
    TaskImpl,
    DatastoreBrowserImpl,
    GuestOperationsManagerImpl,
    GuestFileManagerImpl,
    GuestProcessManagerImpl,
    FolderImpl,
    DatacenterImpl,
    ComputeResourceImpl,
    HostSystemImpl,
    ResourcePoolImpl,
    DatastoreImpl,
    NetworkImpl,
    VirtualMachineImpl,
    SnapshotImpl,
]
