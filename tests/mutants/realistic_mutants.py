"""Realistic vendor bugs, plugged in through the public adapter seams only (issue 11).

Each bug is one a vendor's engineer could ship: it passes a quick manual test (a backup of an
idle VM with no scripts), and shows only under a precondition. None is a variant of the
mutants in ``toy_proxy.py`` / ``guest_agents.py``; each is built the way a vendor builds a
product (docs/vendor-howto.md):

- **proxies** from the reference proxy's documented hooks: a ``BackupProxy`` subclass given to
  ``ReferenceOrchestrator(proxy_factory=...)``, or the vendor's own backup medium (a
  ``vcbsim.reference.Catalog`` subclass) behind it;
- **image products** written from the how-to's ``ToyBackup`` (the ``Orchestrator`` protocol over
  the ``HostClient`` seam);
- **guest agents** given to ``guest_agent_factory`` (``vcbsim conform --guest-agent``): the
  public ``VMwareTools`` with one public method overridden (``scripts``, ``abort_timeout``), or
  reading the guest through its own view of the guest's files (``GuestFiles``).

``REALISTIC`` maps each bug's name to ``Bug(factory, agent, host_profile, rules)``: the rules
any one of which a rejection must name (the rule the bug breaks, and for a few the rule the
same defect breaks first on another path). ``test_realistic_mutants.py`` runs each through
``quick`` with seeds 0 to 3, as the acceptance run does.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vcbsim.conformance import Capabilities, JobResult, ReferenceOrchestrator
from vcbsim.conformance._adapters import image_digest
from vcbsim.reference import BackupProxy, Catalog
from vcbsim.simulator.tools import ScriptEntry, ScriptPlan, VMwareTools

GRAIN = 64 * 1024


@dataclass(frozen=True)
class Bug:
    """One realistic bug: how to build it, where it shows, and the rules a rejection may name."""

    factory: Callable[[], Any]
    agent: Callable[[Any], Any] | None
    host_profile: str
    rules: tuple[str, ...]
    doc: str = ""


# ============================================================================ proxies (hooks)


def _proxy(cls: type[BackupProxy]) -> type[ReferenceOrchestrator]:
    """``ReferenceOrchestrator(proxy_factory=cls)`` as a class ``run()`` calls per case (importable
    by name from this module, so a printed reproducer runs)."""

    def __init__(self: ReferenceOrchestrator) -> None:
        ReferenceOrchestrator.__init__(self, lambda client, root: cls(client, root), name=cls.__name__)

    orch = type(cls.__name__ + "Product", (ReferenceOrchestrator,),
                {"__init__": __init__, "__module__": __name__, "__doc__": cls.__doc__})
    globals()[orch.__name__] = orch
    return orch


class CommitSkippedWhenUnmountFails(BackupProxy):
    """WF-3b is skipped when the unmount (WF-3a) fails: the vendor "does not touch a VM whose
    proxy state is unclear" and leaves the snapshot for the next run. The VM runs on its redo
    log until then (rule CLN-NO-SNAPSHOT-LEFT: a failed job still removes its snapshot)."""

    def post_backup(self, vm: Any, result: Any) -> None:
        if result.path is not None and self.client.check_fault("unmount", f"{vm.name}:{Path(result.path).name}",
                                                               vm=vm.moref) is not None:
            result.failed_step, result.fault, result.reason = "WF-3a", "FileFault", "unmount failed"
            result.status = "failed"
            import shutil

            shutil.rmtree(result.path, ignore_errors=True)
            self.client.trace.emit("proxy", "unmount", vm=vm.moref, path=result.path)
            return  # the snapshot stays: the next run's cleanup removes it
        super().post_backup(vm, result)


class RetriesASlowSnapshot(BackupProxy):
    """A client-side timeout of 15 s on CreateSnapshot: a slower snapshot is taken to have
    failed and is asked again, without looking for the first one, which stays on the VM (rules
    EV-OUTCOME-TRUE / CLN-NO-SNAPSHOT-LEFT)."""

    def pre_backup(self, vm: Any, result: Any) -> bool:
        started = self.client.clock.now
        ok = super().pre_backup(vm, result)
        if ok and self.client.clock.now - started > 15.0:
            result.snapshot_id = None  # "timed out": the first snapshot is forgotten
            return super().pre_backup(vm, result)
        return ok


class LeavesTheLinuxExportFolder(BackupProxy):
    """The export folder of a Linux guest is never deleted (the vendor's cleanup walks the
    folder with Windows path rules and misses it), though the unmount is announced; each run
    exports to a new folder, so nothing fails (rules WF-3a, CLN-NO-MOUNT-LEFT)."""

    _runs = itertools.count(1)

    def export_path(self, vm: Any) -> Path:
        if vm.is_windows:
            return super().export_path(vm)
        if getattr(self, "_current", None) is None:
            self._current = self.root / f"{vm.name}-fullVM-{next(self._runs)}"
        return self._current

    def post_backup(self, vm: Any, result: Any) -> None:
        if vm.is_windows or result.path is None:
            super().post_backup(vm, result)
            return
        self._current = None
        self.client.trace.emit("proxy", "unmount", vm=vm.moref, path=result.path)
        result.path = None  # "unmounted": the folder stays
        super().post_backup(vm, result)


class CommitsFirstAfterACopyFailure(BackupProxy):
    """On the copy-failure path the vendor's error handler removes the snapshot first ("free
    the VM as soon as possible") and unmounts afterwards; the success path is right (rule
    WF-3a)."""

    def post_backup(self, vm: Any, result: Any) -> None:
        if result.failed_step == "WF-2" and result.snapshot_id is not None:
            op_id = self.ops.invoke(vm, "WF-3b", "remove-snapshot", snapshot=result.snapshot_id)
            self.client.remove_snapshot(vm.moref, result.snapshot_id, consolidate=True)
            self.ops.ok(vm, "WF-3b", "remove-snapshot", op_id, result, snapshot=result.snapshot_id)
            result.snapshot_id = None
        super().post_backup(vm, result)


class NeverQuiescesFileLevel(BackupProxy):
    """File-level jobs take an unquiesced snapshot ("a file copy does not need VSS") while the
    product declares application-consistent backups; the trace says ``quiesce=False`` (rule
    WF-1b: no silent downgrade)."""

    def pre_backup(self, vm: Any, result: Any) -> bool:
        self.quiesce = result.type != "file"
        try:
            return super().pre_backup(vm, result)
        finally:
            self.quiesce = True


# ============================================================================ the vendor's medium


class _VendorOrchestrator(ReferenceOrchestrator):
    """The reference proxy in front of the vendor's own medium (a ``Catalog`` subclass)."""

    catalog_cls: type[Catalog] = Catalog

    def backup(self, host: Any, vm_name: str, policy: Any) -> JobResult:
        if self._catalog is None:
            self._catalog = self.catalog_cls(self._root / "catalog")
        return super().backup(host, vm_name, policy)


