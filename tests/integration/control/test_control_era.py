"""The control API builds the era cases (issue 17): a VM with RDMs, disk modes, a guest OS and
``.vmx`` settings, and ``reset`` to the era inventory; a vSphere client then sees them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from vcbsim.simulator import Host
from vcbsim.simulator.soap import ControlClient, ControlError, serve


@pytest.fixture
def server() -> Iterator[Any]:
    with serve(Host("esxi-7.0", seed=3), http=True) as running:
        yield running


@pytest.fixture
def ctl(server: Any) -> ControlClient:
    return ControlClient(server.url, "user", "pass")


def test_a_vm_with_rdms_and_disk_modes(server: Any, ctl: ControlClient) -> None:
    vm = ctl.add_vm(
        "db", disks=["64MiB"] * 4, guest_os="windows2019srv_64Guest",
        disk_rdms=[None, "physicalMode", "virtualMode", None],
        disk_modes=["persistent", "independent_persistent", "persistent", "independent_nonpersistent"],
        extra_config={"disk.EnableUUID": "TRUE"},
    )
    assert [d["rdm"] for d in vm["disks"]] == [None, "physicalMode", "virtualMode", None]
    assert vm["guest_id"] == "windows2019srv_64Guest"
    si = SmartConnect(host="127.0.0.1", port=server.port, user="user", pwd="pass", protocol="http")
    try:
        mo = si.content.searchIndex.FindByInventoryPath("ha-datacenter/vm/db")
        backings = [d.backing for d in mo.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
        assert [getattr(b, "compatibilityMode", None) for b in backings] == [None, "physicalMode", "virtualMode", None]
        assert backings[3].diskMode == "independent_nonpersistent"
        assert any(o.key == "disk.EnableUUID" and o.value == "TRUE" for o in mo.config.extraConfig)
    finally:
        Disconnect(si)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"disk_rdms": "physicalMode"}, "vms.disk_rdms"),
        ({"disk_rdms": ["rawMode"]}, "RDM compatibility mode"),
        ({"disk_modes": ["persistent", "persistent"]}, "disk_modes"),
        ({"extra_config": {"disk.EnableUUID": True}}, "vms.extra_config"),
        ({"guest_os": "winXPProGuest", "os": "linux"}, "guest_os"),
    ],
)
def test_bad_era_fields_are_one_clear_error_and_leave_no_vm(ctl: ControlClient, spec: dict[str, Any], says: str) -> None:
    with pytest.raises(ControlError, match=says):
        ctl.add_vm("bad", disks=["64MiB"], **spec)
    assert "bad" not in [vm["name"] for vm in ctl.state()["vms"]]


def test_reset_to_the_era_inventory(ctl: ControlClient) -> None:
    out = ctl.reset(inventory="era", profile="esx-3.5u1")
    assert out["vms"] == ["winxp-legacy", "w2019-app", "sql-indep", "web-2ds", "notools", "db-rdm"]
    assert out["profile"] == "esx-3.5u1"
    with pytest.raises(ControlError, match="reset.inventory"):
        ctl.reset(inventory="era", demo=False)
    assert ctl.reset(inventory="demo")["vms"] == ["win2003-sql", "rhel5-web"]


def test_disks_on_two_datastores_and_vss_settings_over_soap(server: Any, ctl: ControlClient) -> None:
    """``VirtualMachine.datastore`` lists every datastore the VM has files on, storage usage is
    per datastore, and ``disk.EnableUUID`` shows in ``extraConfig`` and ``flags.diskUuidEnabled``."""
    ctl.reset(inventory="era", profile="esxi-7.0")
    si = SmartConnect(host="127.0.0.1", port=server.port, user="user", pwd="pass", protocol="http")
    try:
        web = si.content.searchIndex.FindByInventoryPath("ha-datacenter/vm/web-2ds")
        assert sorted(ds.name for ds in web.datastore) == ["datastore1", "datastore2"]
        usage = {u.datastore.name: u.committed for u in web.storage.perDatastoreUsage}
        assert set(usage) == {"datastore1", "datastore2"} and all(v > 0 for v in usage.values())
        w19 = si.content.searchIndex.FindByInventoryPath("ha-datacenter/vm/w2019-app")
        assert w19.config.flags.diskUuidEnabled is True and w19.config.version == "vmx-19"
        assert {o.key: o.value for o in w19.config.extraConfig}["disk.EnableUUID"] == "TRUE"
        xp = si.content.searchIndex.FindByInventoryPath("ha-datacenter/vm/winxp-legacy")
        assert xp.config.flags.diskUuidEnabled is False
    finally:
        Disconnect(si)
