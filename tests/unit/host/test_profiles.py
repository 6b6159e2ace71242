"""Host behaviour per profile (issue 17): one test per profile-table row, on every profile.

The table is in docs/architecture.md ("Host profiles"); each test names its row.
"""

from __future__ import annotations

import pytest
from pyVmomi import vim, vmodl

from vcbsim.simulator import FaultRule, Host
from vcbsim.simulator._host import CONSOLIDATE_HELPER, VMSN_CONFIG_BYTES, GiB, MiB

PROFILES = ("esx-3.5u1", "esx-3.5u2", "esxi-7.0")
MODERN = "esxi-7.0"


def _vm(host: Host, name: str = "vm1", **kw):
    return host.add_vm(name, disks=[1 * GiB], **kw)


# -- row: vSphere 5.0 consolidation API ------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_api_5_0_consolidation_calls_per_profile(profile: str) -> None:
    host = Host(profile)
    vm = _vm(host)
    snap = host.create_snapshot(vm, "s")
    if profile != MODERN:
        with pytest.raises(vmodl.fault.InvalidArgument):
            host.remove_snapshot(vm, snap, consolidate=False)
        with pytest.raises(vmodl.fault.MethodNotFound):
            host.consolidate_disks(vm)
        assert vm.snapshots() == [snap]  # nothing changed
        host.remove_snapshot(vm, snap)
        assert vm.snapshots() == [] and not vm.consolidation_needed
        return
    host.remove_snapshot(vm, snap, consolidate=False)
    assert vm.snapshots() == [] and vm.consolidation_needed
    host.consolidate_disks(vm)
    assert not vm.consolidation_needed and len(vm.disks[0].disk.chain()) == 1


# -- row: a commit that fails (a locked disk) --------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_failed_commit_per_profile(profile: str) -> None:
    """6.0 on: the snapshot is gone, ``consolidationNeeded`` stays until ConsolidateVMDisks_Task.
    Before: a ``Consolidate Helper-0`` snapshot stays; removing it commits everything (R49)."""
    host = Host(profile)
    vm = _vm(host)
    dev = host.guest_device(vm, vm.disks[0].key)
    snap = host.create_snapshot(vm, "_VCB-BACKUP_")
    dev.write(0, b"x" * 65536)
    host.add_fault(FaultRule("consolidate", target="vm1", fault="FileLocked", message="Unable to access file: it is locked"))
    with pytest.raises(vim.fault.FileLocked):
        host.remove_snapshot(vm, snap)
    assert snap not in vm.snapshots()
    assert dev.read(0, 1) == b"x"  # the guest's data is whole all along
    if profile == MODERN:
        assert vm.consolidation_needed and vm.snapshots() == []
        assert len(vm.disks[0].disk.chain()) == 2
        host.consolidate_disks(vm)
        assert not vm.consolidation_needed and len(vm.disks[0].disk.chain()) == 1
    else:
        assert [s.name for s in vm.snapshots()] == [CONSOLIDATE_HELPER]
        assert not vm.consolidation_needed and len(vm.disks[0].disk.chain()) == 3
        assert any(e.details.get("name") == CONSOLIDATE_HELPER for e in host.trace.of_kind("snapshot.create"))
        host.remove_snapshot(vm, CONSOLIDATE_HELPER)
        assert vm.snapshots() == [] and len(vm.disks[0].disk.chain()) == 1
    assert dev.read(0, 1) == b"x"


@pytest.mark.parametrize("profile", [MODERN])
def test_failed_consolidate_changes_nothing(profile: str) -> None:
    host = Host(profile)
    vm = _vm(host)
    host.remove_snapshot(vm, host.create_snapshot(vm, "s"), consolidate=False)
    host.add_fault(FaultRule("consolidate", target="vm1", fault="FileLocked"))
    with pytest.raises(vim.fault.FileLocked):
        host.consolidate_disks(vm)
    assert vm.consolidation_needed and len(vm.disks[0].disk.chain()) == 2


# -- row: memory snapshots write a .vmsn that counts against the datastore -----------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_memory_snapshot_vmsn_counts_against_the_datastore(profile: str) -> None:
    host = Host(profile, datastore_capacity=8 * GiB)
    vm = _vm(host, memory_mb=2048)
    ds = host.datastores["datastore1"]
    before = ds.used
    plain = host.create_snapshot(vm, "disk only")
    assert plain.vmsn_bytes == VMSN_CONFIG_BYTES and ds.used == before + VMSN_CONFIG_BYTES
    mem = host.create_snapshot(vm, "with memory", memory=True)
    assert mem.vmsn_bytes == VMSN_CONFIG_BYTES + 2048 * MiB
    assert ds.used == before + 2 * VMSN_CONFIG_BYTES + 2048 * MiB
    host.remove_snapshot(vm, mem)
    assert ds.used == before + VMSN_CONFIG_BYTES
    # a datastore without room for the memory image refuses a memory snapshot only
    small = Host(profile, datastore_capacity=1 * GiB)
    vm2 = _vm(small, memory_mb=2048)
    with pytest.raises(vim.fault.NoDiskSpace) as exc:
        small.create_snapshot(vm2, "m", memory=True)
    assert exc.value.datastore == "datastore1" and vm2.snapshots() == []
    assert small.create_snapshot(vm2, "d").vmsn_bytes == VMSN_CONFIG_BYTES