def _medium(cls: type[Catalog]) -> type[ReferenceOrchestrator]:
    def __init__(self: ReferenceOrchestrator) -> None:
        _VendorOrchestrator.__init__(self, name=cls.__name__)

    orch = type(cls.__name__ + "Product", (_VendorOrchestrator,),
                {"catalog_cls": cls, "__init__": __init__, "__module__": __name__, "__doc__": cls.__doc__})
    globals()[orch.__name__] = orch
    return orch


class IncrementalBaseIsTheLastAttempt(Catalog):
    """An incremental's base is the last backup *attempted* (the catalog's newest record of the
    VM), also one that failed and holds nothing: the next incremental copies everything, or
    misses what the failed one was meant to take (rule BK-INCR-SINCE-LAST), and the vendor's
    own restore of it fails on a chain through the failed record (rule EV-DECLARED-WORKS: the
    declared restore does not work)."""

    def reference_for(self, vm_uuid: str, kind: str) -> Any:
        if kind != "incremental":
            return super().reference_for(vm_uuid, kind)
        row = self.db.execute("SELECT * FROM backups WHERE vm_uuid = ? AND kind IN ('full', 'incremental') "
                              "AND status != 'running' ORDER BY id DESC LIMIT 1", (vm_uuid,)).fetchone()
        return None if row is None else self._record(row)


