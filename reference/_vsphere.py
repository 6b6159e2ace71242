"""The host-client seam bound to a vSphere endpoint over pyVmomi (``VSphereHostClient``).

The same proxy (``BackupProxy``) runs against the simulator's SOAP endpoint (``vcbsim serve``)
or, in principle, a real ESX host: every call is a documented vSphere call, every byte of a
disk comes from the datastore's ``/folder`` HTTP interface.

=======================  ===================================================================
method                   how
=======================  ===================================================================
``find_vm``              ``name:`` a container view of VMs; ``uuid:`` ``SearchIndex.FindByUuid``
                         (BIOS, then instance UUID); ``ipaddr:`` ``FindByIp``; ``moref:`` the
                         object itself (``ManagedObjectNotFound`` is ``NotFoundError``)
``vm_info``              ``config`` (``hardware.device`` disks, the base of each backing chain),
                         ``runtime``, ``guest``; volumes from the disks' partition tables
``read_vmx``             ``GET /folder/<dir>/<vm>.vmx?dcPath=..&dsName=..`` with the session
                         cookie
``create_snapshot`` ...  ``CreateSnapshot_Task`` / ``RemoveSnapshot_Task`` /
                         ``ConsolidateVMDisks_Task`` and ``pyVim.task.WaitForTask``, which
                         raises the task's ``vim.fault`` unchanged
``open_disk``            the backing chain of the disk as of the snapshot (``snapshot.config``):
                         each descriptor is fetched and its extent lines read; ``VMFS``/``FLAT``
                         extents (and an RDM's ``VMFSRDM`` mapping: the LUN's bytes) are read
                         with Range GETs, ``VMFSSPARSE`` (COWD) and
                         ``SESPARSE`` extents through their grain directory and tables
                         (cached), a grain missing in a redo log is read from its parent
``allocated_areas``      ``QueryChangedDiskAreas(changeId="*")``, paged; without changed block
                         tracking (``NotSupported``): the redo logs' grains plus the whole
                         base disk (a flat extent cannot say where its data is)
``query_changed_areas``  ``QueryChangedDiskAreas(snapshot, deviceKey, startOffset, changeId)``,
                         paged on ``startOffset + length`` until the capacity
``change_tracking``      ``capability.changeTrackingSupported``, ``config.changeTrackingEnabled``
``enable_change_tracking`` ``ReconfigVM_Task(spec=VirtualMachineConfigSpec(changeTrackingEnabled=
                         True))``
``disk_change_ids``      ``backing.changeId`` of each disk in ``snapshot.config``
``open_volume``          MBR + FAT read on top of ``open_disk`` (the simulator's readers)
``check_fault``/``trace`` a proxy-local ``FaultInjector`` and ``Trace``; the host's own events
                         stay on the host
``write_disk``           not possible here: ``/folder`` serves a VM's disks read-only, writing
                         needs VDDK/NFC (raises ``NotSupported``); a restore over the wire
                         uploads whole disk files and registers them instead
                         (``_wirerestore.py``)
=======================  ===================================================================

Drive letters of Windows volumes (file-level backups mount only lettered volumes) come, in
this order, from ``guest.disk`` (what VMware Tools reports: ``diskPath``, ``capacity``, and
``mappings`` to the virtual disk), from guest operations (``ListFilesInGuest`` of ``C:\\`` ...
compared with each volume's root directory, when guest credentials are given), or else from
Windows' default order (``C:`` for the first partition of the first disk, then ``D:`` ...),
which cannot know that a volume's letter was removed.

One cohesive concern, although over 700 lines: the ``HostClient`` seam over pyVmomi, one
method per row of the table below; wire restores are ``_wirerestore.py``, transports
``_transports.py``.
"""

from __future__ import annotations

import http.client
import re
import ssl
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, urlsplit

from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from vcbsim.simulator import (
    FaultInjector,
    InvalidInputError,
    NotFoundError,
    SimRandom,
    StateError,
    Trace,
    make_fault,
)
from vcbsim.simulator.disk import CowdReader, SeSparseReader

from ._cbt import merge_areas
from ._client import (
    BlockReader,
    ChangeTracking,
    ClockLike,
    DiskInfo,
    SnapshotInfo,
    VMInfo,
    VolumeInfo,
    VolumeReader,
    _FatVolumeReader,
    parse_selector,
)

if TYPE_CHECKING:
    from vcbsim.simulator import FaultRule

__all__ = ["VSphereHostClient"]

