"""Fixtures for the SOAP endpoint: a small fake host, a running server, a pyVmomi client.

The fake follows the backend rules (``simulator/soap/_backend.py``): it raises pyVmomi faults,
keeps redo-log chains per disk (``<base>-000001.vmdk``), change ids, and real file bytes, so
the tests check what a client sees and not what the fake happens to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pytest
from pyVim.connect import Disconnect, SmartConnect

from vcbsim.simulator import EPOCH, NotFoundError, make_fault
from vcbsim.simulator._host import Host
from vcbsim.simulator.soap import (
    ChangedAreas,
    DatastoreInfo,
    DiskInfo,
    DiskLayer,
    HostAbout,
    HostAdapter,
    NicInfo,
    SnapshotInfo,
    VMFile,
    VMInfo,
    serve,
)

GRAIN = 65536


@dataclass
class _Snap:
    moref: str
    id: int
    name: str
    description: str
    time: float
    state: str
    quiesced: bool
    parent: _Snap | None
    chains: dict[int, list[DiskLayer]]
    children: list[_Snap] = field(default_factory=list)


@dataclass
class _VM:
    info: VMInfo
    chains: dict[int, list[DiskLayer]]
    snaps: list[_Snap] = field(default_factory=list)
    current: _Snap | None = None
    cbt_epoch: int = 0
    written: set[int] = field(default_factory=set)  # grains written since the last snapshot


class FakeBackend:
    """A two-VM host: ``vm-1`` (Windows, Tools running, 1 disk) and ``vm-2`` (Linux, off)."""

    def __init__(self, *, change_tracking: bool = True) -> None:
        self.clock = EPOCH
        self.snap_ids = itertools.count(1)
        self.calls: list[str] = []
        self.files: dict[tuple[str, str], bytes] = {}
        self._vms: dict[str, _VM] = {}
        self.fail_next: str | None = None
        for n, (name, os_family, power, tools, ip) in enumerate(
            [
                ("win-db", "windows", "poweredOn", True, "10.0.0.11"),
                ("lin-web", "linux", "poweredOff", False, None),
            ],
            1,
        ):
            base = f"[datastore1] {name}/{name}"
            disk = DiskInfo(
                key=2000,
                label="Hard disk 1",
                capacity=64 * 1024**2,
                chain=(DiskLayer(f"{base}.vmdk", f"{base}-flat.vmdk", 64 * 1024**2),),
                uuid=f"6000C29{n}-0000-0000-0000-00000000000{n}",
            )
            info = VMInfo(
                moref=f"vm-{n}",
                name=name,
                uuid=f"42000000-0000-0000-0000-00000000000{n}",
                instance_uuid=f"52000000-0000-0000-0000-00000000000{n}",
                guest_id="windows7Server64Guest" if os_family == "windows" else "otherLinux64Guest",
                guest_full_name="Microsoft Windows Server 2008 R2 (64-bit)"
                if os_family == "windows"
                else "Other Linux (64-bit)",
                os_family=os_family,  # type: ignore[arg-type]
                power_state=power,  # type: ignore[arg-type]
                vmx_path=f"{base}.vmx",
                datastores=("datastore1",),
                disks=(disk,),
                tools_running=tools,
                tools_version="7302" if tools else "",
                ip_address=ip,
                host_name=f"{name}.example.test" if ip else None,
                change_tracking_supported=change_tracking,
                files=(VMFile(f"{base}.nvram", "nvram", 8684), VMFile(f"{base}.vmsd", "snapshotList", 0)),
                nics=(NicInfo(mac_address=f"00:50:56:00:00:0{n}", type="e1000"),),
            )
            self._vms[info.moref] = _VM(info, {2000: list(disk.chain)})
            self.files[("datastore1", f"{name}/{name}.vmx")] = (
                f'displayName = "{name}"\nscsi0:0.fileName = "{name}.vmdk"\n'.encode()
            )

    # --- helpers --------------------------------------------------------------------------
    def _vm(self, moref: str) -> _VM:
        try:
            return self._vms[moref]
        except KeyError:
            raise NotFoundError("VM", moref, known=list(self._vms)) from None

    def _snap(self, vm: _VM, moref: str) -> _Snap:
        stack = list(vm.snaps)
        while stack:
            s = stack.pop()
            if s.moref == moref:
                return s
            stack.extend(s.children)
        raise NotFoundError("snapshot", moref)

    def _change_id(self, vm: _VM) -> str | None:
        if not vm.info.change_tracking:
            return None
        digest = hashlib.md5(vm.info.uuid.encode()).hexdigest()  # noqa: S324 - an id, not security
        pairs = " ".join(digest[i : i + 2] for i in range(0, 32, 2))
        return f"52 {pairs[3:]}/{vm.cbt_epoch}"

    def _disks(self, vm: _VM, chains: dict[int, list[DiskLayer]], change_id: str | None) -> tuple[DiskInfo, ...]:
        return tuple(replace(d, chain=tuple(chains[d.key]), change_id=change_id) for d in vm.info.disks)

    def _info(self, vm: _VM) -> VMInfo:
        def tree(s: _Snap) -> SnapshotInfo:
            return SnapshotInfo(
                moref=s.moref,
                id=s.id,
                name=s.name,
                description=s.description,
                create_time=s.time,
                state=s.state,  # type: ignore[arg-type]
                quiesced=s.quiesced,
                children=tuple(tree(c) for c in s.children),
                disks=self._disks(vm, s.chains, None),
                files=(VMFile(vm.info.vmx_path.replace(".vmx", f"-Snapshot{s.id}.vmsn"), "snapshotData", 28000),),
            )

        return replace(
            vm.info,
            disks=self._disks(vm, vm.chains, self._change_id(vm)),
            snapshots=tuple(tree(s) for s in vm.snaps),
            current_snapshot=vm.current.moref if vm.current else None,
        )

    def write(self, vm: str, offset: int, length: int) -> None:
        """Pretend the guest wrote these bytes (for changed-block tracking)."""
        v = self._vm(vm)
        v.written.update(range(offset // GRAIN, (offset + length - 1) // GRAIN + 1))

    # --- HostBackend ------------------------------------------------------------------------
    def about(self) -> HostAbout:
        return HostAbout(instance_uuid="4c4c4544-0000-0000-0000-000000000001")

    def now(self) -> float:
        return self.clock

    def datastores(self) -> list[DatastoreInfo]:
        return [DatastoreInfo("datastore1", 500 * 1024**3, 400 * 1024**3, "/vmfs/volumes/4a5b6c7d-datastore1")]

    def vms(self) -> list[VMInfo]:
        return [self._info(v) for v in self._vms.values()]

    def vm(self, moref: str) -> VMInfo:
        return self._info(self._vm(moref))

    def power_on(self, vm: str) -> None:
        v = self._vm(vm)
        if v.info.power_state == "poweredOn":
            raise make_fault("InvalidPowerState", state="poweredOn", requestedState="poweredOn",
                             existingState="poweredOn")
        v.info = replace(v.info, power_state="poweredOn")
        self.clock += 1

    def power_off(self, vm: str) -> None:
        v = self._vm(vm)
        if v.info.power_state == "poweredOff":
            raise make_fault("InvalidPowerState", state="poweredOff", requestedState="poweredOff",
                             existingState="poweredOff")
        v.info = replace(v.info, power_state="poweredOff")
        self.clock += 1

    def create_snapshot(self, vm: str, name: str, description: str, memory: bool, quiesce: bool) -> str:
        self.calls.append(f"create_snapshot {vm} {name} quiesce={quiesce}")
        v = self._vm(vm)
        if self.fail_next:
            fault, self.fail_next = self.fail_next, None
            raise make_fault(fault, code=3, desc="pre-freeze script failed")
        if quiesce and not v.info.tools_running:
            raise make_fault("ApplicationQuiesceFault", code=1, desc="Tools not running")
        n = next(self.snap_ids)
        frozen = {k: list(c) for k, c in v.chains.items()}
        snap = _Snap(f"snapshot-{n}", n, name, description, self.clock,
                     "poweredOn" if memory and v.info.power_state == "poweredOn" else "poweredOff",
                     quiesce, v.current, frozen)
        (v.current.children if v.current else v.snaps).append(snap)
        v.current = snap
        for chain in v.chains.values():
            depth = len(chain)
            base = chain[-1].descriptor[: -len(".vmdk")]
            chain.insert(0, DiskLayer(f"{base}-{depth:06d}.vmdk", f"{base}-{depth:06d}-delta.vmdk", 0,
                                      "vmfsSparse"))
        v.cbt_epoch += 1
        v.written.clear()
        self.clock += 1
        return snap.moref

    def _detach(self, v: _VM, snap: _Snap) -> None:
        siblings = snap.parent.children if snap.parent else v.snaps
        idx = siblings.index(snap)
        siblings[idx : idx + 1] = snap.children
        for c in snap.children:
            c.parent = snap.parent
        if v.current is snap:
            v.current = snap.parent

    def remove_snapshot(self, vm: str, snapshot: str, *, remove_children: bool, consolidate: bool) -> None:
        self.calls.append(f"remove_snapshot {vm} {snapshot}")
        v = self._vm(vm)
        snap = self._snap(v, snapshot)
        if remove_children:
            for c in list(snap.children):
                self.remove_snapshot(vm, c.moref, remove_children=True, consolidate=consolidate)
        self._detach(v, snap)
        if not v.snaps:
            for chain in v.chains.values():
                del chain[:-1]
        self.clock += 1

    def remove_all_snapshots(self, vm: str, *, consolidate: bool) -> None:
        v = self._vm(vm)
        v.snaps.clear()
        v.current = None
        for chain in v.chains.values():
            del chain[:-1]

    def revert_to_snapshot(self, vm: str, snapshot: str, *, suppress_power_on: bool) -> None:
        v = self._vm(vm)
        v.current = self._snap(v, snapshot)

    def consolidate_disks(self, vm: str) -> None:
        self._vm(vm)

    def reconfigure(self, vm: str, *, change_tracking: bool | None = None) -> None:
        v = self._vm(vm)
        if change_tracking is not None:
            v.info = replace(v.info, change_tracking=change_tracking)

    def query_changed_disk_areas(self, vm: str, snapshot: str | None, disk_key: int, start_offset: int,
                                 change_id: str) -> ChangedAreas:
        v = self._vm(vm)
        disk = next((d for d in v.info.disks if d.key == disk_key), None)
        if disk is None:
            raise make_fault("InvalidArgument", "no disk with key {key}", key=disk_key, invalidProperty="deviceKey")
        if not v.info.change_tracking:
            raise make_fault("NotSupported", "change tracking is not enabled on this disk")
        window = 16 * 1024**2
        end = min(disk.capacity, start_offset + window)
        if change_id == "*":
            grains = set(range(0, 4))  # the fake's "allocated" grains
        else:
            current = self._change_id(v) or ""
            prefix, _, seq = change_id.partition("/")
            if not seq.isdigit() or prefix != current.partition("/")[0] or int(seq) > v.cbt_epoch:
                raise make_fault("InvalidArgument", "invalid change id {cid}", cid=change_id,
                                 invalidProperty="changeId")
            grains = set(v.written) | {8, 9}
        areas = [(g * GRAIN, GRAIN) for g in sorted(grains) if start_offset <= g * GRAIN < end]
        return ChangedAreas(start_offset, end - start_offset, areas)

    def datastore_file_list(self, datastore: str) -> list[tuple[str, int]]:
        if datastore != "datastore1":
            raise NotFoundError("datastore", datastore, known=["datastore1"])
        return sorted((p, len(d)) for (ds, p), d in self.files.items() if ds == datastore)

    def datastore_file_size(self, datastore: str, path: str) -> int:
        try:
            return len(self.files[(datastore, path)])
        except KeyError:
            raise NotFoundError("file", f"[{datastore}] {path}") from None

    def read_datastore_file(self, datastore: str, path: str, offset: int, length: int) -> bytes:
        data = self.files.get((datastore, path))
        if data is None:
            raise NotFoundError("file", f"[{datastore}] {path}")
        return data[offset : offset + length]

    def write_datastore_file(self, datastore: str, path: str, data: bytes) -> None:
        if datastore != "datastore1":
            raise NotFoundError("datastore", datastore, known=["datastore1"])
        self.files[(datastore, path)] = data


@pytest.fixture
def fake_backend_class() -> type[FakeBackend]:
    """The fake's class, for tests that start servers of their own."""
    return FakeBackend


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def server(fake: FakeBackend) -> Iterator[object]:
    with serve(fake, port=0) as running:
        yield running