class DifferentialResetsTheArchiveBit(Catalog):
    """A differential "resets the archive bit": the next differential is taken since it rather
    than since the last full, so a second differential in a row misses what the first held
    (rule BK-DIFF-SINCE-FULL)."""

    def reference_for(self, vm_uuid: str, kind: str) -> Any:
        if kind != "differential":
            return super().reference_for(vm_uuid, kind)
        row = self.db.execute("SELECT * FROM backups WHERE vm_uuid = ? AND kind IN ('full', 'differential') "
                              "AND status = 'complete' ORDER BY id DESC LIMIT 1", (vm_uuid,)).fetchone()
        return None if row is None else self._record(row)


class _Filtered:
    """A snapshot volume whose walk leaves out what ``keep(path, entry)`` refuses."""

    def __init__(self, vol: Any, keep: Callable[[str, Any], bool]) -> None:
        self._vol, self._keep = vol, keep

    def walk(self) -> Iterator[Any]:
        return (g for g in self._vol.walk() if g.is_dir or self._keep(g.path, g))

    def read_bytes(self, path: str) -> bytes:
        return bytes(self._vol.read_bytes(path))


def _filtering(name: str, keep: Callable[[str, Any], bool], doc: str) -> type[Catalog]:
    def file_backup(self: Catalog, **kw: Any) -> Any:
        if kw.get("volumes") is not None:
            kw["volumes"] = {k: _Filtered(v, keep) for k, v in kw["volumes"].items()}
        return Catalog.file_backup(self, **kw)

    return type(name, (Catalog,), {"file_backup": file_backup, "__doc__": doc})


SkipsEmptyFiles = _filtering(
    "SkipsEmptyFiles", lambda p, g: g.size > 0,
    """Zero-length files are not copied ("nothing to back up"), so a restore lacks them: an
    empty lock or marker file an application needs is gone (rule CMT-BACKUP-CONTENT).""")
DropsNonAsciiNames = _filtering(
    "DropsNonAsciiNames", lambda p, g: p.isascii(),
    """Files whose names are not ASCII are skipped (the vendor's medium stores names in a
    code page and drops what it cannot encode) (rule CMT-BACKUP-CONTENT).""")
DropsDeepFiles = _filtering(
    "DropsDeepFiles", lambda p, g: p.count("/") < 5,
    """Files more than five folders deep are skipped (a fixed-depth directory walk) (rule
    CMT-BACKUP-CONTENT).""")
DropsLongNames = _filtering(
    "DropsLongNames", lambda p, g: len(p.rsplit("/", 1)[-1]) <= 64,
    """Files whose names are longer than 64 characters are skipped (a fixed-size name field in
    the vendor's catalog) (rule CMT-BACKUP-CONTENT).""")


class PartialBackupAfterACopyError(Catalog):
    """When a file cannot be copied, the vendor backs up the volumes that still can be and
    reports success ("partial success is success"): the volume of the failed file is missing
    from the backup, and the changed files on it from the incremental's copy (rules
    CMT-BACKUP-CONTENT, BK-INCR-SINCE-LAST; EV-OUTCOME-TRUE)."""

    def file_backup(self, **kw: Any) -> Any:
        failed: list[str] = []
        before = kw.get("before_copy")

        def noting(path: str) -> None:
            try:
                if before is not None:
                    before(path)
            except Exception:
                failed.append(path)
                raise

        try:
            return super().file_backup(**{**kw, "before_copy": noting})
        except Exception:
            if not failed or kw.get("volumes") is None or len(kw["volumes"]) < 2:
                raise
            rest = {k: v for k, v in kw["volumes"].items() if k.upper() != failed[0][:1].upper()}
            return super().file_backup(**{**kw, "volumes": rest, "before_copy": None})


class RestoresWithoutTimestamps(Catalog):
    """The restore writes each file's content but not its modification time (the vendor's
    restore streams the bytes and forgets the metadata): every restored file has today's
    date, and the next incremental of a restored guest copies everything (rule
    CMT-BACKUP-CONTENT: the backup equals the guest as of the snapshot, times included)."""

    def restore_files(self, backup_id: int, path: str, target: str | Path) -> list[Path]:
        import os
        import time

        out = super().restore_files(backup_id, path, target)
        now = time.time()
        for p in out:
            os.utime(p, (now, now))
        return out


