"""The simulated ESX host: inventory, power, snapshots, consolidation, CBT, datastore files.

Every public operation validates its input, consults the fault injector where a real host
could fail, records its steps in the host's one trace, and raises what a real host raises
(pyVmomi ``vim.fault.*``). A failed operation leaves the host as it was, or in the documented
failure state (a quiesced snapshot whose thaw failed is rolled back, spec F7).

The operations are synchronous and run on the virtual clock; the SOAP endpoint wraps them in
``Task`` objects. A per-host re-entrant lock makes them safe to call from server threads; a
VM already inside an operation answers ``TaskInProgress``.

One cohesive concern, although over 700 lines: the host's own operations on its VMs, each
short, in the order of the vSphere API. What is not an operation lives beside it: building
guests (``_guestbuild``), the demo (``_demo``), persistence (``_persist``), the VM model
(``_vm``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ._clock import VirtualClock
from ._errors import InvalidInputError, NotFoundError, SimulatedCrash, StateError
from ._faultrules import FaultInjector, FaultRule
from ._faults import fault_name, make_fault, raise_fault
from ._holds import DiskHolds
from ._names import check_name, check_text, check_vm_name
from ._profiles import DEFAULT_PROFILE, HostProfile, get_profile
from ._random import SimRandom
from ._rdm import RDM_MODES, lun_identity
from ._trace import Trace
from ._vm import (
    DISK_MODES,
    GUEST_OS,
    SESSION_REDO_SUFFIX,
    VM,
    PowerState,
    Snapshot,
    VirtualDiskDevice,
    datastore_of,
    file_ref,
)
from .disk import BlockDevice, Layer, LayeredDisk, LayerView, MergeStats

if TYPE_CHECKING:
    from ._persist import DatastoreStore, RecoveryReport
    from ._vmlifecycle import DiskSpec, LooseDisk

__all__ = ["Host", "Datastore", "DiskChangeInfo", "GiB", "MiB", "MorefCounters", "Populate"]

MiB = 1024**2
GiB = 1024**3

VCB_SNAPSHOT_NAME = "_VCB-BACKUP_"
#: The snapshot a pre-6.0 host leaves when a commit fails (spec R49).
CONSOLIDATE_HELPER = "Consolidate Helper-0"
#: The saved configuration in a ``.vmsn`` without memory (bytes; order of magnitude only).
VMSN_CONFIG_BYTES = 32 * 1024

Populate = Callable[["Host"], None]
"""Builds an inventory on an empty host: ``populate_demo``, an inventory file's ``populate``."""


@dataclass(frozen=True, slots=True)
class MorefCounters:
    """The numbers the next ``vm-N`` and ``snapshot-N`` managed-object ids will take.

    Persistence saves them and gives them back (``Host.reserve_morefs``), so an id handed out
    before a restart is never handed out again to another object (clients cache morefs)."""

    next_vm: int
    next_snapshot: int


@dataclass(eq=False)
class Datastore:
    """A datastore: a name and a capacity; used space is the grains the VMs hold."""

    name: str
    capacity: int
    host: Host

    @property
    def used(self) -> int:
        """Bytes the files on this datastore hold: every disk layer whose file lives here (a
        base disk where it was placed, redo logs in the VM's working directory) and the
        ``.vmsn`` files of snapshots taken with their working directory here."""
        total = 0
        for vm in self.host.vms.values():
            for d in vm.disks:
                for layer in d.disk.layers():
                    if d.rdm is not None and layer.parent is None:
                        continue  # an RDM's base is the LUN: its mapping file takes no room
                    if datastore_of(layer.label) == self.name:
                        total += layer.grain_count * d.disk.grain_size
            if datastore_of(vm.snapshot_dir) == self.name:
                total += sum(s.vmsn_bytes for s in vm.snapshots())
        return total

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.used)

    @property
    def url(self) -> str:
        return f"ds:///vmfs/volumes/{self.name}/"


@dataclass(frozen=True, slots=True)
class DiskChangeInfo:
    """``vim.DiskChangeInfo``: one window of a QueryChangedDiskAreas answer."""

    start_offset: int
    length: int
    changed_area: tuple[tuple[int, int], ...]


class _GuestWriteDevice:
    """The live block device a guest writes through: faults and datastore space apply here."""

    __slots__ = ("_host", "_vm", "_disk")

    def __init__(self, host: Host, vm: VM, disk: LayeredDisk) -> None:
        self._host, self._vm, self._disk = host, vm, disk

    @property
    def size(self) -> int:
        return self._disk.capacity

    def read(self, offset: int, length: int) -> bytes:
        return self._disk.read(offset, length)

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        host = self._host
        if host.faults.rules:
            rule = host.faults.check("disk.write", self._vm.name, vm=self._vm.moref)
            if rule is not None and rule.fault:
                raise_fault(rule.fault, rule.message, datastore=self._vm.datastore)
        self._disk.write(offset, data)


def _vm_ref(vm: VM) -> Any:
    """The VM's managed-object reference, for faults that name their receiver."""
    from pyVmomi import vim

    return vim.VirtualMachine(vm.moref)


def _task_ref(moid: str) -> Any:
    """A task's managed-object reference (``TaskInProgress`` names the task in the way)."""
    from pyVmomi import vim

    return vim.Task(moid)


def _unit_number(controllers: Sequence[str], i: int) -> int:
    """The disk's unit on its controller: in order per controller; SCSI skips 7 (the HBA)."""
    n = sum(c == controllers[i] for c in controllers[:i])
    return n + 1 if controllers[i] == "scsi" and n >= 7 else n


