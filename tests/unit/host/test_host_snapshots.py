"""Host-level snapshot, commit, revert, CBT and fault behaviour (no guest file system needed)."""

from __future__ import annotations

import pytest
from pyVmomi import vim, vmodl

from vcbsim.simulator import FaultRule, Host, InvalidInputError, NotFoundError
from vcbsim.simulator._host import GiB, MiB


@pytest.fixture
def host() -> Host:
    h = Host("esxi-7.0", seed=7)
    h.add_vm("plain", os_family="linux", disks=[2 * GiB, 1 * GiB], tools="running", providers=("null",))
    return h


def test_writes_in_snapshot_mode_land_in_redo_log_and_commit_merges_them(host: Host) -> None:
    vm = host.find_vm("plain")
    disk = vm.disks[0]
    disk.disk.write(0, b"A" * 4096)
    base = disk.disk.top
    snap = host.create_snapshot(vm, "_VCB-BACKUP_")
    assert disk.file_name.endswith("plain-000001.vmdk")
    assert snap.layers[disk.key] is base
    disk.disk.write(0, b"B" * 4096)
    disk.disk.write(10 * MiB, b"C" * 100)
    # the base is unchanged until commit
    assert host.read_disk(vm, disk.key, 0, 4096, snapshot=snap) == b"A" * 4096
    assert host.read_disk(vm, disk.key, 10 * MiB, 100, snapshot=snap) == b"\0" * 100
    assert base.grain_count == 1
    host.remove_snapshot(vm, snap)
    # after commit the base holds every write and is the writable disk again
    assert disk.disk.top is base
    assert disk.file_name.endswith("plain.vmdk")
    assert disk.disk.read(0, 4096) == b"B" * 4096
    assert disk.disk.read(10 * MiB, 100) == b"C" * 100
    assert vm.snapshots() == []
    assert not vm.consolidation_needed
    kinds = [e.kind for e in host.trace if e.vm == vm.moref]
    assert kinds.index("snapshot.create") < kinds.index("snapshot.remove")


def test_snapshot_tree_delta_names_and_vmsd(host: Host) -> None:
    vm = host.find_vm("plain")
    s1 = host.create_snapshot(vm, "one")
    s2 = host.create_snapshot(vm, "two")
    assert s2.parent is s1 and vm.current_snapshot is s2
    assert vm.disks[0].chain_files()[0].endswith("plain-000002.vmdk")
    assert vm.disks[1].chain_files()[0].endswith("plain_1-000002.vmdk")
    vmsd = vm.vmsd_text()
    assert 'snapshot.numSnapshots = "2"' in vmsd and 'displayName = "two"' in vmsd
    assert 'scsi0:0.fileName = "plain-000002.vmdk"' in vm.vmx_text()


def test_remove_middle_snapshot_keeps_other_states(host: Host) -> None:
    vm = host.find_vm("plain")
    d = vm.disks[0]
    d.disk.write(0, b"1" * 10)
    s1 = host.create_snapshot(vm, "one")
    d.disk.write(0, b"2" * 10)
    s2 = host.create_snapshot(vm, "two")
    d.disk.write(0, b"3" * 10)
    host.remove_snapshot(vm, s1)
    assert host.read_disk(vm, d.key, 0, 10, snapshot=s2) == b"2" * 10
    assert d.disk.read(0, 10) == b"3" * 10
    assert s2.parent is None and vm.root_snapshots == [s2]


def test_revert_discards_writes_and_powers_off_without_memory(host: Host) -> None:
    vm = host.find_vm("plain")
    d = vm.disks[0]
    d.disk.write(0, b"x" * 8)
    s1 = host.create_snapshot(vm, "one")
    d.disk.write(0, b"y" * 8)
    host.revert_to_snapshot(vm, s1)
    assert d.disk.read(0, 8) == b"x" * 8
    assert vm.power_state == "poweredOff"


def test_cbt_star_and_change_id(host: Host) -> None:
    vm = host.find_vm("plain")
    d = vm.disks[0]
    host.reconfigure(vm, change_tracking=True)
    host.power_off(vm)
    host.power_on(vm)
    d.disk.write(5 * MiB, b"z" * 10)
    s1 = host.create_snapshot(vm, "one")
    cid = host.change_id(vm, d.key, s1)
    assert cid is not None and cid.startswith(d.change_id_prefix)
    star = host.query_changed_disk_areas(vm, s1, d.key, 0, "*")
    assert any(o <= 5 * MiB < o + n for o, n in star.changed_area)
    d.disk.write(100 * MiB, b"w" * 10)
    s2 = host.create_snapshot(vm, "two")
    delta = host.query_changed_disk_areas(vm, s2, d.key, 0, cid)
    assert any(o <= 100 * MiB < o + n for o, n in delta.changed_area)
    with pytest.raises(vmodl.fault.InvalidArgument):
        host.query_changed_disk_areas(vm, s2, d.key, 0, "00 11/1")