class RestoreResurrectsDeletedFiles(Catalog):
    """The restore of an incremental or differential lays the whole chain down, the base
    first, then this backup's files: a file deleted since the base comes back (rule
    CMT-BACKUP-CONTENT: the backup holds only what existed at its snapshot)."""

    def restore_files(self, backup_id: int, path: str, target: str | Path) -> list[Path]:
        out: list[Path] = []
        for bid in self.chain(backup_id)[:-1] if len(self.chain(backup_id)) > 1 else []:
            try:
                out += super().restore_files(bid, path, target)
            except Exception:  # noqa: BLE001 - the base lacks the path: nothing to lay down
                pass
        return out + super().restore_files(backup_id, path, target)


# ============================================================================ image products


class _Extent:
    """A disk as of a snapshot, as ``image_digest`` reads it (the how-to's ``_Extent``)."""

    def __init__(self, host: Any, moref: str, key: int, snap_id: str | None, size: int,
                 areas: Callable[[list[tuple[int, int]]], list[tuple[int, int]]] = lambda a: a) -> None:
        self.size = size
        self._reader = host.open_disk(moref, key, snap_id)
        self._areas = areas(host.allocated_areas(moref, key, snap_id))

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self._reader.read(offset, length))

    def allocated_areas(self) -> list[tuple[int, int]]:
        return self._areas


class HowtoImageProduct:
    """The how-to's ``ToyBackup`` (docs/vendor-howto.md), as a vendor copies it; each subclass
    changes one thing. Unchanged it is a correct image-level product."""

    version = "1.0"
    capabilities = Capabilities(image_levels=("full",), file_levels=())
    SNAPSHOT = "_VCB-BACKUP_"
    _ids = itertools.count(1)

    def __init__(self) -> None:
        self.name = type(self).__name__
        self.medium: dict[str, dict[int, str]] = {}

    def _op(self, host: Any, vm: str, step: str, op: str, call: Callable[[], Any], **details: Any) -> Any:
        op_id = f"howto-{next(self._ids)}"
        host.trace.emit("proxy", "op.invoke", vm=vm, step=step, op=op, op_id=op_id, **details)
        try:
            result = call()
        except Exception as exc:
            host.trace.emit("proxy", "op.fail", vm=vm, step=step, op=op, op_id=op_id, error=str(exc))
            raise
        host.trace.emit("proxy", "op.ok", vm=vm, step=step, op=op, op_id=op_id)
        return result

    def backup(self, host: Any, vm_name: str, policy: Any) -> JobResult:
        vm = host.find_vm(f"name:{vm_name}")
        for stale in host.list_snapshots(vm.moref):
            if stale.name == self.SNAPSHOT:
                try:
                    self._op(host, vm.moref, "WF-3b", "cleanup",
                             lambda s=stale: host.remove_snapshot(vm.moref, s.id), snapshot=stale.id)
                except Exception as exc:  # noqa: BLE001 - reported in the result
                    return JobResult(ok=False, error=f"cannot remove a stale snapshot: {exc}")
        job = f"howto-{next(self._ids)}"
        host.trace.emit("proxy", "op.invoke", vm=vm.moref, op="job", op_id=job, mode="fullvm", level="full")
        result = self._job(host, vm, vm_name)
        host.trace.emit("proxy", "op.ok" if result.ok else "op.fail", vm=vm.moref, op="job", op_id=job,
                        error=result.error)
        return result

    def extent(self, host: Any, vm: Any, disk: Any, index: int, snap_id: str) -> _Extent:
        """The snapshot's disk as the product reads it (a subclass's bug goes here)."""
        return _Extent(host, vm.moref, disk.key, snap_id, disk.capacity)

    def digests(self, extents: Mapping[int, _Extent]) -> dict[int, str]:
        return {k: image_digest(e) for k, e in extents.items()}

    def _job(self, host: Any, vm: Any, vm_name: str) -> JobResult:
        try:
            snap = self._op(host, vm.moref, "WF-1", "snapshot",
                            lambda: host.create_snapshot(vm.moref, self.SNAPSHOT, quiesce=True))
        except Exception as exc:  # noqa: BLE001 - reported in the result
            return JobResult(ok=False, error=str(exc))
        path = f"/howto/{vm_name}-fullVM"
        exposed = False
        lazy: Callable[[], dict[int, str]] | None = None
        digests: dict[int, str] = {}
        try:
            def expose() -> dict[int, _Extent]:
                disks = [d for d in vm.disks if d.snapshot_exclusion is None]
                out = {d.key: self.extent(host, vm, d, i, snap.id) for i, d in enumerate(disks)}
                host.trace.emit("proxy", "mount", vm=vm.moref, path=path)
                return out

            extents = self._op(host, vm.moref, "WF-1f", "export", expose)
            exposed = True
            lazy = self._op(host, vm.moref, "WF-2", "copy", lambda: self.copy(extents))
        except Exception as exc:  # noqa: BLE001 - reported in the result
            return JobResult(ok=False, error=str(exc))
        finally:
            if exposed:
                self._op(host, vm.moref, "WF-3a", "unmount",
                         lambda: host.trace.emit("proxy", "unmount", vm=vm.moref, path=path))
            try:
                self._op(host, vm.moref, "WF-3b", "remove-snapshot",
                         lambda: host.remove_snapshot(vm.moref, snap.id), snapshot=snap.id)
                removed = True
            except Exception:  # noqa: BLE001 - the next run removes it
                removed = False
        if lazy is not None:
            digests = lazy()
        self.medium[f"{vm_name}@{snap.id}"] = digests
        if not removed:
            return JobResult(ok=False, error="the backup snapshot could not be removed")
        left_out = [d.key for d in vm.disks if d.snapshot_exclusion is not None]
        return JobResult(ok=True, disks=digests, backup_id=f"{vm_name}@{snap.id}",
                         details={"excluded_disks": left_out})

    def copy(self, extents: Mapping[int, _Extent]) -> Callable[[], dict[int, str]]:
        """WF-2: read every extent now; returns the digests (as a thunk, for the lazy bug)."""
        digests = self.digests(extents)
        return lambda: digests


