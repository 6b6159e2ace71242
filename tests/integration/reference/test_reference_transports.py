"""The reference proxy on each transport (``-m folder | nfc | hotadd``), in process: random
guest writes during the backup, and the restored image equals the snapshot byte for byte;
the lease is completed / the disks detached before the snapshot is removed (seed 3a, 3b)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vcbsim.conformance._checker import check_trace
from vcbsim.reference import BackupProxy, Catalog, InProcessHostClient
from vcbsim.simulator import InvalidInputError, SimRandom
from vcbsim.simulator._hotadd import mark_proxy
from vcbsim.simulator.disk import read_vmdk
from vcbsim.simulator.guest import Workload

MiB = 1 << 20


def digest(view: Any) -> str:
    h = hashlib.sha256()
    for off in range(0, view.size, 8 * MiB):
        h.update(view.read(off, min(8 * MiB, view.size - off)))
    return h.hexdigest()


def with_proxy_vm(host: Any) -> Any:
    host.add_vm("vcb-proxy", os_family="windows", disks=[8 * MiB])
    mark_proxy(host, "vcb-proxy")
    return host


def backup_and_compare(helpers: Any, tmp: Path, mode: str, seed: int, writes: list[int]) -> Any:
    host = with_proxy_vm(helpers.small_host(seed, profile="esxi-7.0"))
    vm = host.find_vm("name:win1")
    work = Workload(vm.guest, SimRandom(seed), host.clock, root="D:\\work", max_size=9000, max_files=8)
    proxy = BackupProxy(InProcessHostClient(host), tmp / "proxy", transport=mode)
    with Catalog(tmp / "medium") as cat:
        run = proxy.run("name:win1", "fullvm", catalog=cat)
        assert run.advance()  # WF-1: the snapshot exists
        snap = vm.snapshots()[0]
        expected = {d.key: digest(host.disk_view(vm, d.key, snap.moref)) for d in vm.disks}
        i = 0
        while True:
            work.run(writes[i % len(writes)])  # the guest writes on while the proxy reads
            i += 1
            if not run.advance():
                break
        res = run.result
        assert res.ok and res.backup_id is not None, res.summary()
        assert vm.snapshots() == [] and not vm.consolidation_needed
        assert work.verify() == [], "a write made during the backup was lost at commit"
        out = cat.restore_image_files(res.backup_id, tmp / "restored")
        by_key = {d.key: d for d in cat.image_disks(res.backup_id)}
        got = {key: digest(read_vmdk(out / d.file_name).view(None)) for key, d in by_key.items()}
    assert got == expected
    return host


@pytest.mark.parametrize("mode", ["folder", "nfc", "hotadd"])
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), writes=st.lists(st.integers(0, 5), min_size=1, max_size=4))
def test_a_backup_through_each_transport_round_trips_byte_for_byte(
    helpers: Any, tmp_path_factory: pytest.TempPathFactory, mode: str, seed: int, writes: list[int]
) -> None:
    host = backup_and_compare(helpers, tmp_path_factory.mktemp(mode), mode, seed, writes)
    events = host.trace.events
    report = check_trace(events, profile="esxi-7.0")
    assert report.ok, report
    ops = [(e.details.get("op"), e.kind) for e in events if e.actor == "proxy" and e.kind.startswith("op.")]
    if mode != "folder":
        order = [op for op, kind in ops if kind == "op.ok"]
        assert order.index("attach-disks") < order.index("release-disks") < order.index("remove-snapshot")
        host_kinds = [e.kind for e in events if e.kind.startswith(("nfc.", "disk.hot"))]
        assert host_kinds, "the transport left no host events"
        if mode == "nfc":
            states = [e.details["state"] for e in events if e.kind == "nfc.lease"]
            assert states == ["initializing", "ready", "done"]
        else:
            assert host_kinds.count("disk.hotadd") == host_kinds.count("disk.hotremove") == 2
            assert sum(e.details["bytes"] for e in events if e.kind == "disk.hotread") > 0


def test_vcb_names_map_and_san_is_refused(tmp_path: Path, helpers: Any) -> None:
    client = InProcessHostClient(helpers.small_host())
    assert BackupProxy(client, tmp_path, transport="nbd").mode == "nfc"
    assert BackupProxy(client, tmp_path, transport="nbdssl").mode == "nfc"
    assert BackupProxy(client, tmp_path, transport="cos").mode == "folder"
    assert BackupProxy(client, tmp_path, transport="hotadd").mode == "hotadd"
    with pytest.raises(InvalidInputError, match="storage fabric"):
        BackupProxy(client, tmp_path, transport="san")


def test_hotadd_without_a_proxy_vm_fails_the_expose_step_with_one_line(tmp_path: Path, helpers: Any) -> None:
    host = helpers.small_host(profile="esxi-7.0")
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "proxy", transport="hotadd")
    with Catalog(tmp_path / "medium") as cat:
        res = proxy.backup("name:win1", "fullvm", catalog=cat)
    assert not res.ok and res.failed_step == "WF-1f"
    assert "marked as the backup proxy" in res.reason
    assert host.find_vm("name:win1").snapshots() == []  # the snapshot was still removed


def test_nfc_on_an_esx_3_5_host_is_method_not_found(tmp_path: Path, helpers: Any) -> None:
    host = helpers.small_host(profile="esx-3.5u2")
    proxy = BackupProxy(InProcessHostClient(host), tmp_path / "proxy", transport="nfc")
    with Catalog(tmp_path / "medium") as cat:
        res = proxy.backup("name:win1", "fullvm", catalog=cat)
    assert not res.ok and res.failed_step == "WF-1f" and res.fault == "MethodNotFound"
    assert host.find_vm("name:win1").snapshots() == []


def test_the_cli_backs_up_through_hotadd_with_a_named_proxy_vm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vcbsim.reference._cli import main_backup

    state = ["--state", str(tmp_path / "s"), "--no-progress"]
    assert main_backup(["-a", "name:rhel5-web", "-m", "hotadd", "--proxy-vm", "win2003-sql", *state]) == 0
    assert "rhel5-web: ok" in capsys.readouterr().out
    assert main_backup(["-a", "name:rhel5-web", "-m", "san", *state]) == 2
    assert "storage fabric" in capsys.readouterr().err
