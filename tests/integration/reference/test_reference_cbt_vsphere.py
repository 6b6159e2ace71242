"""The incremental image workflow over vSphere SOAP (``VSphereHostClient`` against
``serve(Host.demo("esxi-7.0"))``) gives the catalog and restorable disks the
in-process binding gives on a twin host."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from vcbsim.conformance._checker import check_trace
from vcbsim.reference import (
    BackupProxy,
    Catalog,
    InProcessHostClient,
    VSphereHostClient,
    read_export_catalog,
)
from vcbsim.simulator._host import Host
from vcbsim.simulator.disk import read_vmdk
from vcbsim.simulator.soap import serve

GRAIN = 64 * 1024
GiB = 1024**3
VM = "win2003-sql"


def grains(dev: Any) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for off, n in dev.allocated_areas():
        for g in range(off - off % GRAIN, off + n, GRAIN):
            data = dev.read(g, min(GRAIN, dev.size - g))
            if any(data):
                out[g] = data
    return out


def change(host: Any, step: int) -> None:
    """The same guest activity on both hosts: a file through the guest, a raw write."""
    vm = host.find_vm(f"name:{VM}")
    vm.guest.write_bytes(f"C:\\step{step}.bin", bytes([step + 1]) * (40_000 * (step + 1)))
    host.guest_device(vm, 2001).write(3 * GiB + 700 * 1024 * 1024 + step * 100_000 + 7, b"\x00\xee" * 30_000)


def workflow(client: Any, host: Any, root: Path) -> tuple[list[Any], Catalog, list[dict[int, dict[int, bytes]]]]:
    """incremental (CBT off: enables it, a full), then incremental, differential, incremental,
    with guest activity before each; returns the results, the open catalog and the disks as
    of each backup's snapshot (read on the host that served it)."""
    proxy = BackupProxy(client, root / "proxy")
    cat = Catalog(root / "medium")
    vm = host.find_vm(f"name:{VM}")
    results, expected = [], []
    for step, kind in enumerate(("incremental", "incremental", "differential", "incremental")):
        change(host, step)
        run = proxy.run(f"name:{VM}", "fullvm", catalog=cat, kind=kind)
        assert run.advance()
        snap = run.result.snapshot_id
        expected.append({d.key: grains(host.disk_view(vm, d.key, snap)) for d in vm.disks})
        res = run.run()
        assert res.ok, res.summary()
        results.append(res)
    return results, cat, expected


def described(cat: Catalog) -> list[Any]:
    out = []
    for rec in cat.backups():
        out.append((
            rec.kind, rec.level, rec.requested, rec.base_id, rec.fallback, rec.status, rec.files_total,
            rec.bytes_copied, [(f.name, f.size, f.sha256) for f in cat.image_files(rec.id) if f.name != "catalog"],
            cat.image_disks(rec.id),
            {d.key: cat.image_extents(rec.id, d.key) for d in cat.image_disks(rec.id)},
        ))  # fmt: skip
    return out


def restored(cat: Catalog, backup_id: int, where: Path) -> dict[int, dict[int, bytes]]:
    out = cat.restore_image_files(backup_id, where)
    meta = read_export_catalog(out / "catalog")
    disks = {int(k.split(".")[1]): grains(read_vmdk(out / v)) for k, v in meta.items() if k.endswith(".filename")}
    shutil.rmtree(out)
    return disks


def test_the_incremental_workflow_over_vsphere_gives_the_in_process_catalog_and_disks(tmp_path: Path) -> None:
    hosts = [Host.demo("esxi-7.0", seed=7) for _ in range(2)]
    twin = InProcessHostClient(hosts[1])
    with serve(hosts[0]) as running, VSphereHostClient(
        f"https://127.0.0.1:{running.port}/sdk", "user", "pass", insecure=True
    ) as client:
        remote, rcat, rexp = workflow(client, hosts[0], tmp_path / "vsphere")
        ops = [e.details.get("op") for e in client.trace.of_kind("op.ok")]
        assert "enable-change-tracking" in ops
        assert hosts[0].find_vm(f"name:{VM}").change_tracking is True  # ReconfigVM_Task did it
    local, lcat, lexp = workflow(twin, hosts[1], tmp_path / "inprocess")
    try:
        assert [(r.level, r.fallback != "", r.base_backup_id) for r in remote] == [
            ("full", True, None), ("incremental", False, 1), ("differential", False, 1), ("incremental", False, 3),
        ]  # fmt: skip
        assert [(r.level, r.fallback, r.base_backup_id, r.bytes_stored) for r in remote] == [
            (r.level, r.fallback, r.base_backup_id, r.bytes_stored) for r in local
        ]
        assert described(rcat) == described(lcat)
        assert rexp == lexp  # the two hosts really are twins
        for res, expected in zip(remote, rexp, strict=True):
            bid = res.backup_id or 0
            assert restored(rcat, bid, tmp_path / f"r{bid}") == expected
            assert restored(lcat, bid, tmp_path / f"l{bid}") == expected
        # the incrementals stored only what changed (the demo's disks hold little: ~1.4 MB)
        assert all(r.bytes_stored < remote[0].bytes_stored for r in remote[1:])
    finally:
        rcat.close()
        lcat.close()
    report = check_trace(hosts[1].trace.events, profile="esxi-7.0")
    assert report.ok, "\n".join(v.format() for v in report.violations)