class ReadsTheSecondDiskLive(HowtoImageProduct):
    """Disks after the first are opened on the live disk (``snapshot_id=None``): the vendor
    opened the boot disk through the snapshot and "the data disks directly, they are not
    quiesced anyway" (rules WF-1c, CMT-BACKUP-CONTENT)."""

    def extent(self, host: Any, vm: Any, disk: Any, index: int, snap_id: str) -> _Extent:
        return _Extent(host, vm.moref, disk.key, snap_id if index == 0 else None, disk.capacity)


class ReadsAfterTheCommit(HowtoImageProduct):
    """The copy is streamed: WF-2 only queues the reads, which the medium pulls after the job
    has unmounted and removed the snapshot; the extents opened on the snapshot then read the
    disk the commit left, with the guest's later writes (rules CMT-BACKUP-CONTENT, WF-3b)."""

    def copy(self, extents: Mapping[int, _Extent]) -> Callable[[], dict[int, str]]:
        return lambda: self.digests(extents)


class ForgetsTheLastPartialGrain(HowtoImageProduct):
    """Allocated areas are read in whole 64 KiB grains, rounding each area's length down: the
    last, partial grain of an area is never read (rule CMT-BACKUP-CONTENT)."""

    def extent(self, host: Any, vm: Any, disk: Any, index: int, snap_id: str) -> _Extent:
        def whole(areas: list[tuple[int, int]]) -> list[tuple[int, int]]:
            return [(o, n - n % GRAIN) for o, n in areas if n - n % GRAIN > 0]

        return _Extent(host, vm.moref, disk.key, snap_id, disk.capacity, whole)


# ============================================================================ guest agents


class _VendorTools(VMwareTools):
    """A vendor's agent: the public ``VMwareTools`` with one public method changed."""

    def __init__(self, tools: Any, guest: Any = None) -> None:
        super().__init__(guest if guest is not None else tools.guest, state=tools.state, version=tools.version,
                         providers=tools.providers, config=tools.config, install_path=tools.install_path,
                         scripts_dir=tools.scripts_dir, switches=tools.switches)


def _agent(cls: type[_VendorTools]) -> Callable[[Any], Any]:
    def factory(tools: Any) -> Any:
        return cls(tools)

    factory.__name__ = factory.__qualname__ = cls.__name__
    factory.__doc__ = cls.__doc__
    return factory


def _natural(name: str) -> tuple[tuple[int, Any], ...]:
    return tuple((0, int(t)) if t.isdigit() else (1, t) for t in re.split(r"(\d+)", name) if t)


def _replan(plan: ScriptPlan, entries: list[ScriptEntry]) -> ScriptPlan:
    return replace(plan, entries=tuple(entries))


