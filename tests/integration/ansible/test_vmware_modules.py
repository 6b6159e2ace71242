"""Ansible's ``community.vmware`` modules, run for real, against the served demo host.

Each test runs ``ansible-playbook`` (see ``conftest.py``) and checks both what the module
reports and what the simulated host holds afterwards: snapshots, redo-log chains, guest files
and the trace.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("ansible-playbook") is None,
    reason="ansible-playbook is not installed (pip install 'ansible>=12,<13' for community.vmware)",
)

#: the fixtures ``esx`` (an ``Esx``: the demo ``host`` and its ``server``) and ``playbook``
#: (runs tasks, returns one ``TaskResult`` each) come from ``conftest.py``
Esx = TaskResult = Any
DATACENTER = "ha-datacenter"
WIN = "win2003-sql"
LINUX = "rhel5-web"
FOLDER = f"/{DATACENTER}/vm"


def snapshot(vm: str, state: str, **args: Any) -> dict[str, Any]:
    return {
        "community.vmware.vmware_guest_snapshot": {
            "datacenter": DATACENTER, "folder": FOLDER, "name": vm, "state": state, **args,
        }
    }


def info(module: str, vm: str, **args: Any) -> dict[str, Any]:
    return {f"community.vmware.{module}": {"datacenter": DATACENTER, "name": vm, **args}}


def ok(result: TaskResult) -> dict[str, Any]:
    assert not result.failed, result.result.get("msg", result.result)
    return result.result


def names(tree: list[dict[str, Any]]) -> list[str]:
    return [s["name"] for s in tree]


def chain_labels(esx: Esx, vm_name: str) -> dict[int, list[str]]:
    vm = esx.vm(vm_name)
    return {d.key: [layer.label for layer in d.disk.chain()] for d in vm.disks}


def test_guest_info_reports_the_host_inventory(esx: Esx, playbook) -> None:
    win, linux = (ok(r)["instance"] for r in playbook(info("vmware_guest_info", WIN), info("vmware_guest_info", LINUX)))
    for facts, name in ((win, WIN), (linux, LINUX)):
        vm = esx.vm(name)
        assert facts["hw_name"] == name and facts["moid"] == vm.moref
        assert facts["hw_guest_id"] == vm.guest_id
        assert facts["hw_guest_full_name"] == vm.guest_full_name
        assert facts["hw_product_uuid"] == vm.uuid and facts["instance_uuid"] == vm.instance_uuid
        assert facts["hw_power_status"] == vm.power_state == "poweredOn"
        assert facts["hw_memtotal_mb"] == vm.memory_mb and facts["hw_processor_count"] == vm.num_cpus
        assert facts["hw_datastores"] == [vm.datastore]
        assert facts["hw_folder"] == FOLDER and facts["hw_esxi_host"] == esx.host.name
        assert facts["guest_tools_status"] == "guestToolsRunning"
        assert facts["ipv4"] == vm.ip_address
        assert facts["snapshots"] == [] and facts["current_snapshot"] is None
        assert facts["guest_consolidation_needed"] is False
        # every file is a datastore path in the VM's directory, listed once
        files = facts["hw_files"]
        assert files[0] == vm.vmx_path
        assert len(files) == len(set(files))
        prefix = vm.vmx_path.rsplit("/", 1)[0] + "/"
        for f in files:
            assert f.startswith(prefix) and "[" not in f[len(prefix):], f
        for d in vm.disks:
            assert d.disk.chain()[-1].label in files
    assert win["hw_guest_id"] != linux["hw_guest_id"]


def test_guest_disk_info_follows_the_redo_log_chain(esx: Esx, playbook) -> None:
    before, created, after = playbook(
        info("vmware_guest_disk_info", WIN),
        snapshot(WIN, "present", snapshot_name="disk-info"),
        info("vmware_guest_disk_info", WIN),
    )
    ok(created)
    vm = esx.vm(WIN)
    base = chain_labels(esx, WIN)
    disks_before = ok(before)["guest_disk_info"]
    disks_after = ok(after)["guest_disk_info"]
    assert len(disks_before) == len(disks_after) == len(vm.disks) == 2
    for i, d in enumerate(vm.disks):
        b, a = disks_before[str(i)], disks_after[str(i)]
        for r in (b, a):
            assert r["key"] == d.key and r["label"] == d.label
            assert r["capacity_in_bytes"] == d.capacity and r["capacity_in_kb"] == d.capacity // 1024
            assert r["controller_key"] == d.controller_key and r["unit_number"] == d.unit_number
            assert r["controller_type"] and r["controller_bus_number"] == 0
            assert r["backing_datastore"] == vm.datastore
            assert r["backing_type"] == "FlatVer2" and r["backing_disk_mode"] == d.disk_mode
            assert r["backing_thinprovisioned"] is d.thin
            assert r["iolimit_limit"] == -1 and r["shares_limit"] > 0
        # before: the base descriptor; after: the snapshot's redo log <base>-000001.vmdk
        assert b["backing_filename"] == base[d.key][-1]
        assert a["backing_filename"] == base[d.key][0] == base[d.key][-1].replace(".vmdk", "-000001.vmdk")


def test_snapshot_lifecycle_create_quiesced_revert_remove_remove_all(esx: Esx, playbook) -> None:
    host = esx.host
    vm = esx.vm(WIN)
    base = {key: chain[-1] for key, chain in chain_labels(esx, WIN).items()}
    first_event = len(host.trace.events)

    created, again, second, listed = playbook(
        snapshot(WIN, "present", snapshot_name="before-patch", description="quiesced", quiesce=True),
        snapshot(WIN, "present", snapshot_name="before-patch", quiesce=True),
        snapshot(WIN, "present", snapshot_name="after-patch"),
        info("vmware_guest_snapshot_info", WIN, folder=FOLDER),
    )
    res = ok(created)
    assert res["changed"] is True
    current = res["snapshot_results"]["current_snapshot"]
    assert (current["name"], current["description"], current["quiesced"]) == ("before-patch", "quiesced", True)
    assert current["state"] == "poweredOff"  # taken without memory
    assert ok(again)["changed"] is False and "already exists" in again.result["msg"]
    assert ok(second)["snapshot_results"]["current_snapshot"]["name"] == "after-patch"
    tree = ok(listed)["guest_snapshots"]
    assert names(tree["snapshots"]) == ["before-patch", "after-patch"]
    assert tree["current_snapshot"]["name"] == "after-patch"
    assert [s["quiesced"] for s in tree["snapshots"]] == [True, False]
    ids = [s["id"] for s in tree["snapshots"]]
    assert len(set(ids)) == 2

    # the host: a quiesced snapshot really went through VMware Tools
    assert [s.name for s in vm.root_snapshots] == ["before-patch"]
    assert [c.name for c in vm.root_snapshots[0].children] == ["after-patch"]
    assert vm.root_snapshots[0].quiesced is True
    kinds = [e.kind for e in host.trace.events[first_event:] if e.vm == vm.moref]
    assert "quiesce.start" in kinds and "quiesce.end" in kinds
    assert all(len(chain) == 3 for chain in chain_labels(esx, WIN).values())

    # the guest changes after the snapshots; reverting to the first brings the old disk back
    with host.lock:
        host.guest_fs(vm).write_bytes("C:\\patch.log", b"patched\r\n")
        assert host.guest_fs(vm).exists("C:\\patch.log")

    reverted, removed, removed_again, listed = playbook(
        snapshot(WIN, "revert", snapshot_name="before-patch"),
        snapshot(WIN, "absent", snapshot_name="after-patch"),
        snapshot(WIN, "absent", snapshot_name="after-patch"),
        info("vmware_guest_snapshot_info", WIN, folder=FOLDER),
    )
    res = ok(reverted)
    assert res["changed"] is True and res["snapshot_results"]["current_snapshot"]["name"] == "before-patch"
    assert vm.current_snapshot is not None and vm.current_snapshot.name == "before-patch"
    with host.lock:
        assert not host.guest_fs(vm).exists("C:\\patch.log")
    res = ok(removed)
    assert res["changed"] is True and names(res["snapshot_results"]["snapshots"]) == ["before-patch"]
    assert ok(removed_again)["changed"] is False
    assert "Couldn't find any snapshots" in removed_again.result["msg"]
    assert names(ok(listed)["guest_snapshots"]["snapshots"]) == ["before-patch"]
    assert [s.name for s in vm.root_snapshots] == ["before-patch"] and not vm.root_snapshots[0].children

    removed_all, nothing_left, revert_missing, listed = playbook(
        snapshot(WIN, "remove_all"),
        snapshot(WIN, "remove_all"),
        snapshot(WIN, "revert", snapshot_name="before-patch"),
        info("vmware_guest_snapshot_info", WIN, folder=FOLDER),
    )
    res = ok(removed_all)
    assert res["changed"] is True and res["snapshot_results"] == {}
    ok(nothing_left)  # RemoveAllSnapshots on a VM without snapshots is not an error
    assert revert_missing.failed and "does not have any snapshots" in revert_missing.result["msg"]
    assert ok(listed)["guest_snapshots"] == {}
    # every disk is back to its base, nothing to consolidate, and the trace is consistent
    assert vm.root_snapshots == [] and vm.current_snapshot is None
    assert {key: chain[-1] for key, chain in chain_labels(esx, WIN).items()} == base
    assert all(len(chain) == 1 for chain in chain_labels(esx, WIN).values())
    assert vm.consolidation_needed is False
    seqs = [e.seq for e in host.trace.events]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))


def test_snapshot_by_id_and_remove_children_on_linux(esx: Esx, playbook) -> None:
    vm = esx.vm(LINUX)
    first, child, listed = playbook(
        snapshot(LINUX, "present", snapshot_name="parent", quiesce=True),
        snapshot(LINUX, "present", snapshot_name="child"),
        info("vmware_guest_snapshot_info", LINUX, folder=FOLDER),
    )
    ok(first)
    ok(child)
    tree = ok(listed)["guest_snapshots"]["snapshots"]
    parent_id = next(s["id"] for s in tree if s["name"] == "parent")
    assert parent_id == vm.root_snapshots[0].id

    removed, listed = playbook(
        snapshot(LINUX, "absent", snapshot_id=parent_id, remove_children=True),
        info("vmware_guest_info", LINUX),
    )
    assert ok(removed)["changed"] is True and ok(removed)["snapshot_results"] == {}
    facts = ok(listed)["instance"]
    assert facts["snapshots"] == [] and facts["current_snapshot"] is None
    assert vm.root_snapshots == [] and all(len(c) == 1 for c in chain_labels(esx, LINUX).values())


def test_failed_quiesce_is_reported_and_leaves_no_snapshot(esx: Esx, playbook) -> None:
    vm = esx.vm(WIN)
    # the guest's first freeze script fails: Tools give up before the snapshot is taken (on
    # 3.5 U2 a VSS guest runs backupScripts.d alone, so the fault is on a script of that folder)
    esx.host.add_fault(operation="script", target="*10-sql-flush*", exit_code=3)
    failed, listed = playbook(
        snapshot(WIN, "present", snapshot_name="doomed", quiesce=True),
        info("vmware_guest_snapshot_info", WIN, folder=FOLDER),
    )
    assert failed.failed and failed.changed is False
    assert "quiesce" in failed.result["msg"].lower(), failed.result
    assert ok(listed)["guest_snapshots"] == {}
    assert vm.root_snapshots == [] and all(len(c) == 1 for c in chain_labels(esx, WIN).values())


def test_lookup_by_uuid_and_moid_and_a_memory_snapshot(esx: Esx, playbook) -> None:
    vm = esx.vm(WIN)
    by_uuid, by_instance_uuid, by_moid, memory, listed = playbook(
        {"community.vmware.vmware_guest_info": {"datacenter": DATACENTER, "uuid": vm.uuid}},
        {"community.vmware.vmware_guest_info": {
            "datacenter": DATACENTER, "uuid": vm.instance_uuid, "use_instance_uuid": True}},
        {"community.vmware.vmware_guest_disk_info": {"datacenter": DATACENTER, "moid": vm.moref}},
        {"community.vmware.vmware_guest_snapshot": {
            "datacenter": DATACENTER, "uuid": vm.uuid, "state": "present", "snapshot_name": "with-memory",
            "memory_dump": True}},
        {"community.vmware.vmware_guest_snapshot_info": {"datacenter": DATACENTER, "moid": vm.moref}},
    )
    assert ok(by_uuid)["instance"]["hw_name"] == WIN
    assert ok(by_instance_uuid)["instance"]["moid"] == vm.moref
    assert len(ok(by_moid)["guest_disk_info"]) == len(vm.disks)
    current = ok(memory)["snapshot_results"]["current_snapshot"]
    # a snapshot with memory of a running VM is a powered-on snapshot
    assert current["name"] == "with-memory" and current["state"] == "poweredOn"
    assert ok(listed)["guest_snapshots"]["current_snapshot"]["state"] == "poweredOn"
    assert vm.current_snapshot is not None and vm.current_snapshot.state == "poweredOn"


def test_guest_info_vsphere_schema_whole_object_and_chosen_properties(esx: Esx, playbook) -> None:
    vm = esx.vm(WIN)
    whole, chosen = playbook(
        info("vmware_guest_info", WIN, schema="vsphere"),
        info("vmware_guest_info", WIN, schema="vsphere", properties=[
            "config.hardware.memoryMB", "guest.toolsRunningStatus", "runtime.powerState", "layoutEx.file",
            "snapshot",
        ]),
    )
    everything = ok(whole)["instance"]
    assert everything["_vimid"] == vm.moref and everything["name"] == WIN
    assert everything["capability"]["quiescedSnapshotsSupported"] is True
    assert everything["config"]["uuid"] == vm.uuid
    facts = ok(chosen)["instance"]
    assert facts["config"]["hardware"]["memoryMB"] == vm.memory_mb
    assert facts["guest"]["toolsRunningStatus"] == "guestToolsRunning"
    assert facts["runtime"]["powerState"] == "poweredOn"
    files = {f["name"]: f for f in facts["layoutEx"]["file"]}
    assert files[vm.vmx_path]["type"] == "config"
    for d in vm.disks:
        descriptor = d.disk.chain()[-1].label
        assert files[descriptor]["type"] == "diskDescriptor"
        assert files[descriptor.replace(".vmdk", "-flat.vmdk")]["size"] == d.capacity
    assert facts.get("snapshot") is None