#: bytes per Range request when reading a flat extent
READ_CHUNK = 8 * 1024 * 1024
#: small reads (file systems read a sector at a time) go through a cache of blocks this big
CACHE_BLOCK = 64 * 1024
CACHE_BLOCKS = 512
_EXTENT = re.compile(r'^\s*(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\w+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?\s*$')
_DS_PATH = re.compile(r"^\[([^\]]+)\]\s*(.*)$")
_FAT_TYPES = {0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E}
_LINUX_HINTS = ("linux", "rhel", "centos", "sles", "suse", "ubuntu", "debian", "fedora", "oracle")


def _split_ds_path(path: str) -> tuple[str, str]:
    """``"[datastore1] vm/vm.vmdk"`` -> ``("datastore1", "vm/vm.vmdk")``."""
    m = _DS_PATH.match(path or "")
    if not m:
        raise InvalidInputError("datastore path", expected="'[datastore] dir/file'", got=path)
    return m.group(1), m.group(2)


def _not_found(exc: BaseException, kind: str, name: str) -> BaseException:
    """The in-process binding's error for a missing object; other faults unchanged."""
    if isinstance(exc, vmodl.fault.ManagedObjectNotFound | vim.fault.NotFound):
        return NotFoundError(kind, name)
    return exc


# -- the clock -----------------------------------------------------------------------------


class _RemoteClock:
    """The host's (virtual) clock read with ``CurrentTime``, plus the proxy's own waits."""

    def __init__(self, si: Any) -> None:
        self._si = si
        self._offset = 0.0
        self._lock = threading.Lock()

    @property
    def now(self) -> float:
        t = self._si.CurrentTime()
        return float(t.timestamp()) + self._offset

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise InvalidInputError("seconds", expected="a number >= 0", got=seconds)
        with self._lock:
            self._offset += float(seconds)
        return self.now

    def advance_to(self, when: float) -> float:
        now = self.now
        if when > now:
            self.advance(when - now)
        return self.now


# -- datastore files over HTTP ---------------------------------------------------------------


class _Folder:
    """``GET /folder/<path>?dcPath=..&dsName=..`` with Range, one keep-alive connection per
    thread, authenticated by the vSphere session cookie."""

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        cookie: Callable[[], str],
        dc: str,
        context: ssl.SSLContext | None,
    ) -> None:
        self._scheme, self._host, self._port = scheme, host, port
        self._cookie = cookie
        self.dc = dc
        self._context = context
        self._local = threading.local()

    def _conn(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            if self._scheme == "https":
                conn = http.client.HTTPSConnection(
                    self._host, self._port, context=self._context, timeout=120
                )
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=120)
            self._local.conn = conn
        return cast(http.client.HTTPConnection, conn)

    def url(self, datastore: str, path: str) -> str:
        return f"/folder/{quote(path)}?dcPath={quote(self.dc)}&dsName={quote(datastore)}"

    def get(
        self, datastore: str, path: str, offset: int | None = None, length: int | None = None
    ) -> bytes:
        """The file, or ``length`` bytes at ``offset`` (short at its end)."""
        headers = {"Cookie": self._cookie()}
        if offset is not None and length is not None:
            if length <= 0:
                return b""
            headers["Range"] = f"bytes={offset}-{offset + length - 1}"
        for attempt in (1, 2):
            conn = self._conn(fresh=attempt == 2)
            try:
                conn.request("GET", self.url(datastore, path), headers=headers)
                resp = conn.getresponse()
                body = resp.read()
            except (http.client.HTTPException, OSError):
                if attempt == 2:
                    raise
                continue
            if resp.status in (200, 206):
                if resp.status == 200 and offset is not None and length is not None:
                    return body[offset : offset + length]
                return body
            if resp.status == 416:
                return b""
            if resp.status == 404:
                raise NotFoundError("datastore file", f"[{datastore}] {path}")
            msg = f"GET [{datastore}] {path}: HTTP {resp.status} {body[:200].decode(errors='replace').strip()}"
            raise StateError(msg)
        raise AssertionError("unreachable")  # pragma: no cover


# -- disks as of a snapshot --------------------------------------------------------------------


@dataclass
class _Extent:
    start: int  # disk offset of the extent
    size: int
    file_offset: int  # FLAT: where the data starts in the file
    fetch: Callable[[int, int], bytes]
    #: the grain tables of a sparse extent (COWD or SEsparse); None for a flat one
    cowd: CowdReader | SeSparseReader | None = None