def _split(plan: ScriptPlan) -> tuple[list[ScriptEntry], list[ScriptEntry]]:
    return [e for e in plan.entries if e.legacy], [e for e in plan.entries if not e.legacy]


class NaturalSortScripts(_VendorTools):
    """Scripts sorted in "natural" order (``9-x`` before ``10-x``), as a file manager shows
    them, not byte-wise as Tools does (rule SCR-ORDER-FREEZE)."""

    def scripts(self, layout: str) -> ScriptPlan:
        plan = super().scripts(layout)
        legacy, rest = _split(plan)
        return _replan(plan, legacy + sorted(rest, key=lambda e: _natural(e.path)))


class NaturalSortBeyondNine(_VendorTools):
    """Byte-wise order as long as there are at most nine scripts; from ten on, the vendor's
    "fix" for ``10-`` sorting before ``9-`` kicks in (natural order) (rule SCR-ORDER-FREEZE)."""

    def scripts(self, layout: str) -> ScriptPlan:
        plan = super().scripts(layout)
        legacy, rest = _split(plan)
        if len(rest) <= 9:
            return plan
        return _replan(plan, legacy + sorted(rest, key=lambda e: _natural(e.path)))


class RunsOnlyNineScripts(_VendorTools):
    """The agent keeps the directory's scripts in a table of nine: a tenth and later script
    never runs (rule SCR-ORDER-FREEZE: every script of the directory runs, in order)."""

    def scripts(self, layout: str) -> ScriptPlan:
        plan = super().scripts(layout)
        legacy, rest = _split(plan)
        return _replan(plan, legacy + rest[:9])


class RecursesIntoSubdirectories(_VendorTools):
    """Scripts in subdirectories of backupScripts.d run too (the agent walks the tree; Tools
    runs only the directory's own regular files, spec R21) (rule SCR-ORDER-FREEZE)."""

    def scripts(self, layout: str) -> ScriptPlan:
        plan = super().scripts(layout)
        if plan.directory is None or not self.guest.is_dir(plan.directory):
            return plan
        sep = "\\" if self.os_family == "windows" else "/"
        extra: list[ScriptEntry] = []
        for name in sorted(self.guest.listdir(plan.directory)):
            sub = plan.directory + sep + name
            if self.guest.is_dir(sub):
                extra += [ScriptEntry(sub + sep + n) for n in sorted(self.guest.listdir(sub))
                          if not self.guest.is_dir(sub + sep + n)]
        entries = sorted([*plan.entries[1 if plan.has_legacy_slot else 0:], *extra],
                         key=lambda e: e.path.encode("utf-8"))
        return _replan(plan, list(plan.entries[:1] if plan.has_legacy_slot else []) + entries)


class SkipsUnlaunchableScripts(_VendorTools):
    """Only ``.bat``/``.cmd``/``.exe`` files of backupScripts.d are listed: a file Windows cannot
    start is skipped silently instead of failing the freeze (rules SCR-FREEZEFAIL-NO-SNAPSHOT,
    SCR-ORDER-FREEZE)."""

    def scripts(self, layout: str) -> ScriptPlan:
        plan = super().scripts(layout)
        if self.os_family != "windows":
            return plan
        keep = [e for e in plan.entries if e.legacy or e.path.lower().endswith((".bat", ".cmd", ".exe", ".com"))]
        return _replan(plan, keep)


class LegacyPairIgnoredBesideDirectory(_VendorTools):
    """When backupScripts.d has scripts, the legacy pair is ignored ("the directory replaces
    it"); Tools of 2010 on run both in one list (rules SCR-ORDER-FREEZE, SCR-LEGACY-PLACEMENT,
    SCR-THAW-ALL)."""

    def scripts(self, layout: str) -> ScriptPlan:
        plan = super().scripts(layout)
        legacy, rest = _split(plan)
        return _replan(plan, rest) if rest and legacy else plan


@dataclass(frozen=True, slots=True)
class _FailOrderPlan(ScriptPlan):
    """A plan whose freezeFail order is the vendor's."""

    fail_order: Callable[[ScriptPlan, int | None], list[tuple[int, str]]] | None = None

    def order(self, phase: Any, below: int | None = None) -> list[tuple[int, str]]:
        if phase == "freezeFail" and self.fail_order is not None:
            return self.fail_order(self, below)
        return ScriptPlan.order(self, phase, below)


