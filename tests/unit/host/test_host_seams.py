"""The explicit seams that replaced attributes patched in from other modules.

``Host.populate`` is what ``reset()`` rebuilds (it used to read ``_is_demo``/``_populate``
that five modules set with ``# type: ignore``); ``moref_counters``/``reserve_morefs`` are what
persistence saves and restores (it used to write ``Host``'s private counters);
``LayeredDisk.restore``/``Layer.gone`` are what a loader gives a disk rebuilt from saved state.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vcbsim.simulator import Host, InvalidInputError, MorefCounters, open_host
from vcbsim.simulator._demo import populate_demo
from vcbsim.simulator.disk import Layer, LayeredDisk

MiB = 1024**2
ROOT = Path(__file__).resolve().parents[3]


def _two_vms(host: Host) -> None:
    host.add_vm("a", disks=[MiB])
    host.add_vm("b", disks=[MiB])


def test_populate_builds_the_host_and_reset_rebuilds_it() -> None:
    host = Host(populate=_two_vms)
    assert sorted(vm.name for vm in host.vms.values()) == ["a", "b"]
    host.add_vm("extra", disks=[MiB])
    host.reset(seed=4)
    assert sorted(vm.name for vm in host.vms.values()) == ["a", "b"]
    assert host.populate is _two_vms and host.seed == 4


def test_a_host_without_populate_resets_to_no_vms() -> None:
    host = Host()
    host.add_vm("x", disks=[MiB])
    host.reset()
    assert host.vms == {} and not host.is_demo


def test_the_demo_is_what_its_reset_rebuilds_and_can_be_switched_off() -> None:
    host = Host.demo()
    assert host.is_demo and host.populate is populate_demo
    host.reset()
    assert sorted(vm.name for vm in host.vms.values()) == ["rhel5-web", "win2003-sql"]
    host.populate = None  # what the control API's reset(demo=False) does
    host.reset()
    assert host.vms == {}


def test_moref_counters_follow_the_ids_handed_out_and_only_move_up() -> None:
    host = Host()
    assert host.moref_counters == MorefCounters(1, 1)
    vm = host.add_vm("a", disks=[MiB], power_state="poweredOff")
    host.create_snapshot(vm, "s1")
    assert host.moref_counters == MorefCounters(2, 2)
    host.reserve_morefs(next_vm=10, next_snapshot=7)
    host.reserve_morefs(next_vm=3)  # lower: ignored, an id once given is never reused
    assert host.moref_counters == MorefCounters(10, 7)
    assert host.add_vm("b", disks=[MiB]).moref == "vm-10"


def test_a_reopened_datastore_keeps_its_counters_and_its_demo_flag(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = open_host(d)
    host.reserve_morefs(next_vm=50)
    assert host.store is not None
    host.store.save_host()
    host.store.close()
    again = open_host(d, demo=False)
    assert again.moref_counters.next_vm == 50
    assert again.is_demo  # made from the demo: its reset rebuilds the demo
    assert again.store is not None
    again.store.close()


def test_disk_restore_sets_the_saved_tracking_state() -> None:
    disk = LayeredDisk(4 * 65536)
    frozen = disk.freeze()
    disk.release(frozen, merge=False)
    disk.restore(epoch=9, tracking_start=5, auto_merge=[frozen], changed={0: 6, 2: 9})
    assert disk.epoch == 9 and disk.tracking_start == 5
    assert disk.auto_merge == frozenset({frozen})
    assert disk.changed_grains(6) == {0, 2}
    assert disk.changed_grains(7) == {2}
    with pytest.raises(InvalidInputError, match="tracking_start"):
        disk.restore(tracking_start=10)
    with pytest.raises(InvalidInputError, match="layer"):
        disk.restore(auto_merge=[LayeredDisk(65536).top])


def test_a_gone_layer_is_not_alive_and_no_disk_accepts_it() -> None:
    gone = Layer.gone("old-000001.vmdk")
    assert not gone.alive and not gone.is_top and gone.label == "old-000001.vmdk"
    with pytest.raises(InvalidInputError, match="merged away"):
        LayeredDisk(65536).view(gone)


def test_no_module_patches_another_modules_object() -> None:
    """The rule the seams exist for: no ``# type: ignore[attr-defined]`` that sets an attribute
    on a vcbsim object from outside its class, and persistence uses only public seams."""
    sources = [p for d in ("simulator", "reference", "conformance", "vcbsim") for p in (ROOT / d).rglob("*.py")]
    assert sources
    patched = re.compile(r"^\s*\w+\.\w+\s*=.*# type: ignore\[attr-defined\]")
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in sources
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if patched.match(line) and not line.lstrip().startswith("fn.")
    ]
    assert offenders == []
    persist = (ROOT / "simulator" / "_persist.py").read_text(encoding="utf-8")
    assert not re.search(r"\bh(ost)?\._[a-z]", persist), "persistence reaches into Host privates"
