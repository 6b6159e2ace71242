"""Property (issue 16): whatever the guest writes before and during an image backup (after the
snapshot, during the copy), a whole-VM restore over the wire gives disks equal, byte for byte,
to the disks as of the backup snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vcbsim.reference import BackupProxy, Catalog, VSphereHostClient
from vcbsim.reference._wirerestore import restore_vm_over_wire
from vcbsim.simulator._host import Host, MiB
from vcbsim.simulator.soap import serve

SIZES = (8 * MiB, 4 * MiB)  # two disks of different sizes

write = st.tuples(
    st.integers(0, len(SIZES) - 1),
    st.integers(0, SIZES[1] - 1),  # every offset fits the smaller disk (a multiple below)
    st.binary(min_size=1, max_size=70_000),  # up to a grain and a bit: crosses grain borders
)


def _apply(host: Host, vm: Any, writes: list[tuple[int, int, bytes]]) -> None:
    for index, offset, data in writes:
        d = vm.disks[index]
        offset = (offset * (index + 1)) % (d.capacity - len(data))
        host.guest_device(vm, d.key).write(offset, data)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=st.lists(write, min_size=1, max_size=6), during=st.lists(write, min_size=1, max_size=6),
       in_copy=st.lists(write, max_size=4))
def test_whole_vm_restore_round_trips_the_snapshot(before: list[Any], during: list[Any], in_copy: list[Any],
                                                   tmp_path_factory: Any) -> None:
    tmp = Path(tmp_path_factory.mktemp("prop"))
    host = Host("esx-3.5u2", seed=5)
    vm = host.add_vm("src", disks=list(SIZES))
    _apply(host, vm, before)
    expected = {d.key: host.disk_view(vm, d.key).read(0, d.capacity) for d in vm.disks}

    def after_snapshot(v: Any, step: str) -> None:
        if v is vm and step == "WF-1d":  # the snapshot exists: these writes go to the redo log
            _apply(host, vm, during)

    host.on_quiesce_step(after_snapshot)
    copying = list(in_copy)

    def progress(_what: str, _n: int, _total: int) -> None:
        while copying:  # while the proxy reads the snapshot
            _apply(host, vm, [copying.pop()])

    with serve(host, port=0) as server:
        url = f"https://127.0.0.1:{server.port}/sdk"
        with VSphereHostClient(url, "user", "pass", insecure=True) as client, Catalog(tmp / "medium") as cat:
            res = BackupProxy(client, tmp / "proxy", progress=progress).backup("name:src", "fullvm", catalog=cat)
            assert res.ok, res.summary()
            assert res.backup_id is not None
            restore_vm_over_wire(cat, res.backup_id, client, name="copy")
    copy = host.find_vm("copy")
    assert [d.capacity for d in copy.disks] == list(SIZES)
    for d, (_key, data) in zip(copy.disks, sorted(expected.items()), strict=True):
        assert host.disk_view(copy, d.key).read(0, d.capacity) == data
    # the writes during the backup are on the source (the commit kept them), not in the copy:
    # the property is not vacuous
    src = host.find_vm("src")
    assert src.snapshots() == []
    live = {d.key: host.disk_view(src, d.key).read(0, d.capacity) for d in src.disks}
    check = Host("esx-3.5u2", seed=5)
    twin = check.add_vm("src", disks=list(SIZES))
    _apply(check, twin, before + during + in_copy[::-1])
    assert live == {d.key: check.disk_view(twin, d.key).read(0, d.capacity) for d in twin.disks}