def test_injected_snapshot_fault_and_no_disk_space(host: Host) -> None:
    vm = host.find_vm("plain")
    host.add_fault(FaultRule("snapshot.create", fault="NoDiskSpace"))
    with pytest.raises(vim.fault.NoDiskSpace):
        host.create_snapshot(vm, "x")
    assert vm.snapshots() == [] and vm.disks[0].file_name.endswith("plain.vmdk")
    assert host.trace.of_kind("snapshot.create.fail")
    host.create_snapshot(vm, "y")  # the rule fired once


def test_bad_input_names_expected_and_changes_nothing(host: Host) -> None:
    before = host.dump()
    with pytest.raises(InvalidInputError, match="expected"):
        host.add_vm("", disks=[GiB])
    with pytest.raises(NotFoundError, match="known: 'plain'"):
        host.find_vm("nope")
    with pytest.raises(vim.fault.InvalidName):
        host.create_snapshot("plain", "")
    with pytest.raises(InvalidInputError):
        host.create_snapshot("plain", "ok", quiesce="yes")  # type: ignore[arg-type]
    after = host.dump()
    before.pop("events"), after.pop("events")
    assert before == after


def test_power_state_faults(host: Host) -> None:
    with pytest.raises(vim.fault.InvalidPowerState):
        host.power_on("plain")
    host.power_off("plain")
    with pytest.raises(vim.fault.InvalidPowerState):
        host.create_snapshot("plain", "m", memory=True)


def test_reset_rebuilds_from_scratch(host: Host) -> None:
    host.create_snapshot("plain", "one")
    host.reset()
    assert host.vms == {} and len(host.trace) == 1


def test_first_snapshot_after_enabling_cbt_is_the_incremental_baseline(host: Host) -> None:
    vm = host.find_vm("plain")
    d = vm.disks[0]
    host.reconfigure(vm, change_tracking=True)  # powered on: takes effect at the next stun
    s1 = host.create_snapshot(vm, "baseline")
    cid = host.change_id(vm, d.key, s1)
    assert cid is not None
    d.disk.write(7 * MiB, b"q" * 10)
    s2 = host.create_snapshot(vm, "next")
    areas = host.query_changed_disk_areas(vm, s2, d.key, 0, cid).changed_area
    assert any(o <= 7 * MiB < o + n for o, n in areas)


def test_remove_all_snapshots_adds_up_the_merges(host: Host) -> None:
    vm = host.find_vm("plain")
    d = vm.disks[0]
    d.disk.write(0, b"a" * 10)
    host.create_snapshot(vm, "one")
    d.disk.write(MiB, b"b" * 10)
    host.create_snapshot(vm, "two")
    d.disk.write(2 * MiB, b"c" * 10)
    stats = host.remove_all_snapshots(vm)
    assert stats.layers_removed == 4  # two redo layers on each of the two disks
    assert len(stats.merges) == stats.layers_removed
    assert d.disk.read(2 * MiB, 10) == b"c" * 10 and len(d.disk.chain()) == 1


def test_cbt_off_then_on_before_a_stun_ends_on_and_keeps_tracking(host: Host) -> None:
    vm = host.find_vm("plain")
    d = vm.disks[0]
    host.reconfigure(vm, change_tracking=True)
    s1 = host.create_snapshot(vm, "active")  # the stun: tracking is now on
    cid = host.change_id(vm, d.key, s1)
    assert vm.change_tracking and cid is not None
    host.reconfigure(vm, change_tracking=False)  # pending off ...
    assert vm.change_tracking_pending is False
    host.reconfigure(vm, change_tracking=True)  # ... and back on before any stun
    assert vm.change_tracking_pending is None and vm.change_tracking
    s2 = host.create_snapshot(vm, "next")
    assert vm.change_tracking  # the stun changed nothing: tracking stayed on, not reset
    host.query_changed_disk_areas(vm, s2, d.key, 0, cid)  # the earlier change id still holds