class Host:
    """One simulated ESX host. ``Host.demo()`` gives the embedded default inventory."""

    def __init__(
        self,
        profile: str | HostProfile = DEFAULT_PROFILE,
        *,
        seed: int = 0,
        datastore_capacity: int = 4 * 1024 * GiB,
        name: str = "esx01.vcbsim.test",
        datastore_dir: str | os.PathLike[str] | None = None,
        populate: Populate | None = None,
    ) -> None:
        """``populate`` builds the inventory (``Host.demo()`` passes the demo's): on this host
        when it starts empty (in memory, or a ``datastore_dir`` just created; one that holds
        VMs is loaded as it is), and again on every ``reset()``."""
        self.profile = get_profile(profile)
        self.seed = seed
        self.name = name
        self._init_args = {"datastore_capacity": datastore_capacity, "name": name, "datastore_dir": datastore_dir}
        self.clock = VirtualClock()
        self.random = SimRandom(seed)
        self.trace = Trace(self.clock)
        self.faults = FaultInjector(self.random, self.trace)
        self.vms: dict[str, VM] = {}
        self.datastores: dict[str, Datastore] = {
            "datastore1": Datastore("datastore1", datastore_capacity, self)
        }
        self.lock = threading.RLock()
        #: export leases and hot-added disks holding VMs' disk files open (``_holds.py``)
        self.holds = DiskHolds()
        self._quiesce_step_callbacks: list[Callable[[VM, str], None]] = []
        self._next_moref = 1
        self._next_snapshot_moref = 1
        #: files clients put on a datastore kept in memory (no ``datastore_dir``): (ds, path) -> bytes
        self.uploads: dict[tuple[str, str], bytes] = {}
        #: disk files no VM holds, in memory (``VirtualDiskManager``; ``_vmlifecycle``)
        self.loose_disks: dict[tuple[str, str], LooseDisk] = {}
        #: VMs unregistered (``UnregisterVM``) by their ``.vmx`` path: registering it brings them back
        self.unregistered: dict[str, VM] = {}
        #: What ``reset()`` rebuilds the inventory with (``None``: no VMs). Public so that the
        #: control API's ``reset(demo=...)`` can choose; a loaded datastore made from the demo
        #: sets it to the demo's when none was given.
        self.populate: Populate | None = populate
        self.trace.emit("host", "host.reset", profile=self.profile.name, seed=seed)
        # datastore_dir: the datastore is kept as files there and loaded from them (_persist.py)
        self.store: DatastoreStore | None = None
        self.recovery_report: RecoveryReport | None = None
        if datastore_dir is not None:
            from ._persist import attach_store

            attach_store(self, datastore_dir)
        created = self.store is None or (self.recovery_report is not None and self.recovery_report.created)
        if populate is not None and created and not self.vms:
            populate(self)
            if self.store is not None:
                self.store.save_host()

    # -- construction -----------------------------------------------------------------------

    def add_datastore(self, name: str, capacity: int) -> Datastore:
        """Add a datastore (a VM's disks may be spread over several, R50 / KB 304387)."""
        if not isinstance(name, str) or not name or any(c in name for c in "[]/"):
            raise InvalidInputError("datastore name", expected="a non-empty name without '[', ']' or '/'", got=name)
        if name in self.datastores:
            raise InvalidInputError("datastore name", expected="a name not used on this host", got=name)
        if not isinstance(capacity, int) or capacity <= 0:
            raise InvalidInputError("datastore capacity", expected="a positive number of bytes", got=capacity)
        ds = Datastore(name, capacity, self)
        self.datastores[name] = ds
        if self.store is not None:
            self.store.save_host()  # the datastore survives a restart (simulator/_persist.py)
        return ds

    @classmethod
    def demo(cls, profile: str | HostProfile = DEFAULT_PROFILE, *, seed: int = 0, inventory: str = "demo") -> Host:
        """The embedded default: a Windows guest (C:, D:, a letterless volume) and a Linux guest.

        ``inventory="era"``: the second named inventory, a VM per era-specific case
        (``populate_era_demo``: XP with the legacy pair, an independent disk, two datastores,
        no Tools, Windows 2019 under the VSS rules)."""
        from ._demo import INVENTORIES

        if inventory not in INVENTORIES:
            raise InvalidInputError("demo inventory", expected=" | ".join(INVENTORIES), got=inventory)
        return cls(profile, seed=seed, populate=INVENTORIES[inventory])

    @property
    def is_demo(self) -> bool:
        """True when ``reset()`` rebuilds the demo inventory (persistence records it)."""
        from ._demo import populate_demo

        return self.populate is populate_demo

    def reset(self, *, seed: int | None = None) -> None:
        """Rebuild this host from scratch with the same profile (moto's ``reset``), and the
        inventory ``populate`` builds: the demo's, an inventory file's, or none."""
        populate = self.populate
        if self.store is not None:
            self.store.wipe()
        self.__init__(  # type: ignore[misc]
            self.profile, seed=self.seed if seed is None else seed, populate=populate, **self._init_args
        )

    # -- seams for persistence ------------------------------------------------------------

    @property
    def moref_counters(self) -> MorefCounters:
        """The ids the next VM and snapshot will get (what persistence saves)."""
        return MorefCounters(self._next_moref, self._next_snapshot_moref)

    def reserve_morefs(self, *, next_vm: int = 1, next_snapshot: int = 1) -> None:
        """Never hand out ``vm-N`` below ``next_vm`` nor ``snapshot-N`` below
        ``next_snapshot`` (a loaded datastore's saved counters, or past its objects' ids).
        Counters only move up: an id once given is not reused."""
        with self.lock:
            self._next_moref = max(self._next_moref, int(next_vm))
            self._next_snapshot_moref = max(self._next_snapshot_moref, int(next_snapshot))

    def add_vm(
        self,
        name: str,
        *,
        os_family: Literal["windows", "linux"] = "windows",
        disks: list[int] | tuple[int, ...] = (8 * GiB,),
        power_state: PowerState = "poweredOn",
        tools: str = "running",
        providers: tuple[str, ...] | None = None,
        ip_address: str | None = None,
        hostname: str | None = None,
        datastore: str = "datastore1",
        memory_mb: int = 1024,
        disk_datastores: Sequence[str | None] | None = None,
        disk_modes: Sequence[str] | None = None,
        disk_controllers: Sequence[str] | None = None,
        working_dir: str | None = None,
        guest_os: str | None = None,
        disk_rdms: Sequence[str | None] | None = None,
    ) -> VM:
        """Register a VM with blank disks (``add_guest_volumes`` gives it file systems).

        Per disk (lists as long as ``disks``): ``disk_datastores`` places a base disk on another
        datastore (None: the VM's), ``disk_modes`` is a ``VirtualDiskMode`` from ``DISK_MODES``,
        ``disk_controllers`` ``"scsi"`` or ``"ide"``. ``working_dir`` is a datastore name whose
        ``<name>/`` folder gets the redo logs and ``.vmsn`` files (the ``workingDir`` setting).
        ``guest_os`` names a guest from ``GUEST_OS`` (``winXPProGuest``: the SYNC driver only;
        ``windows2019srv_64Guest``: VSS under the 4.1+ consistency rules). ``disk_rdms`` makes a
        disk a raw device mapping (``"physicalMode"`` / ``"virtualMode"``, None: a virtual disk;
        ``simulator/_rdm.py``): a physical one has no disk mode, so it gets
        ``independent_persistent`` and another mode is refused.
        """
        check_vm_name(name)  # what XML, the .vmx, URLs and the datastore can hold (_names.py)
        if any(vm.name == name for vm in self.vms.values()):
            raise InvalidInputError("VM name", expected="a name not used on this host", got=name)
        if os_family not in ("windows", "linux"):
            raise InvalidInputError("os_family", expected="'windows' or 'linux'", got=os_family)
        if datastore not in self.datastores:
            raise NotFoundError("datastore", datastore, known=list(self.datastores))
        if not disks:
            raise InvalidInputError("disks", expected="at least one disk capacity in bytes", got=disks)
        for cap in disks:
            if not isinstance(cap, int) or cap <= 0 or cap % 512:
                raise InvalidInputError(
                    "disk capacity", expected="a positive number of bytes, a multiple of 512", got=cap
                )
        if power_state not in ("poweredOn", "poweredOff", "suspended"):
            raise InvalidInputError(
                "power_state", expected="'poweredOn', 'poweredOff' or 'suspended'", got=power_state
            )
        if guest_os is not None:
            if guest_os not in GUEST_OS or GUEST_OS[guest_os][2] != os_family:
                known = [g for g, v in GUEST_OS.items() if v[2] == os_family]
                raise InvalidInputError("guest_os", expected="one of " + ", ".join(known), got=guest_os)
            if providers is None and GUEST_OS[guest_os][3] == "sync":
                providers = ("sync",)  # XP / 2000: the SYNC driver, no VSS (R42)
        n = len(disks)
        places = list(disk_datastores) if disk_datastores is not None else [None] * n
        modes = list(disk_modes) if disk_modes is not None else ["persistent"] * n
        ctrls = list(disk_controllers) if disk_controllers is not None else ["scsi"] * n
        rdms = list(disk_rdms) if disk_rdms is not None else [None] * n
        for what, values in (
            ("disk_datastores", places), ("disk_modes", modes), ("disk_controllers", ctrls), ("disk_rdms", rdms),
        ):
            if len(values) != n:
                raise InvalidInputError(what, expected=f"one entry per disk ({n})", got=values)
        for ds_name in [*places, working_dir]:
            if ds_name is not None and ds_name not in self.datastores:
                raise NotFoundError("datastore", ds_name, known=list(self.datastores))
        for mode in modes:
            if mode not in DISK_MODES:
                raise InvalidInputError("disk mode", expected=" | ".join(DISK_MODES), got=mode)
        for ctrl in ctrls:
            if ctrl not in ("scsi", "ide"):
                raise InvalidInputError("disk controller", expected="'scsi' or 'ide'", got=ctrl)
        for i, rdm in enumerate(rdms):
            if rdm is not None and rdm not in RDM_MODES:
                raise InvalidInputError("RDM compatibility mode", expected="None, " + " or ".join(RDM_MODES), got=rdm)
            if rdm == "physicalMode":
                # "A disk device backed by a physical compatibility mode raw disk mapping cannot
                # use disk modes" (API VirtualDiskCompatibilityMode): independent_persistent
                if disk_modes is not None and modes[i] not in ("persistent", "independent_persistent"):
                    raise InvalidInputError(
                        "disk mode of a physical RDM", expected="independent_persistent (it has no disk modes)",
                        got=modes[i], hint="use virtualMode for a nonpersistent RDM",
                    )
                modes[i] = "independent_persistent"
        with self.lock:
            moref = f"vm-{self._next_moref}"
            self._next_moref += 1
            vm = VM(
                name=name,
                moref=moref,
                uuid=self.random.uuid(),
                instance_uuid=self.random.uuid(),
                os_family=os_family,
                datastore=datastore,
                directory=f"[{datastore}] {name}",
                memory_mb=memory_mb,
                power_state=power_state,
                hostname=hostname or f"{name}.vcbsim.test",
                ip_address=ip_address,
                hw_version=4 if self.profile.version.startswith("3.") else 19,
                working_dir=f"[{working_dir}] {name}" if working_dir is not None else None,
                guest_os=guest_os,
            )
            for i, cap in enumerate(disks):
                disk = LayeredDisk(cap) if self.store is None else self.store.new_disk(vm, cap)
                base = f"{name}.vmdk" if i == 0 else f"{name}_{i}.vmdk"
                folder = vm.directory if places[i] is None else f"[{places[i]}] {name}"
                disk.top.label = f"{folder}/{base}"
                prefix = " ".join(self.random.hex_id(16)[j : j + 2] for j in range(0, 32, 2))
                device_name, lun_uuid = lun_identity(self.random.hex_id(16)) if rdms[i] else ("", "")
                vm.disks.append(
                    VirtualDiskDevice(
                        key=2000 + i,
                        label=f"Hard disk {i + 1}",
                        base_name=disk.top.label,
                        disk=disk,
                        change_id_prefix=prefix,
                        disk_mode=modes[i],
                        controller=ctrls[i],
                        unit_number=_unit_number(ctrls, i),
                        controller_key=1000 if ctrls[i] == "scsi" else 200,
                        rdm=rdms[i],
                        lun_uuid=lun_uuid,
                        device_name=device_name,
                    )
                )
            if power_state == "poweredOn":
                self._start_sessions(vm)
            from .tools import MemoryGuestFiles, VMwareTools

            # Until add_guest_volumes() gives the VM file systems on its disks, Tools sees an
            # empty in-memory guest (no scripts), so quiescing still works on bare VMs.
            vm.tools = VMwareTools(MemoryGuestFiles(os_family), state=tools, providers=providers)
            self.vms[moref] = vm
            self.faults.aliases[moref] = name
            if self.store is not None:
                self.store.save_vm(vm)
            self.trace.emit("host", "vm.create", vm=moref, name=name, os=os_family, power=power_state)
            return vm

    def add_guest_volumes(
        self, vm: VM | str, layouts: Mapping[int, Sequence[tuple[int | None, str | None, str]]]
    ) -> Any:
        """Partition and format disks: ``{0: [(None, "C", "SYSTEM")], 1: [(3 * GiB, "D", "DATA"), (None, None, "RECOVERY")]}``."""
        from ._guestbuild import add_guest_volumes

        vm = self.find_vm(vm)
        with self.lock:
            fs = add_guest_volumes(self, vm, layouts)
            if self.store is not None:
                self.store.save_vm(vm)
            return fs

    def guest_device(self, vm: VM, disk_key: int) -> BlockDevice:
        """The live block device of one disk, as the guest OS writes it."""
        d = self._disk(vm, disk_key)
        return _GuestWriteDevice(self, vm, d.disk)

    # -- lookup -----------------------------------------------------------------------------

    def find_vm(self, ref: str | VM) -> VM:
        """Find a VM by object, moref, name, or VCB selector (``name:``, ``uuid:``, ``ipaddr:``, ``moref:``)."""
        if isinstance(ref, VM):
            if self.vms.get(ref.moref) is not ref:
                raise NotFoundError("VM", ref.name, known=[v.name for v in self.vms.values()])
            return ref
        if not isinstance(ref, str) or not ref:
            raise InvalidInputError(
                "VM reference",
                expected="a VM, a name, a moref, or name:/uuid:/ipaddr:/moref: selector",
                got=ref,
            )
        kind, _, value = ref.partition(":")
        if not value or kind not in ("name", "uuid", "ipaddr", "moref"):
            kind, value = "any", ref
        for vm in self.vms.values():
            if (
                (kind in ("name", "any") and vm.name == value)
                or (kind in ("moref", "any") and vm.moref == value)
                or (kind in ("uuid", "any") and value.lower() in (vm.uuid, vm.instance_uuid))
                or (kind in ("ipaddr", "any") and vm.ip_address == value and self._tools_running(vm))
            ):
                return vm
        raise NotFoundError("VM", ref, known=[v.name for v in self.vms.values()])

    def find_snapshot(self, vm: VM | str, ref: str | int | Snapshot) -> Snapshot:
        vm = self.find_vm(vm)
        snap = vm.find_snapshot(ref)
        if snap is None:
            raise NotFoundError("snapshot", ref, known=[s.name for s in vm.snapshots()])
        return snap

    def _disk(self, vm: VM, key: int | str) -> VirtualDiskDevice:
        d = vm.disk(key)
        if d is None:
            raise NotFoundError("disk", key, known=[str(x.key) for x in vm.disks])
        return d

    @staticmethod
    def _tools_running(vm: VM) -> bool:
        return vm.power_state == "poweredOn" and vm.tools is not None and vm.tools.state == "running"

    # -- task bookkeeping -------------------------------------------------------------------

    @contextmanager
    def _operation(self, vm: VM, op: str, *, save: bool = True) -> Iterator[None]:
        with self.lock:
            if vm.connection_state != "connected":
                raise_fault(
                    "InvalidState",
                    f"The operation '{op}' is not allowed: {vm.name} is {vm.connection_state} "
                    "(its files could not be loaded; see the datastore's start report).",
                )
            if vm.busy is not None:
                raise_fault(
                    "TaskInProgress",
                    f"The operation '{op}' is not allowed: task '{vm.busy}' is in progress on {vm.name}.",
                    task=_task_ref(f"haTask-{vm.moref}-{vm.busy}"),
                )
            leases = self.holds.on(vm.moref, "export") if len(self.holds) else []
            if leases:
                # "operations that alter the state of the virtual machines covered by the
                # lease are blocked" (API reference, HttpNfcLease; _holds.py)
                raise_fault(
                    "TaskInProgress",
                    f"The operation '{op}' is not allowed: export lease {leases[0].holder} holds "
                    f"{vm.name}; complete or abort it first (HttpNfcLeaseComplete / HttpNfcLeaseAbort).",
                    task=_task_ref(leases[0].task or f"haTask-{vm.moref}-ExportVm"),
                )
            live = [h for h in self.holds.on(vm.moref, "hotadd") if h.snapshot is None] if len(self.holds) else []
            if live and op not in ("UnregisterVM", "PowerOffVM"):
                # its disk files are open by the proxy VM they are hot-added to: "Unable to
                # access file ... since it is locked" (KB 10051; _hotadd.py) for whatever opens
                # or changes them; unregistering touches only the inventory
                files = ", ".join(d.base_name for d in vm.disks if d.key in live[0].disks)
                raise_fault(
                    "FileLocked",
                    f"The operation '{op}' is not allowed: unable to access file {files} since it is locked "
                    f"(hot-added to {live[0].holder}); remove it from that VM first.",
                    file=files,
                )
            vm.busy = op
            try:
                yield
            finally:
                vm.busy = None
                if self.store is not None and save:
                    self.store.save_vm(vm)

    def operation(self, vm: VM, op: str, *, save: bool = True) -> Any:
        """The bookkeeping of one host operation on ``vm`` (busy, connection state, saved
        afterwards unless ``save=False``): for operation modules beside this one."""
        return self._operation(vm, op, save=save)

    def crash_point(self, point: str, vm: VM | None = None) -> None:
        """An injected crash point: raises ``SimulatedCrash`` when a ``crash`` rule matches."""
        if self.faults.rules and self.faults.check("crash", point, vm=vm.moref if vm else None):
            self.trace.emit("host", "crash", vm=vm.moref if vm else None, point=point)
            raise SimulatedCrash(point)

    # -- power ------------------------------------------------------------------------------

    def power_on(self, vm: VM | str) -> None:
        vm = self.find_vm(vm)
        with self._operation(vm, "PowerOnVM"):
            if vm.power_state == "poweredOn":
                raise_fault("InvalidPowerState", state=vm.power_state, requestedState="poweredOn", existingState=vm.power_state)
            vm.power_state = "poweredOn"
            self._start_sessions(vm)
            self._stun(vm)
            self.trace.emit("host", "vm.power", vm=vm.moref, state="poweredOn")

    def power_off(self, vm: VM | str) -> None:
        vm = self.find_vm(vm)
        with self._operation(vm, "PowerOffVM"):
            if vm.power_state == "poweredOff":
                raise_fault("InvalidPowerState", state=vm.power_state, requestedState="poweredOff", existingState=vm.power_state)
            vm.power_state = "poweredOff"
            self.trace.emit("host", "vm.power", vm=vm.moref, state="poweredOff")
            self._end_sessions(vm, "power off")

    def _start_sessions(self, vm: VM) -> None:
        """A VM starts running (or a disk is hot-added to a running one): each
        ``independent_nonpersistent`` disk gets its session redo log, which takes every write
        until power off (vSphere "Virtual Disk Modes"). A resumed VM keeps the one it had."""
        for d in vm.disks:
            if d.nonpersistent and d.session_redo() is None:
                d.disk.freeze()
                base = d.base_name.rsplit("/", 1)[-1]
                d.disk.top.label = f"{vm.snapshot_dir}/{base}{SESSION_REDO_SUFFIX}"

    def _end_sessions(self, vm: VM, reason: str, *, disk: VirtualDiskDevice | None = None) -> None:
        """Power off, reset or revert (or ``disk`` hot-removed): a nonpersistent disk's
        session redo log is deleted, and with it every write since power on ("changes ... are
        discarded when you power off or reset"); the trace says how much (``disk.discard``)."""
        for d in vm.disks if disk is None else [disk]:
            redo = d.session_redo()
            if redo is None:
                continue
            grains, label = redo.grain_count, redo.label
            base = d.disk.chain()[1]
            d.disk.revert(base)
            d.disk.release(base)  # the new empty top folds into the base: nothing moves
            self.trace.emit(
                "host", "disk.discard", vm=vm.moref, disk=d.key, layer=label, grains=grains, reason=reason,
            )

    def _stun(self, vm: VM) -> None:
        """A stun/unstun cycle: pending change-tracking changes take effect (R51)."""
        if vm.change_tracking_pending is not None:
            vm.change_tracking = vm.change_tracking_pending
            vm.change_tracking_pending = None
            for d in vm.disks:
                d.disk.reset_tracking()

    def reconfigure(self, vm: VM | str, *, change_tracking: bool | None = None,
                    extra_config: dict[str, str] | None = None) -> None:
        """``ReconfigVM_Task``: change tracking takes effect at the next stun (R51);
        ``extra_config`` sets ``.vmx`` keys, an empty value removes the key (the API
        reference's ``VirtualMachineConfigSpec.extraConfig``)."""
        vm = self.find_vm(vm)
        if change_tracking is not None and not isinstance(change_tracking, bool):
            raise InvalidInputError("change_tracking", expected="True or False", got=change_tracking)
        with self._operation(vm, "ReconfigVM"):
            if extra_config:
                for key, value in extra_config.items():
                    if value == "":
                        vm.extra_config.pop(key, None)
                    else:
                        vm.extra_config[key] = value
                self.trace.emit("host", "vm.reconfigure", vm=vm.moref, changes={"extraConfig": dict(extra_config)})
            if change_tracking is not None:
                if not self.profile.change_tracking and change_tracking:
                    raise_fault(
                        "NotSupported",
                        f"Changed block tracking is not supported on {self.profile.product} {self.profile.version}.",
                    )
                # compared with what the VM will have at the next stun (a pending change
                # counts), not the active value: off then on before a stun must end on
                if change_tracking != (vm.change_tracking if vm.change_tracking_pending is None
                                       else vm.change_tracking_pending):
                    # back to the active value: nothing is left pending
                    vm.change_tracking_pending = None if change_tracking == vm.change_tracking else change_tracking
                    if vm.power_state != "poweredOn":
                        self._stun(vm)
                self.trace.emit("host", "vm.reconfigure", vm=vm.moref, changes={"changeTrackingEnabled": change_tracking})

    # -- snapshots --------------------------------------------------------------------------

    def create_snapshot(
        self,
        vm: VM | str,
        name: str,
        description: str = "",
        memory: bool = False,
        quiesce: bool = False,
        *,
        quiesce_timeout: float | None = None,
        vss_context: str = "ctx_auto",
    ) -> Snapshot:
        """``CreateSnapshot_Task``. With ``quiesce`` the seed's five steps run in the guest.

        ``quiesce_timeout`` (seconds) and ``vss_context`` come from ``CreateSnapshotEx_Task``'s
        quiesce spec (``create_snapshot_ex``): the guest's abort timer and the VSS context.

        Faults: ``ApplicationQuiesceFault`` (a pre-freeze script failed),
        ``FilesystemQuiesceFault`` (thaw failed; the snapshot is rolled back),
        ``TaskInProgress``, ``InvalidPowerState`` (memory on a powered-off VM),
        ``NoDiskSpace``, ``TooManySnapshotLevels``, ``NotSupported``.
        """
        vm = self.find_vm(vm)
        if not isinstance(name, str) or not name.strip() or len(name) > 80:
            raise_fault("InvalidName", f"The snapshot name {name!r} is not valid: expected 1 to 80 characters.", name=str(name))
        try:  # what XML, the .vmsd and the datastore can hold (simulator/_names.py)
            check_name("snapshot name", name)
        except InvalidInputError as exc:
            raise_fault("InvalidName", f"The snapshot name {name!r} is not valid: {exc}", name=name)
        check_text("description", description)
        for flag, value in (("memory", memory), ("quiesce", quiesce)):
            if not isinstance(value, bool):
                raise InvalidInputError(flag, expected="True or False", got=value)
        with self._operation(vm, "CreateSnapshot"):
            if vm.tools is not None:
                vm.tools.poll(self.clock.now)  # a 3.5-era guest the host stopped waiting for goes on
            self.trace.emit("host", "snapshot.create.start", vm=vm.moref, name=name, quiesce=quiesce, memory=memory)
            try:
                if memory and vm.power_state != "poweredOn":
                    raise_fault("InvalidPowerState", state=vm.power_state, requestedState="poweredOn", existingState=vm.power_state)
                if memory and any(d.independent for d in vm.disks):
                    # API 2.0 MemorySnapshotOnIndependentDisk: the memory would not match disks
                    # a revert leaves as they are (a physical RDM counts: independent_persistent)
                    raise_fault(
                        "MemorySnapshotOnIndependentDisk",
                        "Cannot take a memory snapshot, since the virtual machine is configured with independent disks.",
                    )
                if quiesce and not self.profile.quiesced_snapshots:
                    raise_fault("NotSupported", "Quiesced snapshots are not supported on this host.")
                if len(vm.snapshots()) >= self.profile.max_snapshots:
                    raise_fault("TooManySnapshotLevels")
                if quiesce and vm.power_state == "poweredOn":
                    assert vm.tools is not None
                    consistency, _why = self.vss_consistency(vm)
                    if vss_context == "ctx_file_share_backup":
                        consistency = "filesystem"  # no writers (R44)
                    result = vm.tools.quiesced_snapshot(
                        lambda: self._create_snapshot_now(vm, name, description, memory, True),
                        lambda s: self._rollback(vm, s),
                        clock=self.clock,
                        trace=self.trace,
                        faults=self.faults,
                        profile=self.profile,
                        vm=vm.moref,
                        on_step=self._quiesce_step_hook(vm),
                        vss_application=consistency == "application",
                        timeout=quiesce_timeout,
                    )
                    snap = result.snapshot
                    if snap is None:
                        raise_fault("SnapshotFault", result.message or "The snapshot was not created.")
                    snap.quiesced = result.quiesced
                    snap.quiesce_type = result.consistency if result.quiesced else None
                    if snap.quiesce_type == "application" and self.profile.vss_application_rules:
                        # SnapshotTree.backupManifest (API 4.0): the VSS writers' manifest beside
                        # the snapshot (file name as seen in the field, confidence L)
                        snap.backup_manifest = f"{vm.name}-vss_manifests{snap.id}.zip"
                else:
                    snap = self._create_snapshot_now(vm, name, description, memory, False)
            except SimulatedCrash:
                raise
            except BaseException as exc:
                self.trace.emit(
                    "host", "snapshot.create.fail", vm=vm.moref, name=name,
                    fault=fault_name(exc), message=str(getattr(exc, "msg", exc)),
                )
                raise
            self._stun(vm)
            return snap

    def create_snapshot_ex(
        self, vm: VM | str, name: str, description: str = "", memory: bool = False, quiesce_spec: Any = None
    ) -> Snapshot:
        """``CreateSnapshotEx_Task`` (API 6.5): ``quiesce_spec`` is a ``vim.vm.GuestQuiesceSpec``
        or ``vim.vm.WindowsQuiesceSpec`` (None: not quiesced).

        ``timeout`` is in minutes, 5 to 240 (spec R45); the host passes it to the guest as the
        ``startWithOpts`` timeout (INFERRED, spec Q13). ``vssBackupContext``: ``ctx_auto``,
        ``ctx_backup`` or ``ctx_file_share_backup`` (no writers: file-system consistent, R44).
        A Windows spec for a Linux guest gets the guest's "Incompatible quiesce parameter
        version" (R17: Linux takes only version 1 parameters).
        """
        vm = self.find_vm(vm)
        if not self.profile.quiesce_spec:
            self._refuse_call(vm, "CreateSnapshotEx_Task", "6.5")
            raise_fault(
                "MethodNotFound",
                f"CreateSnapshotEx_Task is not in vSphere API {self.profile.api_version} (it arrived in 6.5).",
                method="CreateSnapshotEx_Task", receiver=_vm_ref(vm),
            )
        if quiesce_spec is None:
            return self.create_snapshot(vm, name, description, memory, False)
        from pyVmomi import vim

        if not isinstance(quiesce_spec, vim.vm.GuestQuiesceSpec):
            raise_fault("InvalidArgument", "quiesceSpec: expected a GuestQuiesceSpec or WindowsQuiesceSpec.", invalidProperty="quiesceSpec")
        minutes = quiesce_spec.timeout
        if minutes is not None and not 5 <= minutes <= 240:
            raise_fault(
                "InvalidArgument",
                f"quiesceSpec.timeout: expected 5 to 240 minutes, got {minutes}.",
                invalidProperty="quiesceSpec.timeout",
            )
        context = "ctx_auto"
        if isinstance(quiesce_spec, vim.vm.WindowsQuiesceSpec):
            context = quiesce_spec.vssBackupContext or "ctx_auto"
            if context not in ("ctx_auto", "ctx_backup", "ctx_file_share_backup"):
                raise_fault(
                    "InvalidArgument",
                    f"quiesceSpec.vssBackupContext: expected ctx_auto, ctx_backup or ctx_file_share_backup, got {context!r}.",
                    invalidProperty="quiesceSpec.vssBackupContext",
                )
            if vm.os_family != "windows":
                raise_fault(
                    "ApplicationQuiesceFault",
                    "An error occurred while quiescing the virtual machine. The guest OS has reported an "
                    "error during quiescing. The error message was: Incompatible quiesce parameter version",
                )
        return self.create_snapshot(
            vm, name, description, memory, True,
            quiesce_timeout=float(minutes) * 60 if minutes else None, vss_context=context,
        )

    def vss_consistency(self, vm: VM | str) -> tuple[str, str]:
        """What a VSS quiesce of ``vm`` can give here: ``("application" | "filesystem", why)``.

        Windows 2003: application consistent. Windows 2008 and later (spec R42, DOC-DR): on a
        host of 4.1 on (``HostProfile.vss_application_rules``) only with ``disk.EnableUUID``,
        SCSI-only disks, as many free SCSI slots as disks, and no dynamic disks; before 4.1,
        file-system consistent. XP/2000 (SYNC driver) and Linux: file-system consistent.
        """
        vm = self.find_vm(vm)
        kind = vm.vss_kind
        if kind == "app":
            return "application", "Windows Server 2003: VSS with its writers"
        if kind != "rules":
            return "filesystem", "no VSS in this guest"
        if not self.profile.vss_application_rules:
            return "filesystem", f"Windows 2008 and later on {self.profile.product} {self.profile.version}: before 4.1"
        scsi = [d for d in vm.disks if d.controller == "scsi"]
        if vm.extra_config.get("disk.EnableUUID", "").upper() != "TRUE":
            return "filesystem", "disk.EnableUUID is not TRUE"
        if len(scsi) != len(vm.disks):
            return "filesystem", "not every disk is on a SCSI controller"
        if 15 - len(scsi) < len(scsi):
            return "filesystem", "fewer free SCSI slots than disks"
        if vm.dynamic_disks:
            return "filesystem", "the guest uses dynamic disks"
        return "application", "every condition holds"

    def _create_snapshot_now(
        self, vm: VM, name: str, description: str, memory: bool, quiesced: bool
    ) -> Snapshot:
        """Step 3 of the quiesce sequence: the host takes the snapshot (O(1) per disk)."""
        duration = self.profile.snapshot_duration
        rule = self.faults.check("snapshot.create", vm.name, vm=vm.moref) if self.faults.rules else None
        if rule is not None:
            duration += rule.delay
        self.clock.advance(duration)
        if rule is not None and rule.fault:
            raise_fault(rule.fault, rule.message, datastore=vm.datastore, file=vm.vmsd_path)
        # Redo logs and the .vmsn go to the working directory, whatever datastore each base
        # disk is on (Broadcom KB 304387), so that is the datastore that must have room.
        ds = self.datastores[datastore_of(vm.snapshot_dir)]
        snapped = [d for d in vm.disks if not d.independent]
        vmsn = VMSN_CONFIG_BYTES + (vm.memory_mb * MiB if memory else 0)
        if ds.free < len(snapped) * 64 * 1024 + vmsn:
            raise_fault("NoDiskSpace", datastore=ds.name, file=f"{vm.snapshot_dir}/{vm.name}-Snapshot{vm.next_snapshot_uid}.vmsn")
        self.crash_point("host.snapshot.before-freeze", vm)
        # Taking the snapshot stuns the VM: pending change-tracking changes take effect now,
        # so the first snapshot after enabling CBT carries the baseline change id (R51).
        self._stun(vm)
        layers: dict[int, Layer] = {}
        epochs: dict[int, int] = {}
        redo: list[str] = []
        for d in snapped:  # independent disks are not part of a snapshot
            frozen = d.disk.freeze()
            layers[d.key] = frozen
            epochs[d.key] = d.disk.epoch
            d.disk.top.label = self._delta_name(vm, d)
            redo.append(d.disk.top.label)
        vm.next_delta += 1
        snap = Snapshot(
            id=vm.next_snapshot_uid,
            moref=f"snapshot-{self._next_snapshot_moref}",
            name=name,
            description=description,
            create_time=self.clock.now,
            quiesced=quiesced,
            memory=memory,
            power_state=vm.power_state,
            layers=layers,
            epochs=epochs,
            parent=vm.current_snapshot,
            vmsn_bytes=vmsn,
        )
        vm.next_snapshot_uid += 1
        self._next_snapshot_moref += 1
        if snap.parent is None:
            vm.root_snapshots.append(snap)
        else:
            snap.parent.children.append(snap)
        vm.current_snapshot = snap
        self.trace.emit(
            "host", "snapshot.create", vm=vm.moref, step="WF-1c",
            snapshot=snap.moref, name=name, quiesced=quiesced, redo=redo,
        )
        self.crash_point("host.snapshot.after-freeze", vm)
        return snap

    def on_quiesce_step(self, callback: Callable[[VM, str], None]) -> Callable[[], None]:
        """Call ``callback(vm, step)`` after each of WF-1a … WF-1d of every quiesced snapshot
        (``VMwareTools.quiesced_snapshot``'s ``on_step``); returns the function that stops it.

        The callback runs inside ``create_snapshot`` with the host's lock held and the VM busy
        (another operation on it gets ``TaskInProgress``, as on a real host). A callback that
        waits, as ``vcbsim repl`` waits for its learner between steps, should wait on a
        ``threading.Condition(host.lock)``, which lets other threads use the host meanwhile."""
        self._quiesce_step_callbacks.append(callback)
        return lambda: self._quiesce_step_callbacks.remove(callback)

    def _quiesce_step_hook(self, vm: VM) -> Callable[[str], None] | None:
        callbacks = list(self._quiesce_step_callbacks)
        if not callbacks:
            return None

        def step_done(step: str) -> None:
            for cb in callbacks:
                cb(vm, step)

        return step_done

    def _delta_name(self, vm: VM, d: VirtualDiskDevice) -> str:
        """``<base>-NNNNNN.vmdk`` (R50) in the VM's working directory, whatever datastore the
        base disk is on (Broadcom KB 304387); the sequence is per VM, shared by its disks."""
        base = d.base_name.rsplit("/", 1)[-1][: -len(".vmdk")]
        return f"{vm.snapshot_dir}/{base}-{vm.next_delta:06d}.vmdk"

    def delta_extent_suffix(self, d: VirtualDiskDevice) -> str:
        """``-delta.vmdk`` (VMFSsparse) or ``-sesparse.vmdk`` (SEsparse), per R50."""
        if self.profile.delta_format == "sesparse" or d.capacity >= self.profile.sesparse_threshold:
            return "-sesparse.vmdk"
        return "-delta.vmdk"

    def _rollback(self, vm: VM, snap: Snapshot) -> None:
        """Undo a just-created snapshot (FilesystemQuiesceFault path, F7)."""
        self._remove(vm, snap, remove_children=False, consolidate=True, reason="rollback")

    def remove_snapshot(
        self, vm: VM | str, snapshot: str | int | Snapshot, *, remove_children: bool = False, consolidate: bool = True
    ) -> MergeStats:
        """``RemoveSnapshot_Task``: the snapshot goes; its redo logs merge (the seed's step 3b).

        ``consolidate=False`` exists from API 5.0 (R48); a 2.5 host refuses it. A merge that
        fails (fault rule ``consolidate``, e.g. ``FileLocked`` for a disk a proxy still holds)
        leaves ``consolidationNeeded`` on hosts of 6.0 on, and a ``Consolidate Helper-0``
        snapshot on older ones (``HostProfile.consolidate_helper``, R49).
        """
        vm = self.find_vm(vm)
        snap = self.find_snapshot(vm, snapshot)
        self._require_consolidate_api(vm, "RemoveSnapshot_Task", consolidate)
        with self._operation(vm, "RemoveSnapshot"):
            rule = self.faults.check("snapshot.remove", vm.name, vm=vm.moref) if self.faults.rules else None
            if rule is not None:
                self.clock.advance(rule.delay)
                if rule.fault:
                    raise_fault(rule.fault, rule.message, datastore=vm.datastore, file=vm.vmsd_path)
            stats = self._remove(vm, snap, remove_children=remove_children, consolidate=consolidate, reason="remove")
            self._stun(vm)
            return stats

    def _remove(self, vm: VM, snap: Snapshot, *, remove_children: bool, consolidate: bool, reason: str) -> MergeStats:
        doomed = snap.walk() if remove_children else [snap]
        total = MergeStats()
        for s in reversed(doomed):
            parent = s.parent
            siblings = parent.children if parent is not None else vm.root_snapshots
            idx = siblings.index(s)
            siblings[idx : idx + 1] = [c for c in s.children if c not in doomed]
            for c in s.children:
                if c not in doomed:
                    c.parent = parent
            if vm.current_snapshot is s:
                vm.current_snapshot = parent
            kind = "snapshot.rollback" if reason == "rollback" else "snapshot.remove"
            details: dict[str, Any] = {"snapshot": s.moref, "name": s.name}
            if reason == "rollback":
                details["reason"] = "thaw failed"
            else:
                details["consolidate"] = consolidate
            # The snapshot leaves the tree before its redo logs merge: a failed merge leaves
            # "consolidation needed", not a snapshot (R48).
            self.trace.emit("host", kind, vm=vm.moref, step="WF-3b", **details)
            live = [
                (d, s.layers[d.key]) for d in vm.disks
                if d.key in s.layers and s.layers[d.key].alive and not s.layers[d.key].released
            ]
            rule = self._consolidate_rule(vm) if consolidate and live else None
            if consolidate and live and (rule is None or not rule.fault):
                rule = self._hotadd_lock(vm) or rule
            if rule is not None and rule.fault:
                self._commit_failed(vm, live, rule)
            for d, layer in live:
                if consolidate:
                    total = self._merge_cost(vm, d, d.disk.release(layer), total)
                    if self.profile.consolidate_helper:
                        # committing through the helper merges what an earlier failed commit left
                        total = self._merge_cost(vm, d, d.disk.consolidate(), total)
                else:
                    d.disk.release(layer, merge=False)
            if not consolidate:
                vm.consolidation_needed = True
        self.refresh_consolidation(vm)
        return total

    def _consolidate_rule(self, vm: VM) -> FaultRule | None:
        """The ``consolidate`` fault rule, consulted once before a merge starts."""
        rule = self.faults.check("consolidate", vm.name, vm=vm.moref) if self.faults.rules else None
        if rule is not None:
            self.clock.advance(rule.delay)
        return rule

    def _hotadd_lock(self, vm: VM) -> FaultRule | None:
        """A commit into base disks another VM has open (hot-added to a proxy) fails with
        ``FileLocked``, as the consolidate fault rule would (``_holds.py``)."""
        held = self.holds.on(vm.moref, "hotadd") if len(self.holds) else []
        if not held:
            return None
        files = ", ".join(d.base_name for d in vm.disks if d.key in held[0].disks) or vm.vmx_path
        return FaultRule(
            "consolidate", vm.name, fault="FileLocked",
            message=f"Unable to access file {files} since it is locked (hot-added to {held[0].holder}).",
        )

    def _commit_failed(self, vm: VM, live: list[tuple[VirtualDiskDevice, Layer]], rule: FaultRule) -> None:
        """A commit that fails part-way: the snapshot is already out of the tree, its redo logs
        stay. 6.0 on: ``consolidationNeeded`` (R48). Before: the ``Consolidate Helper-0``
        snapshot the commit ran through stays (R49). Raises the rule's fault."""
        for d, layer in live:
            d.disk.release(layer, merge=False)
        if self.profile.consolidate_helper:
            self._helper_snapshot(vm)
        else:
            vm.consolidation_needed = True
        raise_fault(rule.fault or "SnapshotFault", rule.message, datastore=vm.datastore, file=vm.vmsd_path)

    def _helper_snapshot(self, vm: VM) -> Snapshot:
        """The ``Consolidate Helper-0`` snapshot: a redo log on every disk, so the VM writes on
        while the older redo logs are committed below it (R49)."""
        layers: dict[int, Layer] = {}
        epochs: dict[int, int] = {}
        redo: list[str] = []
        for d in vm.disks:
            if d.independent:
                continue
            layers[d.key] = d.disk.freeze()
            epochs[d.key] = d.disk.epoch
            d.disk.top.label = self._delta_name(vm, d)
            redo.append(d.disk.top.label)
        vm.next_delta += 1
        snap = Snapshot(
            id=vm.next_snapshot_uid, moref=f"snapshot-{self._next_snapshot_moref}", name=CONSOLIDATE_HELPER,
            description="", create_time=self.clock.now, quiesced=False, memory=False,
            power_state=vm.power_state, layers=layers, epochs=epochs, parent=vm.current_snapshot,
            vmsn_bytes=VMSN_CONFIG_BYTES,
        )
        vm.next_snapshot_uid += 1
        self._next_snapshot_moref += 1
        (snap.parent.children if snap.parent is not None else vm.root_snapshots).append(snap)
        vm.current_snapshot = snap
        self.trace.emit(
            "host", "snapshot.create", vm=vm.moref, step="WF-3b",
            snapshot=snap.moref, name=snap.name, quiesced=False, redo=redo,
        )
        return snap

    def _refuse_call(self, vm: VM, method: str, since: str, parameter: str | None = None) -> None:
        """Record that this host refused a call its profile's API lacks (``host.call.refused``),
        before the fault is raised: the host's own fact, so the kit judges a product relying on
        a later API (CMT-CONSOLIDATE) from the trace, not from the job's failure it causes."""
        details: dict[str, Any] = {"method": method, "api_version": self.profile.api_version, "since": since}
        if parameter is not None:
            details["parameter"] = parameter
        self.trace.emit("host", "host.call.refused", vm=vm.moref, **details)

    def _require_consolidate_api(self, vm: VM, method: str, consolidate: bool) -> None:
        if not consolidate and not self.profile.api_consolidation:
            self._refuse_call(vm, method, "5.0", parameter="consolidate")
            raise_fault(
                "InvalidArgument",
                f"RemoveSnapshot_Task has no 'consolidate' parameter before vSphere API 5.0; "
                f"this host speaks API {self.profile.api_version}.",
                invalidProperty="consolidate",
            )

    def _merge_cost(self, vm: VM, d: VirtualDiskDevice, stats: MergeStats, total: MergeStats) -> MergeStats:
        if stats.grains_moved or stats.layers_removed:
            delay = stats.grains_moved / self.profile.merge_grains_per_second
            self.clock.advance(delay)
            for merged, into in stats.merges:
                self.trace.emit("host", "disk.consolidate", vm=vm.moref, disk=d.key, layer=merged, into=into)
            if stats.merges:
                self.trace.emit("host", "note", vm=vm.moref, text=f"disk {d.key}: {stats.grains_moved} grains moved in {delay:.3f} virtual s")
        return total + stats

    def refresh_consolidation(self, vm: VM) -> None:
        """Recompute ``vm.consolidation_needed`` from its disks (released layers no snapshot
        holds); after an operation, or after loading a VM from a datastore."""
        if not self.profile.api_consolidation:
            # API 2.5 has no consolidationNeeded: what a failed commit left waits below the
            # Consolidate Helper-0 snapshot, and removing that snapshot commits it (R49).
            vm.consolidation_needed = False
            return
        held = {id(layer) for s in vm.snapshots() for layer in s.layers.values()}
        vm.consolidation_needed = any(
            layer.released and id(layer) not in held and len(layer.children) <= 1
            for d in vm.disks
            for layer in d.disk.layers()
        )

    def remove_all_snapshots(self, vm: VM | str, *, consolidate: bool = True) -> MergeStats:
        """``RemoveAllSnapshots_Task``: succeeds trivially when there are none (R48)."""
        vm = self.find_vm(vm)
        self._require_consolidate_api(vm, "RemoveAllSnapshots_Task", consolidate)
        total = MergeStats()
        while vm.root_snapshots:
            stats = self.remove_snapshot(vm, vm.root_snapshots[-1], remove_children=True, consolidate=consolidate)
            total = total + stats
        return total

    def revert_to_snapshot(self, vm: VM | str, snapshot: str | int | Snapshot) -> None:
        """``RevertToSnapshot_Task``: the writes since the snapshot are discarded."""
        vm = self.find_vm(vm)
        snap = self.find_snapshot(vm, snapshot)
        with self._operation(vm, "RevertToSnapshot"):
            for d in vm.disks:
                if d.key not in snap.layers:
                    continue  # an independent disk keeps its state (it is in no snapshot)
                d.disk.revert(snap.layers[d.key])
                d.disk.top.label = self._delta_name(vm, d)
            vm.next_delta += 1
            vm.current_snapshot = snap
            # the running VM is gone: a nonpersistent disk loses its session's writes, and
            # a VM reverted to a running state starts a new session
            self._end_sessions(vm, "revert")
            vm.power_state = snap.power_state if snap.memory else "poweredOff"
            if vm.power_state == "poweredOn":
                self._start_sessions(vm)
            self.refresh_consolidation(vm)
            self._stun(vm)
            self.trace.emit("host", "snapshot.revert", vm=vm.moref, snapshot=snap.moref, name=snap.name)

    def consolidate_disks(self, vm: VM | str) -> MergeStats:
        """``ConsolidateVMDisks_Task`` (API 5.0): merge redo logs left by removals without
        consolidation or by a failed commit. A 2.5 host has no such method. A failure (fault
        rule ``consolidate``) merges nothing and leaves ``consolidationNeeded`` as it was."""
        vm = self.find_vm(vm)
        if not self.profile.api_consolidation:
            self._refuse_call(vm, "ConsolidateVMDisks_Task", "5.0")
            raise_fault(
                "MethodNotFound",
                f"ConsolidateVMDisks_Task is not in vSphere API {self.profile.api_version} (it arrived in 5.0).",
                method="ConsolidateVMDisks_Task", receiver=_vm_ref(vm),
            )
        with self._operation(vm, "ConsolidateVMDisks"):
            rule = self._consolidate_rule(vm) if vm.consolidation_needed else None
            if vm.consolidation_needed and (rule is None or not rule.fault):
                rule = self._hotadd_lock(vm) or rule
            if rule is not None and rule.fault:
                raise_fault(rule.fault, rule.message, datastore=vm.datastore, file=vm.vmsd_path)
            total = MergeStats()
            for d in vm.disks:
                total = self._merge_cost(vm, d, d.disk.consolidate(), total)
            self.refresh_consolidation(vm)
            return total

    # -- disks as of a snapshot ---------------------------------------------------------------

    def disk_view(self, vm: VM | str, disk_key: int | str, snapshot: str | int | Snapshot | None = None) -> LayerView:
        """A read-only block device of one disk as of ``snapshot`` (or the live disk)."""
        vm = self.find_vm(vm)
        d = self._disk(vm, disk_key)
        # An independent disk is in no snapshot: its backing in the snapshot's configuration is
        # the live disk, so that is what reading it "as of" the snapshot gives.
        layer = None if snapshot is None else self.find_snapshot(vm, snapshot).layers.get(d.key)
        if layer is not None and not layer.alive:
            msg = f"the redo log of snapshot {snapshot!r} was already merged away"
            raise StateError(msg)
        return d.disk.view(layer)

    def read_disk(
        self, vm: VM | str, disk_key: int | str, offset: int, length: int, snapshot: str | int | Snapshot | None = None
    ) -> bytes:
        vm = self.find_vm(vm)
        if self.faults.rules:
            rule = self.faults.check("disk.read", vm.name, vm=vm.moref)
            if rule is not None and rule.fault:
                raise_fault(rule.fault, rule.message, datastore=vm.datastore)
        return self.disk_view(vm, disk_key, snapshot).read(offset, length)

    def query_changed_disk_areas(
        self,
        vm: VM | str,
        snapshot: str | int | Snapshot | None,
        disk_key: int,
        start_offset: int,
        change_id: str,
    ) -> DiskChangeInfo:
        """``QueryChangedDiskAreas``: one window of changed (or, for ``"*"``, allocated) areas.

        Over-reports, never under-reports (R51-R52). A stale or foreign change id raises
        ``InvalidArgument``, and callers fall back to ``"*"``.
        """
        vm = self.find_vm(vm)
        d = self._disk(vm, disk_key)
        snap = None if snapshot is None else self.find_snapshot(vm, snapshot)
        if not vm.change_tracking:
            raise_fault("NotSupported", "Changed block tracking is not enabled on this virtual machine.")
        if d.physical_rdm:  # KB 1020128: no CBT on a physical RDM (the fault: a profile switch)
            raise_fault(
                self.profile.physical_rdm_cbt_fault, f"Error caused by file {d.base_name}: changed block "
                "tracking is not available on a physical compatibility RDM.", file=d.base_name,
            )
        if not isinstance(start_offset, int) or not 0 <= start_offset < d.capacity:
            raise_fault("InvalidArgument", f"startOffset {start_offset!r} is outside the disk (0..{d.capacity - 1}).", invalidProperty="startOffset")
        at = snap.layers.get(d.key) if snap else None
        if change_id == "*" and d.rdm is not None:
            # a LUN has no VMFS file holes: "*" answers "a single extent covering the entire
            # disk" (VDDK guide, "About Changed Block Tracking": CBT's allocation relies on
            # VMFS; a full backup of an RDM reads it all)
            areas = [(0, d.capacity)]
        elif change_id == "*":
            areas = [(o, n) for o, n in d.disk.allocated_areas(at) if o + n > start_offset]
        else:
            prefix, _, seq = change_id.rpartition("/")
            if prefix != d.change_id_prefix or not seq.isdigit() or int(seq) < d.disk.tracking_start or int(seq) > d.disk.epoch:
                raise_fault("InvalidArgument", f"changeId {change_id!r} is not valid for this disk; use '*'.", invalidProperty="changeId")
            areas = d.disk.changed_areas(int(seq), at, start_offset)
        # one window of at most 512 areas, as real hosts page results
        window = areas[:512]
        end = d.capacity if len(areas) <= 512 else window[-1][0] + window[-1][1]
        return DiskChangeInfo(start_offset, end - start_offset, tuple(window))

    def change_id(self, vm: VM | str, disk_key: int, snapshot: str | int | Snapshot | None = None) -> str | None:
        """The change id a disk backing shows (as of a snapshot), or None without CBT."""
        vm = self.find_vm(vm)
        if not vm.change_tracking:
            return None
        d = self._disk(vm, disk_key)
        if d.physical_rdm:
            return None  # KB 1020128: a physical RDM is not tracked
        if snapshot is None:
            return d.change_id(d.disk.epoch)
        snap = self.find_snapshot(vm, snapshot)
        return d.change_id(snap.epochs.get(d.key, d.disk.epoch))

    # -- VM life cycle and disk files (simulator/_vmlifecycle.py) -----------------------------

    def create_vm(self, name: str, *, datastore: str, guest_id: str | None = None, memory_mb: int = 1024,
                  num_cpus: int = 1, disks: Sequence[DiskSpec] = (), extra_config: dict[str, str] | None = None) -> VM:
        """``Folder.CreateVM_Task``: a new powered-off VM with new or existing disk files."""
        from ._vmlifecycle import create_vm

        return create_vm(self, name, datastore=datastore, guest_id=guest_id, memory_mb=memory_mb,
                         num_cpus=num_cpus, disks=disks, extra_config=extra_config)

    def register_vm(self, vmx_path: str, *, name: str | None = None) -> VM:
        """``Folder.RegisterVM_Task``: the VM whose ``.vmx`` is at ``vmx_path``."""
        from ._vmlifecycle import register_vm

        return register_vm(self, vmx_path, name=name)

    def unregister_vm(self, vm: VM | str) -> None:
        """``VirtualMachine.UnregisterVM``: out of the inventory, files kept."""
        from ._vmlifecycle import unregister_vm

        unregister_vm(self, self.find_vm(vm))

    def destroy_vm(self, vm: VM | str) -> None:
        """``VirtualMachine.Destroy_Task``: out of the inventory, files deleted."""
        from ._vmlifecycle import destroy_vm

        destroy_vm(self, self.find_vm(vm))

    def add_disk(self, vm: VM | str, spec: DiskSpec) -> VirtualDiskDevice:
        """``ReconfigVM_Task`` deviceChange ``add`` of a ``VirtualDisk``."""
        from ._vmlifecycle import add_disk

        return add_disk(self, self.find_vm(vm), spec)

    def remove_disk(self, vm: VM | str, disk_key: int, *, destroy: bool = False) -> None:
        """``ReconfigVM_Task`` deviceChange ``remove`` of a ``VirtualDisk``."""
        from ._vmlifecycle import remove_disk

        remove_disk(self, self.find_vm(vm), disk_key, destroy=destroy)

    def create_virtual_disk(self, path: str, capacity: int, *, adapter: str = "lsilogic") -> str:
        """``VirtualDiskManager.CreateVirtualDisk_Task``."""
        from ._vmlifecycle import create_virtual_disk

        return create_virtual_disk(self, path, capacity, adapter=adapter)

    def copy_virtual_disk(self, source: str, dest: str, *, force: bool = False) -> str:
        """``VirtualDiskManager.CopyVirtualDisk_Task``."""
        from ._vmlifecycle import copy_virtual_disk

        return copy_virtual_disk(self, source, dest, force=force)

    def delete_virtual_disk(self, path: str) -> None:
        """``VirtualDiskManager.DeleteVirtualDisk_Task``."""
        from ._vmlifecycle import delete_virtual_disk

        delete_virtual_disk(self, path)

    def new_vm_record(self, name: str, *, datastore: str, guest_os: str, memory_mb: int = 1024,
                      uuid: str | None = None) -> VM:
        """A VM object with the next moref, not yet registered (``_vmlifecycle`` fills its disks
        and registers it). Tools are those of a guest not yet seen: ``not-running``."""
        from .tools import MemoryGuestFiles, VMwareTools

        family = GUEST_OS[guest_os][2]
        with self.lock:
            moref = f"vm-{self._next_moref}"
            self._next_moref += 1
        vm = VM(
            name=name, moref=moref, uuid=uuid or self.random.uuid(), instance_uuid=self.random.uuid(),
            os_family=family,  # type: ignore[arg-type]
            datastore=datastore, directory=f"[{datastore}] {name}", memory_mb=memory_mb,
            power_state="poweredOff", hostname=f"{name}.vcbsim.test",
            hw_version=4 if self.profile.version.startswith("3.") else 19, guest_os=guest_os,
        )
        vm.tools = VMwareTools(MemoryGuestFiles(family), state="not-running")
        return vm

    def detach_vm(self, vm: VM, *, delete_files: bool = False) -> None:
        """Take ``vm`` out of the inventory (unregister; with ``delete_files`` destroy)."""
        with self.lock:
            self.vms.pop(vm.moref, None)
            self.faults.aliases.pop(vm.moref, None)
            if self.store is not None:
                if delete_files:
                    self.store.destroy_vm(vm)
                else:
                    self.store.unregister_vm(vm)

    def reattach_vm(self, vm: VM) -> None:
        """Put an unregistered VM back in the inventory (register of its kept ``.vmx``)."""
        with self.lock:
            self.vms[vm.moref] = vm
            self.faults.aliases[vm.moref] = vm.name
            if self.store is not None:
                self.store.save_vm(vm)

    # -- guest --------------------------------------------------------------------------------

    def advance(self, seconds: float) -> float:
        """Let ``seconds`` of virtual time pass on the host: the clock moves, then every guest
        catches up with work that ended meanwhile (a 3.5-era quiesce the host had stopped
        waiting for, ``VMwareTools.poll``). Returns the new time."""
        with self.lock:
            now = self.clock.advance(seconds)
            for vm in self.vms.values():
                if vm.tools is not None:
                    vm.tools.poll(now)
            return self.clock.now

    def guest_fs(self, vm: VM | str) -> Any:
        """The live guest file system (writes land in the top redo log)."""
        vm = self.find_vm(vm)
        if vm.guest is None:
            msg = f"VM {vm.name!r} has no guest file system; build it with add_guest_volumes()"
            raise StateError(msg)
        if vm.tools is not None and vm.tools.frozen:
            msg = f"VM {vm.name!r} is quiesced: guest writes are held until thaw"
            raise StateError(msg)
        return vm.guest

    def guest_fs_at(self, vm: VM | str, snapshot: str | int | Snapshot) -> Any:
        """The guest's file systems as of a snapshot, read-only (what a file-level mount shows)."""
        vm = self.find_vm(vm)
        snap = self.find_snapshot(vm, snapshot)
        if vm.guest is None:
            msg = f"VM {vm.name!r} has no guest file system"
            raise StateError(msg)
        from ._guestbuild import guest_at

        return guest_at(self, vm, snap)

    # -- datastore files -----------------------------------------------------------------------

    def datastore_files(self, vm: VM | str) -> dict[str, Callable[[], bytes]]:
        """Text files of a VM's directory (``.vmx``, ``.vmsd``, disk descriptors)."""
        vm = self.find_vm(vm)
        files: dict[str, Callable[[], bytes]] = {
            vm.vmx_path: lambda: vm.vmx_text().encode(),
            vm.vmsd_path: lambda: vm.vmsd_text().encode(),
        }
        for d in vm.disks:
            chain = d.backing_chain()  # a session redo log is no descriptor of the disk
            for i, layer in enumerate(chain):
                parent = chain[i + 1] if i + 1 < len(chain) else None
                files[layer.label] = self._descriptor_reader(vm, d, layer, parent)
        return files

    def _descriptor_reader(
        self, vm: VM, d: VirtualDiskDevice, layer: Layer, parent: Layer | None
    ) -> Callable[[], bytes]:
        from .disk import render_descriptor

        def read() -> bytes:
            if parent is None and d.rdm is not None:  # the mapping file (simulator/_rdm.py)
                from ._rdm import rdm_descriptor

                name = layer.label.rsplit("/", 1)[-1]
                return rdm_descriptor(name, d.capacity, d.rdm, hw_version=vm.hw_version).encode()
            create_type = "vmfs"
            if parent is not None:
                create_type = "seSparse" if self.delta_extent_suffix(d) == "-sesparse.vmdk" else "vmfsSparse"
            return render_descriptor(
                layer.label.rsplit("/", 1)[-1],
                d.capacity,
                create_type=create_type,
                parent=file_ref(parent.label, layer.label.rpartition("/")[0]) if parent else None,
                hw_version=vm.hw_version,
            ).encode()

        return read

    # -- inspection ----------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        """The whole host state as plain data (the REPL, the control API and bug reports)."""
        return {
            "host": self.name,
            "profile": self.profile.name,
            "seed": self.seed,
            "time": self.clock.datetime().isoformat(),
            "datastores": [{"name": d.name, "capacity": d.capacity, "used": d.used} for d in self.datastores.values()],
            "vms": [vm.summary() for vm in self.vms.values()],
            "faults": [r.to_dict() for r in self.faults.rules],
            "recovery": None if self.recovery_report is None else self.recovery_report.to_dict(),
            "events": len(self.trace),
        }

    def add_fault(self, rule: FaultRule | None = None, /, **kwargs: Any) -> FaultRule:
        """Arm a fault rule (see ``vcbsim.simulator.OPERATIONS``)."""
        return self.faults.add(rule, **kwargs)

    def make_fault(self, name: str, message: str | None = None, **fields: Any) -> Any:
        return make_fault(name, message, **fields)

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.profile.name} vms={len(self.vms)}>"