class _Layer:
    """One descriptor of a chain: its extents in disk order."""

    def __init__(self, name: str, extents: list[_Extent]) -> None:
        self.name = name
        self.extents = extents

    @property
    def sparse(self) -> bool:
        return any(e.cowd is not None for e in self.extents)

    def map(self, offset: int, length: int) -> Iterator[tuple[int, int, _Extent, int | None]]:
        """``(disk_offset, n, extent, file_offset or None)``: None means "read the parent"."""
        end = offset + length
        for ext in self.extents:
            lo, hi = max(offset, ext.start), min(end, ext.start + ext.size)
            if lo >= hi:
                continue
            if ext.cowd is None:
                yield lo, hi - lo, ext, ext.file_offset + (lo - ext.start)
                continue
            for off, n, f in ext.cowd.map(lo - ext.start, hi - lo):
                yield ext.start + off, n, ext, f

    def allocated(self) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for ext in self.extents:
            if ext.cowd is None:
                out.append((ext.start, ext.size))
            else:
                out.extend((ext.start + o, n) for o, n in ext.cowd.allocated())
        return out


class _ChainDisk:
    """A read-only disk over a descriptor chain (top first): a ``BlockReader``."""

    def __init__(
        self,
        capacity: int,
        layers: list[_Layer],
        allocated: Callable[[], list[tuple[int, int]] | None] | None = None,
    ) -> None:
        self._capacity = capacity
        self.layers = layers
        self._allocated = allocated
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._capacity

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise InvalidInputError(
                "read range", expected="a non-negative offset and length", got=(offset, length)
            )
        length = max(0, min(length, self._capacity - offset))
        if length >= CACHE_BLOCK:
            return self._read(offset, length)
        # a disk as of a snapshot never changes: small reads are served from whole blocks
        out = bytearray()
        pos, end = offset, offset + length
        while pos < end:
            b = pos // CACHE_BLOCK
            with self._lock:
                block = self._cache.get(b)
                if block is not None:
                    self._cache.move_to_end(b)
            if block is None:
                block = self._read(b * CACHE_BLOCK, CACHE_BLOCK)
                with self._lock:
                    self._cache[b] = block
                    while len(self._cache) > CACHE_BLOCKS:
                        self._cache.popitem(last=False)
            stop = min(end, (b + 1) * CACHE_BLOCK)
            out += block[pos - b * CACHE_BLOCK : stop - b * CACHE_BLOCK]
            pos = stop
        return bytes(out)

    def _read(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self._capacity - offset))
        out = bytearray(length)
        self._fill(0, offset, length, out, offset)
        return bytes(out)

    def _fill(self, level: int, offset: int, length: int, out: bytearray, base: int) -> None:
        if level >= len(self.layers) or length <= 0:
            return  # below the base: zeros
        for off, n, ext, file_off in self.layers[level].map(offset, length):
            if file_off is None:
                self._fill(level + 1, off, n, out, base)
                continue
            if file_off < 0:
                continue  # an SEsparse zeroed grain: zeros, whatever the parent holds
            pos = 0
            while pos < n:
                step = min(READ_CHUNK, n - pos)
                data = ext.fetch(file_off + pos, step)
                at = off - base + pos
                out[at : at + len(data)] = data
                pos += step

    def allocated_areas(self) -> list[tuple[int, int]]:
        """Areas that may hold data (``QueryChangedDiskAreas("*")`` when the host tracks
        changes, else every redo log's grains and the whole flat base)."""
        if self._allocated is not None:
            areas = self._allocated()
            if areas is not None:
                return areas
        out: list[tuple[int, int]] = []
        for layer in self.layers:
            out.extend(layer.allocated())
        return merge_areas(out, self._capacity)


# -- the client ----------------------------------------------------------------------------------


