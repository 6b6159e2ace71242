"""VSS consistency and the quiesce spec per profile, in-process and over SOAP (issue 17).

Rows of the profile table in docs/architecture.md: "VSS application consistency",
"CreateSnapshotEx_Task", "vSphere 5.0 consolidation API (SOAP)".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from vcbsim.simulator import Host
from vcbsim.simulator._host import GiB
from vcbsim.simulator.soap import serve

PROFILES = ("esx-3.5u1", "esx-3.5u2", "esxi-7.0")


def _w2019(host: Host, name: str = "w2019", **kw: Any):
    vm = host.add_vm(name, disks=kw.pop("disks", [GiB]), guest_os="windows2019srv_64Guest", **kw)
    vm.extra_config["disk.EnableUUID"] = "TRUE"
    return vm


# -- row: VSS application consistency ---------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_windows_2003_is_application_consistent_where_vss_exists(profile: str) -> None:
    host = Host(profile)
    vm = host.add_vm("w2003", disks=[GiB])
    snap = host.create_snapshot(vm, "q", quiesce=True)
    assert snap.quiesced
    assert snap.quiesce_type == ("filesystem" if profile == "esx-3.5u1" else "application")  # U1: SYNC driver
    assert snap.backup_manifest == ("w2003-vss_manifests1.zip" if profile == "esxi-7.0" else None)


@pytest.mark.parametrize("profile", PROFILES)
def test_windows_2008_and_later_follow_the_4_1_rules(profile: str) -> None:
    """Application consistent only with disk.EnableUUID, SCSI-only disks, free SCSI slots and no
    dynamic disks, on hosts of 4.1 on; file-system consistent otherwise (spec R42, DOC-DR)."""
    host = Host(profile)
    good = _w2019(host)
    expected = {"esx-3.5u1": "filesystem", "esx-3.5u2": "filesystem", "esxi-7.0": "application"}[profile]
    assert host.vss_consistency(good)[0] == expected
    assert host.create_snapshot(good, "q", quiesce=True).quiesce_type == expected
    if profile != "esxi-7.0":
        return
    no_uuid = host.add_vm("nouuid", disks=[GiB], guest_os="windows2019srv_64Guest")
    ide = _w2019(host, "ide", disks=[GiB, GiB], disk_controllers=["scsi", "ide"])
    crowded = _w2019(host, "crowded", disks=[GiB] * 8)
    dynamic = _w2019(host, "dynamic")
    dynamic.dynamic_disks = True
    for vm, why in ((no_uuid, "EnableUUID"), (ide, "SCSI controller"), (crowded, "free SCSI slots"), (dynamic, "dynamic")):
        kind, reason = host.vss_consistency(vm)
        assert kind == "filesystem" and why in reason, (vm.name, reason)
        snap = host.create_snapshot(vm, "q", quiesce=True)
        assert snap.quiesced and snap.quiesce_type == "filesystem" and snap.backup_manifest is None
    assert 'ide0:0.fileName = "ide_1-000001.vmdk"' in ide.vmx_text()
    # Tools' own switch turns application quiescing off (OVT tools.conf vss.disableAppQuiescing)
    assert good.tools is not None
    good.tools.config["vss.disableAppQuiescing"] = True
    assert host.create_snapshot(good, "q2", quiesce=True).quiesce_type == "filesystem"


@pytest.mark.parametrize("profile", PROFILES)
def test_xp_and_linux_are_file_system_consistent(profile: str) -> None:
    host = Host(profile)
    xp = host.add_vm("xp", disks=[GiB], guest_os="winXPProGuest")
    lin = host.add_vm("lin", os_family="linux", disks=[GiB])
    assert xp.tools is not None and xp.tools.select_provider(profile) == "sync"
    for vm in (xp, lin):
        snap = host.create_snapshot(vm, "q", quiesce=True)
        assert snap.quiesced and snap.quiesce_type == "filesystem"


def test_unknown_guest_os_is_one_clear_error() -> None:
    from vcbsim.simulator import InvalidInputError

    with pytest.raises(InvalidInputError, match="guest_os"):
        Host().add_vm("x", os_family="linux", guest_os="winXPProGuest")


# -- rows over SOAP ----------------------------------------------------------------------------


@contextmanager
def _connected(host: Host) -> Iterator[Any]:
    with serve(host) as running:
        si = SmartConnect(host="127.0.0.1", port=running.port, user="user", pwd="pass", disableSslCertValidation=True)
        try:
            yield si
        finally:
            Disconnect(si)


def _find(si: Any, name: str) -> Any:
    return si.content.searchIndex.FindByInventoryPath(f"ha-datacenter/vm/{name}")


@pytest.mark.parametrize("profile", PROFILES)
def test_consolidation_api_over_soap(profile: str) -> None:
    host = Host(profile)
    host.add_vm("vm1", disks=[GiB])
    with _connected(host) as si:
        vm = _find(si, "vm1")
        WaitForTask(vm.CreateSnapshot_Task("s", "", False, False))
        snap = vm.snapshot.currentSnapshot
        if profile == "esxi-7.0":
            assert vm.runtime.consolidationNeeded is False
            WaitForTask(snap.RemoveSnapshot_Task(False, False))
            assert vm.runtime.consolidationNeeded is True
            WaitForTask(vm.ConsolidateVMDisks_Task())
            assert vm.runtime.consolidationNeeded is False
            return
        assert vm.runtime.consolidationNeeded is False  # API 2.5 has no such state
        with pytest.raises(vmodl.fault.InvalidArgument):
            WaitForTask(snap.RemoveSnapshot_Task(False, False))
        with pytest.raises(vmodl.fault.MethodNotFound):
            WaitForTask(vm.ConsolidateVMDisks_Task())
        WaitForTask(snap.RemoveSnapshot_Task(False))
        assert vm.snapshot is None


@pytest.mark.parametrize("profile", PROFILES)
def test_create_snapshot_ex_with_a_quiesce_spec(profile: str) -> None:
    host = Host(profile)
    w = host.add_vm("w2019", disks=[GiB], guest_os="windows2019srv_64Guest")
    w.extra_config["disk.EnableUUID"] = "TRUE"
    host.add_vm("lin", os_family="linux", disks=[GiB])
    with _connected(host) as si:
        vm = _find(si, "w2019")
        spec = vim.vm.WindowsQuiesceSpec(timeout=10, vssBackupType=1, vssBootableSystemState=True,
                                         vssPartialFileSupport=False, vssBackupContext="ctx_backup")
        if profile != "esxi-7.0":
            with pytest.raises(vmodl.fault.MethodNotFound):
                WaitForTask(vm.CreateSnapshotEx_Task("q", "", False, spec))
            return
        WaitForTask(vm.CreateSnapshotEx_Task("q", "", False, spec))
        tree = vm.snapshot.rootSnapshotList[0]
        assert tree.quiesced and tree.backupManifest == "w2019-vss_manifests1.zip"
        assert host.trace.of_kind("quiesce.start")[-1].details["timeout"] == 600.0  # 10 minutes
        spec.vssBackupContext = "ctx_file_share_backup"
        WaitForTask(vm.CreateSnapshotEx_Task("fs", "", False, spec))
        assert host.find_vm("w2019").current_snapshot.quiesce_type == "filesystem"  # type: ignore[union-attr]
        with pytest.raises(vmodl.fault.InvalidArgument):
            WaitForTask(vm.CreateSnapshotEx_Task("bad", "", False, vim.vm.GuestQuiesceSpec(timeout=1)))
        lin = _find(si, "lin")
        with pytest.raises(vim.fault.ApplicationQuiesceFault):
            WaitForTask(lin.CreateSnapshotEx_Task("q", "", False, spec))
        WaitForTask(lin.CreateSnapshotEx_Task("q", "", False, vim.vm.GuestQuiesceSpec(timeout=5)))
        assert lin.snapshot.rootSnapshotList[0].quiesced
        WaitForTask(lin.CreateSnapshotEx_Task("plain", "", False, None))
        assert not host.find_vm("lin").current_snapshot.quiesced  # type: ignore[union-attr]
