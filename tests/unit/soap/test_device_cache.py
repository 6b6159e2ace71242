"""A VM's device list: built without pyVmomi's per-field checks, kept until what it is built
from changes, and its XML kept on it (``_vmprops.build_devices``, ``_fastencode.freeze``).

Properties:

- every object the unchecked builders make is one pyVmomi's checked constructors accept, and
  it is written exactly as its checked copy is (on every VM of both demo inventories, both profiles);
- a second read of an unchanged VM answers the same list without building it again; a
  snapshot, a power operation, a new change id and a datastore renumbering
  each give a new list that shows the change;
- a frozen array is written as the same bytes, the first time and from its kept text, in
  every position and version, as an unfrozen copy and as pyVmomi's serializer writes it.
"""

from __future__ import annotations

from typing import Any

import pytest
from pyVmomi import SoapAdapter, VmomiSupport, vim, vmodl
from pyVmomi.VmomiSupport import DataObject, Object

from vcbsim.simulator import Host
from vcbsim.simulator.soap.mo import _vmprops
from vcbsim.simulator.soap.mo._vmview import VMView
from vcbsim.simulator.soap.wire import _codec, _fastencode

V = _codec.DEFAULT_VERSION
MiB = 1024**2


def checked_copy(value: Any) -> Any:
    """``value`` rebuilt through pyVmomi's checked constructors (``CheckField`` on every
    property), all the way down: raises where a property holds what its type refuses."""
    if isinstance(value, DataObject):
        fields = {p.name: checked_copy(getattr(value, p.name)) for p in value._GetPropertyList()}
        return type(value)(**fields)
    if isinstance(value, list):
        return type(value)(checked_copy(v) for v in value)
    return value


def ds_ref(name: str) -> Any:
    return vim.Datastore({"datastore1": "datastore-1"}.get(name, "datastore-9"))


def net_ref(name: str) -> Any:
    return vim.Network("network-1")


def devices(host: Host, vm: Any, ds: Any = ds_ref) -> Any:
    """The VM's device list as ``config.hardware.device`` answers it, checked against one
    built afresh (the cache emptied): what is kept is always what would be built now."""
    answer = _vmprops.build_devices(VMView(host, vm), VMView(host, vm).disks, ds, net_ref)
    kept = dict(_vmprops._DEVICES)
    _vmprops._DEVICES.clear()
    try:
        fresh = _vmprops.build_devices(VMView(host, vm), VMView(host, vm).disks, ds, net_ref)
    finally:
        _vmprops._DEVICES.clear()
        _vmprops._DEVICES.update(kept)
    assert text(answer) == text(fresh)
    return answer


def text(value: Any) -> str:
    return str(SoapAdapter.SerializeToStr(value, Object(name="val", type=object, version=V, flags=0), V))


@pytest.mark.parametrize("inventory", ["demo", "era"])
@pytest.mark.parametrize("profile", ["esx-3.5u2", "esxi-7.0"])
def test_the_unchecked_builders_make_what_the_checked_constructors_accept(profile: str, inventory: str) -> None:
    host = Host.demo(profile, seed=3, inventory=inventory)  # era: RDMs, IDE disks, SEsparse
    vm0 = next(iter(host.vms.values()))
    host.create_snapshot(vm0, "one")  # a chain of two: parent backings too
    seen = 0
    backings: set[str] = set()
    for vm in host.vms.values():
        built = devices(host, vm)
        assert any(isinstance(d, vim.vm.device.VirtualDisk) for d in built)
        for device in built:
            assert text(checked_copy(device)) == text(device)
            seen += 1
            if isinstance(device, vim.vm.device.VirtualDisk):
                backings.add(type(device.backing).__name__.rsplit(".", 1)[-1])
    assert seen > 10
    if inventory == "era":
        assert "RawDiskMappingVer1BackingInfo" in backings


def test_an_unchanged_vm_answers_the_same_list_and_changes_give_new_ones() -> None:
    host = Host("esxi-7.0", seed=1)
    vm = host.add_vm("cached", disks=[64 * MiB])
    first = devices(host, vm)
    assert devices(host, vm) is first  # nothing changed: not built again
    assert isinstance(first, _vmprops._DEVICE_ARRAY)

    def disk(devs: Any) -> Any:
        return next(d for d in devs if isinstance(d, vim.vm.device.VirtualDisk))

    def nic(devs: Any) -> Any:
        return next(d for d in devs if isinstance(d, vim.vm.device.VirtualEthernetCard))

    assert nic(first).connectable.connected is True
    host.create_snapshot(vm, "s1")
    after_snap = devices(host, vm)
    assert after_snap is not first
    assert disk(after_snap).backing.fileName.endswith("-000001.vmdk")
    assert disk(after_snap).backing.parent.fileName == disk(first).backing.fileName

    host.power_off(vm)
    off = devices(host, vm)
    assert nic(off).connectable.connected is False

    host.remove_all_snapshots(vm)
    host.reconfigure(vm, change_tracking=True)
    host.create_snapshot(vm, "stun")  # change tracking becomes active at the next stun
    tracked = devices(host, vm)
    before = disk(tracked).backing.changeId
    assert before
    vm.disks[0].disk.write(0, b"\x01" * 65536)
    host.create_snapshot(vm, "next")
    assert disk(devices(host, vm)).backing.changeId != before  # the next change id

    moved = devices(host, vm, ds=lambda name: vim.Datastore("datastore-7"))
    assert disk(moved).backing.datastore._moId == "datastore-7"


def test_every_answer_is_a_fresh_build_when_the_vm_changes_between_reads_of_a_config() -> None:
    """``config`` (built whole) holds the same device list as ``config.hardware.device``."""
    host = Host("esx-3.5u2", seed=1)
    vm = host.add_vm("cfg", disks=[64 * MiB])
    view = VMView(host, vm)
    config = _vmprops.build_config(view, ds_ref=ds_ref, net_ref=net_ref)
    assert text(config.hardware.device) == text(devices(host, vm))


def _holder(value: Any) -> Any:
    return vmodl.query.PropertyCollector.ObjectContent(
        obj=vim.VirtualMachine("vm-1"), propSet=[vmodl.DynamicProperty(name="config.hardware.device", val=value)]
    )


@pytest.mark.parametrize("version", [V, "vim.version.version10", "vim.version.version5"])
def test_a_frozen_array_is_written_as_an_unfrozen_one_and_as_pyvmomi_writes_it(version: str) -> None:
    host = Host.demo("esxi-7.0", seed=5)
    vm = next(iter(host.vms.values()))
    frozen = devices(host, vm)
    plain = _vmprops._DEVICE_ARRAY(list(frozen))
    info = VmomiSupport.GetWsdlMethod("urn:vim25", "RetrieveProperties").info
    want = _fastencode.encode_fast([_holder(plain)], info, version)
    assert want is not None
    rinfo = Object(name="returnval", type=info.result, version=version, flags=info.resultFlags)
    assert want == _codec.serialize_to_str([_holder(plain)], rinfo, version)  # pyVmomi's serializer
    for _ in range(2):  # written, then from the kept text
        assert _fastencode.encode_fast([_holder(frozen)], info, version) == want
    # kept per position: the same list as a result of its own is written as pyVmomi writes it
    fetch = _codec.fetch_info(version)
    assert _fastencode.encode_fast(frozen, fetch, version) == _fastencode.encode_fast(plain, fetch, version)


def test_freeze_leaves_other_values_alone() -> None:
    value = [1, 2]
    assert _fastencode.freeze(value) is value
    assert not hasattr(value, "__dict__")