class VSphereHostClient:
    """The host-client seam over pyVmomi: ``VSphereHostClient("https://127.0.0.1:8989/sdk",
    "user", "pass", insecure=True)``.

    Snapshot ids are the snapshots' morefs (``snapshot-3``), as in ``InProcessHostClient``.
    Host faults arrive as the same ``vim.fault`` objects; a missing VM or snapshot
    (``ManagedObjectNotFound``) is ``NotFoundError``. ``guest_user``/``guest_password`` let the
    client ask the guest for its drive letters (guest operations); without them the letters
    come from ``guest.disk`` or Windows' default order.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        server: str,
        user: str,
        password: str,
        *,
        insecure: bool = False,
        guest_user: str | None = None,
        guest_password: str | None = None,
        seed: int = 0,
    ) -> None:
        from pyVim.connect import SmartConnect

        parts = urlsplit(server if "://" in server else f"https://{server}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInputError("server", expected="https://host[:port]/sdk", got=server)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self.server = server
        try:
            self.si = SmartConnect(
                protocol=parts.scheme,
                host=parts.hostname,
                port=port,
                user=user,
                pwd=password,
                path=parts.path or "/sdk",
                disableSslCertValidation=insecure,
            )
        except (OSError, http.client.HTTPException) as exc:
            msg = f"cannot reach the vSphere endpoint {server}: {exc}"
            raise StateError(msg) from exc
        self.content = self.si.RetrieveContent()
        self.guest_user = guest_user
        self.guest_password = guest_password
        self._clock = _RemoteClock(self.si)
        self._trace = Trace(cast(Any, self._clock))
        self.faults = FaultInjector(SimRandom(seed), self._trace)
        context = None
        if parts.scheme == "https":
            context = ssl._create_unverified_context() if insecure else ssl.create_default_context()
        dcs = [e for e in self.content.rootFolder.childEntity if isinstance(e, vim.Datacenter)]
        self.folder = _Folder(
            parts.scheme,
            parts.hostname,
            port,
            self._session_cookie,
            dcs[0].name if dcs else "ha-datacenter",
            context,
        )
        self._volumes: dict[tuple[str, tuple[str, ...]], tuple[VolumeInfo, ...]] = {}
        self._host_name: str | None = None

    # -- session ---------------------------------------------------------------------------------

    def _session_cookie(self) -> str:
        cookie = str(self.si._stub.cookie or "")
        # pyVmomi keeps 'vmware_soap_session="..."; Path=/; ...': send only the pair
        return cookie.split(";", 1)[0].strip()

    def close(self) -> None:
        from pyVim.connect import Disconnect

        try:
            Disconnect(self.si)
        except Exception:  # noqa: BLE001 - closing a session that may already be gone
            pass

    def __enter__(self) -> VSphereHostClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def trace(self) -> Trace:
        return self._trace

    @property
    def clock(self) -> ClockLike:
        return self._clock

    @property
    def host_name(self) -> str:
        if self._host_name is None:
            view = self.content.viewManager.CreateContainerView(
                self.content.rootFolder, [vim.HostSystem], True
            )
            try:
                hosts = list(view.view)
            finally:
                view.DestroyView()
            self._host_name = str(hosts[0].name) if hosts else str(self.content.about.name)
        return self._host_name

    @property
    def api_version(self) -> str:
        return str(self.content.about.apiVersion)

    # -- inventory ---------------------------------------------------------------------------------

    def _vms(self) -> list[Any]:
        view = self.content.viewManager.CreateContainerView(
            self.content.rootFolder, [vim.VirtualMachine], True
        )
        try:
            return list(view.view)
        finally:
            view.DestroyView()

    def _vm(self, moref: str) -> Any:
        return vim.VirtualMachine(moref, self.si._stub)

    def list_vms(self) -> list[VMInfo]:
        return [self._info(vm) for vm in self._vms()]

    def find_vm(self, selector: str) -> VMInfo:
        kind, value = parse_selector(selector)
        index = self.content.searchIndex
        found: Any = None
        if kind == "name":
            vms = self._vms()
            names = {}
            for vm in vms:
                names[vm._moId] = vm.name
                if names[vm._moId] == value:
                    found = vm
                    break
            if found is None:
                raise NotFoundError("VM", selector, known=sorted(names.values()))
        elif kind == "uuid":
            found = index.FindByUuid(None, value, True, False) or index.FindByUuid(
                None, value, True, True
            )
        elif kind == "ipaddr":
            found = index.FindByIp(None, value, True)
        else:
            found = self._vm(value)
        if found is None:
            raise NotFoundError("VM", selector, known=[vm.name for vm in self._vms()])
        return self._info(found)

    def vm_info(self, moref: str) -> VMInfo:
        return self._info(self._vm(moref))

    def _info(self, vm: Any) -> VMInfo:
        try:
            config = vm.config
            runtime = vm.runtime
            guest = vm.guest
        except vmodl.fault.ManagedObjectNotFound:
            raise NotFoundError("VM", f"moref:{vm._moId}") from None
        disks = []
        dev: Any
        for dev in config.hardware.device:
            if not isinstance(dev, vim.vm.device.VirtualDisk):
                continue
            backing: Any = dev.backing
            disk_mode = str(getattr(backing, "diskMode", None) or "persistent")
            rdm = getattr(backing, "compatibilityMode", None)
            while getattr(backing, "parent", None) is not None:
                backing = backing.parent
            capacity = dev.capacityInBytes or int(dev.capacityInKB) * 1024
            disks.append(
                DiskInfo(
                    key=int(dev.key),
                    label=str(getattr(dev.deviceInfo, "label", "") or ""),
                    file_name=str(backing.fileName),
                    capacity=int(capacity),
                    disk_mode=disk_mode,
                    rdm=str(rdm) if rdm else None,
                )
            )
        os_family = self._os_family(config, guest)
        info = VMInfo(
            name=str(config.name),
            moref=str(vm._moId),
            uuid=str(config.uuid),
            os_family=os_family,
            guest_id=str(config.guestId),
            power_state=str(runtime.powerState),
            ip=str(guest.ipAddress) if guest is not None and guest.ipAddress else None,
            consolidation_needed=bool(getattr(runtime, "consolidationNeeded", False)),
            disks=tuple(disks),
            vmx_path=str(config.files.vmPathName),
        )
        vols = self._volumes_of(vm, info, guest)
        return VMInfo(
            **{**{f: getattr(info, f) for f in info.__dataclass_fields__}, "volumes": vols}
        )

    @staticmethod
    def _os_family(config: Any, guest: Any) -> str:
        family = str(getattr(guest, "guestFamily", None) or "")
        if family.endswith("Guest"):
            return family[: -len("Guest")]
        gid = str(config.guestId or "").lower()
        if gid.startswith("win"):
            return "windows"
        if any(h in gid for h in _LINUX_HINTS):
            return "linux"
        return "other"

    # -- volumes: partition tables, letters from the guest ---------------------------------------------

    def _volumes_of(self, vm: Any, info: VMInfo, guest: Any) -> tuple[VolumeInfo, ...]:
        key = (info.moref, tuple(d.file_name for d in info.disks))
        cached = self._volumes.get(key)
        if cached is not None:
            return cached
        from vcbsim.simulator.guest import open_readonly, read_partitions

        found: list[tuple[int, int, int, str, Any]] = []  # disk key, partition, size, label, fs
        for d in info.disks:
            view = self.open_disk(info.moref, d.key, None)
            try:
                parts = read_partitions(view)
            except InvalidInputError:
                continue  # no MBR: no volumes on this disk
            for p in parts:
                if p.type_id not in _FAT_TYPES:
                    continue
                try:
                    fs = open_readonly(view, p)
                    label = str(fs.label).strip()
                except (InvalidInputError, StateError, ValueError):
                    continue
                found.append((d.key, p.index, p.size, label, fs))
        places = self._places(vm, info, guest, found)
        vols = tuple(
            VolumeInfo(
                index=i,
                disk_key=dk,
                partition=pi,
                letter=places.get((dk, pi)) if info.is_windows else None,
                mount_point=places.get((dk, pi)) if not info.is_windows else None,
                label=label,
            )
            for i, (dk, pi, _size, label, _fs) in enumerate(found)
        )
        self._volumes[key] = vols
        return vols

    def _places(
        self, vm: Any, info: VMInfo, guest: Any, found: list[tuple[int, int, int, str, Any]]
    ) -> dict[tuple[int, int], str]:
        """Drive letters (``C``) or mount points of the volumes, where the guest tells them."""
        reported = [d for d in (getattr(guest, "disk", None) or []) if getattr(d, "diskPath", None)]
        if reported:
            return self._places_from_guest_disk(reported, found, info.is_windows)
        if not info.is_windows:
            return {}
        if self.guest_user and self.guest_password is not None:
            probed = self._letters_from_guest(vm, found)
            if probed is not None:
                return probed
        letters = "CDEFGHIJKLMNOPQRSTUVWXYZ"
        return {
            (dk, pi): letters[i] for i, (dk, pi, *_rest) in enumerate(found) if i < len(letters)
        }

    @staticmethod
    def _places_from_guest_disk(
        reported: list[Any], found: list[tuple[int, int, int, str, Any]], windows: bool
    ) -> dict[tuple[int, int], str]:
        out: dict[tuple[int, int], str] = {}
        free = list(found)
        for d in reported:
            path = str(d.diskPath)
            place = (
                path[0].upper()
                if windows and len(path) >= 2 and path[1] == ":"
                else path.rstrip("/") or "/"
            )
            keys = {int(m.key) for m in (getattr(d, "mappings", None) or [])}
            cands = [f for f in free if (not keys or f[0] in keys) and f[2] >= int(d.capacity or 0)]
            if not cands:
                continue
            best = min(cands, key=lambda f: f[2] - int(d.capacity or 0))
            free.remove(best)
            out[(best[0], best[1])] = place
        return out

    def _letters_from_guest(
        self, vm: Any, found: list[tuple[int, int, int, str, Any]]
    ) -> dict[tuple[int, int], str] | None:
        """Match each volume's root directory with ``ListFilesInGuest`` of ``X:\\``."""
        manager = getattr(self.content, "guestOperationsManager", None)
        if manager is None:
            return None
        auth = vim.vm.guest.NamePasswordAuthentication(
            username=self.guest_user, password=self.guest_password
        )
        roots: dict[str, frozenset[str]] = {}
        try:
            for letter in "CDEFGHIJKLMNOPQRSTUVWXYZ":
                names: set[str] = set()
                index = 0
                try:
                    while True:
                        res = manager.fileManager.ListFilesInGuest(
                            vm, auth, f"{letter}:\\", index, None, None
                        )
                        names.update(
                            str(f.path).casefold()
                            for f in res.files or []
                            if f.path not in (".", "..")
                        )
                        index += len(res.files or [])
                        if not res.remaining:
                            break
                except vim.fault.FileNotFound:
                    continue
                roots[letter] = frozenset(names)
        except (
            vim.fault.GuestOperationsFault,
            vim.fault.InvalidState,
            vmodl.fault.NotSupported,
            vim.fault.TaskInProgress,
            vmodl.fault.InvalidArgument,
        ):
            return None
        out: dict[tuple[int, int], str] = {}
        taken: set[str] = set()
        for dk, pi, _size, _label, fs in found:
            try:
                listing = frozenset(n.casefold() for n in fs.listdir("/"))
            except (InvalidInputError, StateError, ValueError):
                continue
            for letter, root_names in roots.items():
                if letter not in taken and root_names == listing:
                    out[(dk, pi)] = letter
                    taken.add(letter)
                    break
        return out

    def read_vmx(self, moref: str) -> str:
        ds, path = _split_ds_path(self.vm_info(moref).vmx_path)
        return self.folder.get(ds, path).decode("utf-8")

    # -- snapshots ---------------------------------------------------------------------------------

    @staticmethod
    def _walk(nodes: Any) -> Iterator[Any]:
        for node in nodes or []:
            yield node
            yield from VSphereHostClient._walk(node.childSnapshotList)

    @staticmethod
    def _snap(node: Any) -> SnapshotInfo:
        created = node.createTime
        return SnapshotInfo(
            id=str(node.snapshot._moId),
            name=str(node.name),
            created=float(created.timestamp()) if isinstance(created, datetime) else float(created),
            quiesced=bool(node.quiesced),
            description=str(node.description or ""),
            children=tuple(str(c.snapshot._moId) for c in node.childSnapshotList or []),
        )

    def _tree(self, moref: str) -> list[Any]:
        try:
            info = self._vm(moref).snapshot
        except vmodl.fault.ManagedObjectNotFound:
            raise NotFoundError("VM", f"moref:{moref}") from None
        return list(self._walk(info.rootSnapshotList if info is not None else []))

    def list_snapshots(self, moref: str) -> list[SnapshotInfo]:
        return [self._snap(n) for n in self._tree(moref)]

    def _wait(self, task: Any, kind: str, name: str) -> Any:
        try:
            WaitForTask(task)
        except Exception as exc:
            raise _not_found(exc, kind, name) from None
        return task.info.result

    def create_snapshot(
        self,
        moref: str,
        name: str,
        *,
        description: str = "",
        quiesce: bool = True,
        memory: bool = False,
    ) -> SnapshotInfo:
        try:
            task = self._vm(moref).CreateSnapshot_Task(name, description, memory, quiesce)
        except vmodl.fault.ManagedObjectNotFound:
            raise NotFoundError("VM", f"moref:{moref}") from None
        snap = self._wait(task, "VM", f"moref:{moref}")
        for node in self._tree(moref):
            if node.snapshot._moId == snap._moId:
                return self._snap(node)
        msg = f"snapshot {snap._moId} was created but is not in the snapshot tree of {moref}"
        raise StateError(msg)

    def remove_snapshot(self, moref: str, snapshot_id: str, *, consolidate: bool = True) -> None:
        if all(n.snapshot._moId != snapshot_id for n in self._tree(moref)):
            raise NotFoundError(
                "snapshot", snapshot_id, known=[n.snapshot._moId for n in self._tree(moref)]
            )
        try:
            task = vim.vm.Snapshot(snapshot_id, self.si._stub).RemoveSnapshot_Task(
                False, consolidate
            )
        except vmodl.fault.ManagedObjectNotFound:
            raise NotFoundError("snapshot", snapshot_id) from None
        self._wait(task, "snapshot", snapshot_id)

    def consolidate_disks(self, moref: str) -> None:
        try:
            task = self._vm(moref).ConsolidateVMDisks_Task()
        except vmodl.fault.ManagedObjectNotFound:
            raise NotFoundError("VM", f"moref:{moref}") from None
        self._wait(task, "VM", f"moref:{moref}")

    # -- disks ---------------------------------------------------------------------------------------

    def _config(self, moref: str, snapshot_id: str | None) -> Any:
        """The VM's configuration now, or as of a snapshot (``snapshot.config``)."""
        try:
            if snapshot_id is None:
                return self._vm(moref).config
            if all(n.snapshot._moId != snapshot_id for n in self._tree(moref)):
                raise NotFoundError("snapshot", snapshot_id)
            return vim.vm.Snapshot(snapshot_id, self.si._stub).config
        except vmodl.fault.ManagedObjectNotFound:
            raise NotFoundError("snapshot" if snapshot_id else "VM", snapshot_id or moref) from None

    def _device(self, moref: str, disk_key: int, snapshot_id: str | None) -> Any:
        config = self._config(moref, snapshot_id)
        for dev in config.hardware.device:
            if isinstance(dev, vim.vm.device.VirtualDisk) and int(dev.key) == int(disk_key):
                return dev
        keys = [
            str(d.key) for d in config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)
        ]
        raise NotFoundError("disk", str(disk_key), known=keys)

    def _layer(self, descriptor: str) -> _Layer:
        ds, path = _split_ds_path(descriptor)
        directory = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
        text = self.folder.get(ds, path).decode("utf-8", "replace")
        extents: list[_Extent] = []
        start = 0
        for line in text.splitlines():
            m = _EXTENT.match(line)
            if not m:
                continue
            sectors, kind, fname, offset = int(m.group(2)), m.group(3), m.group(4), m.group(5)
            size = sectors * 512
            if kind == "ZERO":
                extents.append(_Extent(start, size, 0, lambda _o, n: bytes(n), None))
                start += size
                continue
            if fname is None:
                msg = f"extent line without a file name in {descriptor}: {line.strip()}"
                raise StateError(msg)
            epath = fname if fname.startswith("/") else directory + fname

            def fetch(off: int, n: int, _p: str = epath) -> bytes:
                return self.folder.get(ds, _p, off, n)

            if kind in ("VMFS", "FLAT"):
                extents.append(_Extent(start, size, int(offset or 0) * 512, fetch))
            elif kind in ("VMFSRDM", "VMFSRAW"):
                # a raw device mapping: the extent file stands for the LUN, read from its start
                # (VMware Virtual Disk Format 1.1, extent types; simulator/_rdm.py)
                extents.append(_Extent(start, size, 0, fetch))
            elif kind in ("VMFSSPARSE", "SPARSE"):
                extents.append(_Extent(start, size, 0, fetch, CowdReader(fetch)))
            elif kind == "SESPARSE":
                extents.append(_Extent(start, size, 0, fetch, SeSparseReader(fetch)))
            else:
                raise make_fault(
                    "NotSupported",
                    f"{kind} extents ({fname}) cannot be read by this client; it reads VMFS, FLAT, "
                    "VMFSRDM/VMFSRAW (an RDM's LUN), VMFSSPARSE (COWD) and SESPARSE extents",
                )
            start += size
        if not extents:
            msg = f"{descriptor} has no extent lines"
            raise StateError(msg)
        return _Layer(descriptor, extents)

    def open_disk(self, moref: str, disk_key: int, snapshot_id: str | None) -> BlockReader:
        dev = self._device(moref, disk_key, snapshot_id)
        capacity = int(dev.capacityInBytes or int(dev.capacityInKB) * 1024)
        layers = []
        backing = dev.backing
        while backing is not None:
            layers.append(self._layer(str(backing.fileName)))
            backing = getattr(backing, "parent", None)
        cbt = bool(getattr(dev.backing, "changeId", None))

        def allocated() -> list[tuple[int, int]] | None:
            if not cbt:
                return None
            try:
                return self._qcda(moref, snapshot_id, disk_key, 0, "*", capacity)
            except (vmodl.fault.NotSupported, vim.fault.FileFault):
                return None

        return _ChainDisk(capacity, layers, allocated)

    def write_disk(self, moref: str, disk_key: int, offset: int, data: bytes) -> None:
        self._device(moref, disk_key, None)
        raise make_fault(
            "NotSupported",
            "writing a virtual disk needs VDDK/NFC; the datastore's /folder interface serves a "
            "VM's disks read-only: restore over the wire uploads disk files and registers the VM "
            "(vcbsim restore --server ... --vm)",
        )

    def _qcda(
        self,
        moref: str,
        snapshot_id: str | None,
        disk_key: int,
        start: int,
        change_id: str,
        capacity: int,
    ) -> list[tuple[int, int]]:
        vm = self._vm(moref)
        snap = vim.vm.Snapshot(snapshot_id, self.si._stub) if snapshot_id else None
        out: list[tuple[int, int]] = []
        pos = start
        while pos < capacity:
            try:
                info = vm.QueryChangedDiskAreas(snap, disk_key, pos, change_id)
            except vmodl.fault.ManagedObjectNotFound:
                raise NotFoundError(
                    "snapshot" if snapshot_id else "VM", snapshot_id or moref
                ) from None
            out.extend((int(a.start), int(a.length)) for a in info.changedArea or [])
            end = int(info.startOffset) + int(info.length)
            if end <= pos:
                break
            pos = end
        return out

    def allocated_areas(
        self, moref: str, disk_key: int, snapshot_id: str | None
    ) -> list[tuple[int, int]]:
        dev = self._device(moref, disk_key, snapshot_id)
        if getattr(dev.backing, "changeId", None):
            capacity = int(dev.capacityInBytes or int(dev.capacityInKB) * 1024)
            try:
                return merge_areas(self._qcda(moref, snapshot_id, disk_key, 0, "*", capacity))
            except (vmodl.fault.NotSupported, vim.fault.FileFault):
                pass
        view = self.open_disk(moref, disk_key, snapshot_id)
        return list(cast(_ChainDisk, view).allocated_areas())

    def query_changed_areas(
        self, moref: str, snapshot_id: str, disk_key: int, start_offset: int, change_id: str
    ) -> list[tuple[int, int]]:
        dev = self._device(moref, disk_key, snapshot_id)
        capacity = int(dev.capacityInBytes or int(dev.capacityInKB) * 1024)
        return self._qcda(moref, snapshot_id, disk_key, start_offset, change_id, capacity)

    def change_tracking(self, moref: str) -> ChangeTracking:
        vm = self._vm(moref)
        try:
            capability, config = vm.capability, vm.config
        except vmodl.fault.ManagedObjectNotFound:
            raise NotFoundError("VM", f"moref:{moref}") from None
        return ChangeTracking(
            supported=bool(getattr(capability, "changeTrackingSupported", False)),
            enabled=bool(getattr(config, "changeTrackingEnabled", False)),
        )

    def enable_change_tracking(self, moref: str) -> None:
        spec = vim.vm.ConfigSpec(changeTrackingEnabled=True)
        try:
            task = self._vm(moref).ReconfigVM_Task(spec)
        except vmodl.fault.ManagedObjectNotFound:
            raise NotFoundError("VM", f"moref:{moref}") from None
        self._wait(task, "VM", f"moref:{moref}")

    def disk_change_ids(self, moref: str, snapshot_id: str | None) -> dict[int, str | None]:
        config = self._config(moref, snapshot_id)
        out: dict[int, str | None] = {}
        for dev in config.hardware.device:
            if isinstance(dev, vim.vm.device.VirtualDisk):
                change_id = getattr(dev.backing, "changeId", None)
                out[int(dev.key)] = str(change_id) if change_id else None
        return out

    def open_volume(self, moref: str, snapshot_id: str, volume: VolumeInfo) -> VolumeReader:
        from vcbsim.simulator.guest import PartitionDevice, open_readonly, read_partitions

        view = self.open_disk(moref, volume.disk_key, snapshot_id)
        parts = {p.index: p for p in read_partitions(view)}
        if volume.partition not in parts:
            msg = f"partition of volume {volume.name}"
            raise NotFoundError(msg, volume.partition, known=[str(i) for i in parts])
        fs = open_readonly(
            PartitionDevice.of(view, parts[volume.partition]), clock=cast(Any, self._clock)
        )
        return _FatVolumeReader(fs)

    def check_fault(
        self, operation: str, target: str, *, vm: str | None = None
    ) -> FaultRule | None:
        if not self.faults.rules:
            return None
        return self.faults.check(operation, target, vm=vm)