def _with_fail_order(plan: ScriptPlan, fn: Callable[[ScriptPlan, int | None], list[tuple[int, str]]]) -> ScriptPlan:
    return _FailOrderPlan(plan.os_family, plan.layout, plan.directory, plan.entries, fn)


class SkipsLegacyPostThawOnFreezeFail(_VendorTools):
    """The legacy post-thaw script gets its ``thaw`` but is skipped on the failure path (the
    vendor thinks "post-thaw" means after a thaw only) (rules SCR-FREEZEFAIL-REVERSE,
    SCR-ORDER-FREEZEFAIL, QSC-ENGAGE-FAIL)."""

    def scripts(self, layout: str) -> ScriptPlan:
        def order(plan: ScriptPlan, below: int | None) -> list[tuple[int, str]]:
            return [(i, p) for i, p in ScriptPlan.order(plan, "freezeFail", below) if not plan.entries[i].legacy]

        return _with_fail_order(super().scripts(layout), order)


class FreezeFailToEveryScript(_VendorTools):
    """After a failed freeze script every script of the list gets ``freezeFail``, also those
    that never ran (rules SCR-FREEZEFAIL-REVERSE, SCR-FREEZEFAIL-NOT-FAILED)."""

    def scripts(self, layout: str) -> ScriptPlan:
        return _with_fail_order(super().scripts(layout), lambda plan, below: ScriptPlan.order(plan, "freezeFail"))


class AbortTimerInMinutes(_VendorTools):
    """The abort timer is read in minutes (the vendor's config file says ``timeout=15``): the
    900 s timer becomes 900 minutes (rule TMO-GUEST-ABORT)."""

    def abort_timeout(self, profile: Any, timeout: float | None = None) -> float:
        return 60.0 * super().abort_timeout(profile, timeout)


class _ExitOneIsAWarning:
    """The agent's view of the guest: a script's ``exit 1`` reads as success (the vendor's
    agent treats status 1 as "warning", only 2 and up as failure)."""

    def __init__(self, files: Any) -> None:
        self._files = files

    def __getattr__(self, name: str) -> Any:
        return getattr(self._files, name)

    def read_bytes(self, path: str) -> bytes:
        data = bytes(self._files.read_bytes(path))
        if "backupscripts.d" in path.lower() or "freeze-script" in path or "thaw-script" in path:
            data = re.sub(rb"(?im)^(\[[^\]]*\]\s*)?exit(\s+/b)?\s+1\s*$", b"", data)
        return data


class TreatsExitOneAsSuccess(_VendorTools):
    """A script that exits 1 is taken to have succeeded (status 1 is a "warning" for the
    vendor): a pre-freeze script that refused the freeze does not stop the snapshot (rules
    SCR-FREEZEFAIL-NO-SNAPSHOT, QSC-REPORT-FAILURE)."""

    def __init__(self, tools: Any) -> None:
        super().__init__(tools, _ExitOneIsAWarning(tools.guest))


# ============================================================================ the catalogue


_R = "esx-3.5u2"
_7 = "esxi-7.0"


def _bug(factory: Any, rules: tuple[str, ...], *, agent: Any = None, profile: str = _R) -> Bug:
    src = agent if agent is not None else factory
    doc = getattr(src, "__doc__", "") or ""
    return Bug(factory, agent, profile, rules, " ".join(doc.split()))


_ref = ReferenceOrchestrator
#: a file the medium never holds: missing from the backup, or from an incremental's copied set
_LOST = ("CMT-BACKUP-CONTENT", "BK-INCR-SINCE-LAST", "BK-DIFF-SINCE-FULL")