def _connect(server: object) -> Iterator[object]:
    port = server.port  # type: ignore[attr-defined]
    conn = SmartConnect(host="127.0.0.1", port=port, user="user", pwd="pass", disableSslCertValidation=True)
    try:
        yield conn
    finally:
        with contextlib.suppress(Exception):
            Disconnect(conn)


@pytest.fixture
def si(server: object) -> Iterator[object]:
    yield from _connect(server)


# --- the real simulated host ---------------------------------------------------------------


@pytest.fixture(params=["esx-3.5u2", "esxi-7.0"])
def host(request: pytest.FixtureRequest) -> Host:
    """The demo host (a Windows and a Linux guest with scripts), under both kinds of profile."""
    return Host.demo(request.param, seed=7)


@pytest.fixture
def esxi() -> Host:
    """The demo host on the ESXi 7.0 profile (changed block tracking, SEsparse redo logs)."""
    return Host.demo("esxi-7.0", seed=7)


@pytest.fixture
def host_server(host: Host) -> Iterator[object]:
    with serve(HostAdapter(host)) as running:
        yield running


@pytest.fixture
def host_si(host_server: object) -> Iterator[object]:
    yield from _connect(host_server)


@pytest.fixture
def esxi_si(esxi: Host) -> Iterator[object]:
    with serve(HostAdapter(esxi)) as running:
        yield from _connect(running)