# -- row: independent disks --------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("mode", ["independent_persistent", "independent_nonpersistent"])
def test_independent_disk_is_not_part_of_a_snapshot(profile: str, mode: str) -> None:
    host = Host(profile)
    vm = host.add_vm("vm1", disks=[1 * GiB, 1 * GiB], disk_modes=["persistent", mode])
    sys_disk, ind = vm.disks
    assert ind.independent and ind.disk_mode == mode
    snap = host.create_snapshot(vm, "_VCB-BACKUP_")
    assert set(snap.layers) == {sys_disk.key}
    assert sys_disk.file_name.endswith("vm1-000001.vmdk") and ind.file_name.endswith("vm1_1.vmdk")
    assert f'scsi0:1.mode = "{mode.replace("_", "-")}"' in vm.vmx_text()  # the .vmx spelling
    vmsd = vm.vmsd_text()
    assert 'snapshot0.numDisks = "1"' in vmsd and "vm1_1" not in vmsd
    dev = host.guest_device(vm, ind.key)
    dev.write(0, b"after")
    # "as of the snapshot" an independent disk is its live backing: the write shows
    assert host.read_disk(vm, ind.key, 0, 5, snapshot=snap) == b"after"
    host.revert_to_snapshot(vm, snap)
    # not reverted either; a nonpersistent disk loses its session's writes with the running
    # VM (test_profiles_rdm.py: test_nonpersistent_disk_discards_writes_at_revert)
    kept = b"after" if mode == "independent_persistent" else bytes(5)
    assert host.read_disk(vm, ind.key, 0, 5) == kept
    host.remove_snapshot(vm, snap)
    assert len(ind.disk.chain()) == 1


# -- row: disks on several datastores ----------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_disks_on_two_datastores_redo_logs_in_the_working_dir(profile: str) -> None:
    """Redo logs of every disk go to the working directory (Broadcom KB 304387), so the
    snapshot needs room there, and NoDiskSpace names that datastore."""
    host = Host(profile, datastore_capacity=64 * GiB)
    host.add_datastore("datastore2", 64 * GiB)
    vm = host.add_vm("vm1", disks=[1 * GiB, 1 * GiB], disk_datastores=[None, "datastore2"])
    assert vm.disks[1].base_name == "[datastore2] vm1/vm1_1.vmdk"
    assert 'scsi0:1.fileName = "/vmfs/volumes/datastore2/vm1/vm1_1.vmdk"' in vm.vmx_text()
    host.guest_device(vm, vm.disks[1].key).write(0, b"b" * 65536)
    ds1, ds2 = host.datastores["datastore1"], host.datastores["datastore2"]
    assert ds2.used == 65536 and ds1.used == 0
    snap = host.create_snapshot(vm, "s")
    assert [d.file_name for d in vm.disks] == ["[datastore1] vm1/vm1-000001.vmdk", "[datastore1] vm1/vm1_1-000001.vmdk"]
    host.guest_device(vm, vm.disks[1].key).write(65536, b"c" * 65536)
    assert ds1.used == 65536 + snap.vmsn_bytes and ds2.used == 65536  # the redo log is on datastore1
    host.remove_snapshot(vm, snap)
    assert ds2.used == 2 * 65536 and ds1.used == 0

    # workingDir on the second datastore: redo logs and .vmsn go there
    wd = host.add_vm("vm2", disks=[1 * GiB], working_dir="datastore2")
    assert 'workingDir = "/vmfs/volumes/datastore2/vm2"' in wd.vmx_text()
    s2 = host.create_snapshot(wd, "s")
    assert wd.disks[0].file_name == "[datastore2] vm2/vm2-000001.vmdk"
    assert 'snapshot0.disk0.fileName = "vm2.vmdk"' in wd.vmsd_text()  # the base, in the VM's folder
    host.remove_snapshot(wd, s2)

    # the working directory's datastore full: NoDiskSpace on it, nothing created
    full = Host(profile, datastore_capacity=64 * GiB)
    full.add_datastore("tiny", 16 * 1024)
    vm3 = full.add_vm("vm3", disks=[1 * GiB], working_dir="tiny")
    with pytest.raises(vim.fault.NoDiskSpace) as exc:
        full.create_snapshot(vm3, "s")
    assert exc.value.datastore == "tiny" and vm3.snapshots() == []
    assert len(vm3.disks[0].disk.chain()) == 1


def test_bad_disk_placement_is_one_clear_error() -> None:
    from vcbsim.simulator import InvalidInputError, NotFoundError

    host = Host()
    with pytest.raises(NotFoundError):
        host.add_vm("a", disks=[GiB], disk_datastores=["nowhere"])
    with pytest.raises(InvalidInputError, match="one entry per disk"):
        host.add_vm("a", disks=[GiB, GiB], disk_modes=["persistent"])
    with pytest.raises(InvalidInputError, match="disk mode"):
        host.add_vm("a", disks=[GiB], disk_modes=["undoable"])
    with pytest.raises(InvalidInputError):
        host.add_datastore("datastore1", GiB)
    assert list(host.vms) == []


