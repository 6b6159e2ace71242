"""Every ``pp_`` getter (a property path answered without building the whole property) answers
exactly what the full walk answers, on the wire, in every state the demo host can show."""

from __future__ import annotations

import pytest

from vcbsim.simulator import Host
from vcbsim.simulator.soap import Endpoint
from vcbsim.simulator.soap._collector import resolve_path
from vcbsim.simulator.soap.mo import ALL_TYPES, VirtualMachineImpl
from vcbsim.simulator.soap.wire._codec import DEFAULT_VERSION, serialize_value


def _paths(impl_type: type) -> list[str]:
    return [n[3:].replace("_", ".") for n in dir(impl_type) if n.startswith("pp_")]


def _same_answers(ep: Endpoint) -> int:
    checked = 0
    with ep.lock:
        ep.begin_call()
        for moid in ep.host.vms:
            for path in _paths(VirtualMachineImpl):
                fast = resolve_path(VirtualMachineImpl(ep, moid), path)
                slow = resolve_path(VirtualMachineImpl(ep, moid), path, shortcuts=False)
                assert serialize_value(fast, DEFAULT_VERSION) == serialize_value(slow, DEFAULT_VERSION), path
                checked += 1
    return checked


def test_the_virtual_machine_answers_some_paths_itself() -> None:
    assert {"config.name", "config.hardware.device", "runtime.powerState"} <= set(_paths(VirtualMachineImpl))
    # only the VM has them so far; another type's getters would be checked the same way
    assert [t for t in ALL_TYPES if _paths(t)] == [VirtualMachineImpl]


@pytest.mark.parametrize("profile", ["esx-3.5u2", "esxi-7.0"])
def test_subpath_getters_answer_what_the_full_property_answers(profile: str) -> None:
    host = Host.demo(profile, seed=7)
    ep = Endpoint(host)
    assert _same_answers(ep) > 0
    for vm in list(host.vms.values()):  # redo logs, change tracking, a second snapshot, power off
        if host.profile.change_tracking:
            host.reconfigure(vm, change_tracking=True)
        host.create_snapshot(vm, "one", "", False, False)
        _same_answers(ep)
        host.create_snapshot(vm, "two", "", False, False)
        if vm.power_state == "poweredOn":
            host.power_off(vm)
        _same_answers(ep)