#: name -> Bug. Proxies first, then image products, then guest agents.
REALISTIC: dict[str, Bug] = {
    "commit-skipped-when-unmount-fails": _bug(_proxy(CommitSkippedWhenUnmountFails), ("CLN-NO-SNAPSHOT-LEFT",
                                                                                      "EV-OUTCOME-TRUE")),
    "retries-a-slow-snapshot": _bug(_proxy(RetriesASlowSnapshot), ("EV-OUTCOME-TRUE", "CLN-NO-SNAPSHOT-LEFT")),
    "leaves-the-linux-export-folder": _bug(_proxy(LeavesTheLinuxExportFolder), ("WF-3a", "CLN-NO-MOUNT-LEFT")),
    "commits-first-after-a-copy-failure": _bug(_proxy(CommitsFirstAfterACopyFailure), ("WF-3a",)),
    "never-quiesces-file-level": _bug(_proxy(NeverQuiescesFileLevel), ("WF-1b",)),
    "incremental-base-is-the-last-attempt": _bug(_medium(IncrementalBaseIsTheLastAttempt), ("BK-INCR-SINCE-LAST",
                                                                                            "EV-DECLARED-WORKS")),
    "differential-resets-the-archive-bit": _bug(_medium(DifferentialResetsTheArchiveBit), ("BK-DIFF-SINCE-FULL",)),
    "skips-empty-files": _bug(_medium(SkipsEmptyFiles), _LOST),
    "drops-non-ascii-names": _bug(_medium(DropsNonAsciiNames), _LOST),
    "drops-deep-files": _bug(_medium(DropsDeepFiles), _LOST),
    "drops-long-names": _bug(_medium(DropsLongNames), _LOST),
    "partial-backup-after-a-copy-error": _bug(_medium(PartialBackupAfterACopyError), (*_LOST, "EV-OUTCOME-TRUE")),
    "restores-without-timestamps": _bug(_medium(RestoresWithoutTimestamps), ("CMT-BACKUP-CONTENT",)),
    "restore-resurrects-deleted-files": _bug(_medium(RestoreResurrectsDeletedFiles), ("CMT-BACKUP-CONTENT",)),
    "reads-the-second-disk-live": _bug(ReadsTheSecondDiskLive, ("WF-1c", "CMT-BACKUP-CONTENT")),
    "reads-after-the-commit": _bug(ReadsAfterTheCommit, ("CMT-BACKUP-CONTENT", "WF-3b", "WF-1c")),
    "forgets-the-last-partial-grain": _bug(ForgetsTheLastPartialGrain, ("CMT-BACKUP-CONTENT",)),
    "natural-sort-scripts": _bug(_ref, ("SCR-ORDER-FREEZE", "SCR-ORDER-THAW"), agent=_agent(NaturalSortScripts)),
    "natural-sort-beyond-nine": _bug(_ref, ("SCR-ORDER-FREEZE", "SCR-ORDER-THAW"),
                                     agent=_agent(NaturalSortBeyondNine)),
    "runs-only-nine-scripts": _bug(_ref, ("SCR-ORDER-FREEZE",), agent=_agent(RunsOnlyNineScripts)),
    "recurses-into-subdirectories": _bug(_ref, ("SCR-ORDER-FREEZE",), agent=_agent(RecursesIntoSubdirectories)),
    "skips-unlaunchable-scripts": _bug(_ref, ("SCR-FREEZEFAIL-NO-SNAPSHOT", "SCR-ORDER-FREEZE"),
                                       agent=_agent(SkipsUnlaunchableScripts)),
    "legacy-pair-ignored-beside-directory": _bug(_ref, ("SCR-ORDER-FREEZE", "SCR-LEGACY-PLACEMENT", "SCR-THAW-ALL"),
                                                 agent=_agent(LegacyPairIgnoredBesideDirectory), profile=_7),
    "skips-legacy-post-thaw-on-freezefail": _bug(_ref, ("SCR-FREEZEFAIL-REVERSE", "SCR-ORDER-FREEZEFAIL",
                                                        "QSC-ENGAGE-FAIL"),
                                                 agent=_agent(SkipsLegacyPostThawOnFreezeFail), profile=_7),
    "freezefail-to-every-script": _bug(_ref, ("SCR-FREEZEFAIL-REVERSE", "SCR-FREEZEFAIL-NOT-FAILED"),
                                       agent=_agent(FreezeFailToEveryScript)),
    "abort-timer-in-minutes": _bug(_ref, ("TMO-GUEST-ABORT",), agent=_agent(AbortTimerInMinutes), profile=_7),
    "treats-exit-1-as-success": _bug(_ref, ("SCR-FREEZEFAIL-NO-SNAPSHOT", "QSC-REPORT-FAILURE"),
                                     agent=_agent(TreatsExitOneAsSuccess)),
}