# -- row: Tools not running -------------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_vm_without_tools_is_backed_up_crash_consistently(profile: str) -> None:
    """Quiesce asked: the real fault (spec F11/Q5, switch ``quiesce_without_tools``). Not asked:
    the snapshot succeeds, unquiesced; no script runs."""
    host = Host(profile)
    vm = _vm(host, tools="not-running")
    with pytest.raises(vim.fault.ApplicationQuiesceFault) as exc:
        host.create_snapshot(vm, "_VCB-BACKUP_", quiesce=True)
    assert "VMware Tools is not currently available" in exc.value.msg and vm.snapshots() == []
    snap = host.create_snapshot(vm, "_VCB-BACKUP_", quiesce=False)
    assert not snap.quiesced and host.trace.of_kind("script.run") == []


# -- the era inventory: a VM per case, each behaving as its row says ----------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_era_inventory_has_a_vm_per_case(profile: str) -> None:
    host = Host.demo(profile, inventory="era")
    assert [v.name for v in host.vms.values()] == ["winxp-legacy", "w2019-app", "sql-indep", "web-2ds", "notools", "db-rdm"]
    # XP: the SYNC driver and only the legacy pair, on every era
    host.create_snapshot("winxp-legacy", "q", quiesce=True)
    runs = [(e.details["path"], e.details["arg"]) for e in host.trace.of_kind("script.run")]
    assert runs == [(r"C:\Windows\pre-freeze-script.bat", "freeze"), (r"C:\Windows\post-thaw-script.bat", "thaw")]
    assert host.trace.of_kind("quiesce.engage")[-1].details["provider"] == "sync"
    # Windows 2019: application consistent only under the 4.1 rules
    s = host.create_snapshot("w2019-app", "q", quiesce=True)
    assert s.quiesce_type == ("application" if profile == MODERN else "filesystem")
    # the independent disk is in no snapshot
    ind = host.find_vm("sql-indep")
    s = host.create_snapshot(ind, "q", quiesce=True)
    assert set(s.layers) == {ind.disks[0].key} and ind.disks[1].independent
    # two datastores: the second base disk on datastore2, its redo log in the working directory
    web = host.find_vm("web-2ds")
    host.create_snapshot(web, "q", quiesce=True)
    assert web.disks[1].datastore == "datastore2" and web.disks[1].file_name.startswith("[datastore1] web-2ds/")
    # no Tools: crash-consistent only
    with pytest.raises(vim.fault.ApplicationQuiesceFault):
        host.create_snapshot("notools", "q", quiesce=True)
    assert not host.create_snapshot("notools", "c").quiesced
    # RDMs: E: (physical) has no redo log, F: (virtual) has one; T: (nonpersistent) is emptied
    rdm = host.find_vm("db-rdm")
    s = host.create_snapshot(rdm, "q", quiesce=True)
    assert set(s.layers) == {rdm.disks[0].key, rdm.disks[2].key}
    assert [d.rdm for d in rdm.disks] == [None, "physicalMode", "virtualMode", None]
    host.guest_fs(rdm).write_bytes("E:\\new.txt", b"on the LUN")
    assert host.guest_fs_at(rdm, s).read_bytes("E:\\new.txt") == b"on the LUN"
    host.guest_fs(rdm).write_bytes("T:\\tmp.txt", b"scratch")
    host.power_off(rdm)
    assert host.guest_fs(rdm).listdir("T:\\") == ["README.txt"]
    # the default demo is unchanged
    assert [v.name for v in Host.demo(profile).vms.values()] == ["win2003-sql", "rhel5-web"]


def test_unknown_inventory_is_refused() -> None:
    from vcbsim.simulator import InvalidInputError

    with pytest.raises(InvalidInputError, match="demo inventory"):
        Host.demo(inventory="nope")


@pytest.mark.parametrize("profile", ["esx-3.5u1", "esx-3.5u2"])
def test_host_advance_lets_a_guest_the_host_gave_up_on_finish(profile: str) -> None:
    """3.5 era: after the host's 900 s the guest keeps its operation; once virtual time passes
    the end of the hung script (``Host.advance``, the control API's clock), it finishes."""
    host = Host.demo(profile)
    vm = host.find_vm("rhel5-web")
    host.guest_fs(vm).write_text("/usr/sbin/pre-freeze-script", "[freeze] sleep 1000\n")
    with pytest.raises(vim.fault.SnapshotFault):
        host.create_snapshot(vm, "q", quiesce=True)
    assert vm.tools is not None and vm.tools.busy_until is not None
    assert vm.summary()["tools_busy_until"] == vm.tools.busy_until
    host.advance(50)
    assert vm.tools.phase == "SCRIPT_FREEZE" and host.trace.of_kind("quiesce.end") == []
    host.advance(vm.tools.busy_until - host.clock.now)
    assert vm.tools.phase == "IDLE" and vm.tools.busy_until is None
    assert host.trace.of_kind("quiesce.end")[-1].details["outcome"] == "error"
