"""Benchmark: a whole-VM restore over the wire against ``qemu-img convert`` of the same data.

Run: ``python benchmarks/bench_restore.py [--mib 128] [--fill 50] [--repeat 3] [--json-out FILE]``
(prints a table; no assertions on time).

A host (in memory, served in this process on loopback) gets a VM with one ``--mib`` MiB disk,
``--fill`` percent of it written (1 MiB runs spread over the disk); the reference proxy takes
an image backup of it over the wire (not measured). Then, ``--repeat`` times (the best run
kept):

- **wire restore**: ``reference/_wirerestore.restore_vm_over_wire`` as a new VM: the disk
  rebuilt from the catalog, written as a monolithic sparse VMDK, uploaded with ``PUT /folder``,
  registered with ``RegisterVM_Task`` (the host imports it); wall time, and CPU time of this
  process (proxy and server threads together, steady on a shared machine);
- **qemu-img**: ``qemu-img convert -O vmdk`` of the backup's own VMDK to a monolithic sparse
  VMDK (what a restore must at least do with the data: read and write it once); wall time and
  the child's CPU time.

- **nfc import** (a second host, ``esxi-7.0``: the lease needs API 4.0): the VM exported once
  through ``ExportVm`` (not measured), then restored through the OVF way back:
  ``CreateImportSpec``, ``ResourcePool.ImportVApp``, the stream-optimized disk uploaded to the
  import lease, ``HttpNfcLeaseComplete``; wall and CPU time of this process; qemu-img's row for
  it converts the same stream-optimized file to a monolithic sparse VMDK.

- **hotadd** (``vcbsim restore --server ... --vm -m hotadd``, ``reference/_hotaddrestore.py``):
  ``CreateVM_Task`` with an empty disk, the disk hot-added writable to the marked proxy VM and
  the backup's allocated areas written through the NBD device it becomes in the proxy's guest,
  then detached; qemu-img's row converts the backup's own VMDK, as for the upload.

- **hotadd over** (``--over -m hotadd``, ``restore_vm_hotadd_over``): the same backup written
  over the original VM (powered off first, not measured) through the proxy's NBD device: its
  own disk attached writable, the backup's allocated areas written, the areas the disk holds
  and the backup has not read and zeroed (none once it equals the backup), detached.

Throughput is the data written to the disk (``--fill`` of the capacity) per second. The ratio
column is vcbsim's time over qemu-img's: the price of the wire (HTTP, the import) over a
local conversion of the same bytes.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from vcbsim.reference import BackupProxy, Catalog, VSphereHostClient
from vcbsim.reference._hotaddrestore import restore_vm_hotadd, restore_vm_hotadd_over
from vcbsim.reference._wirerestore import restore_vm_over_wire
from vcbsim.simulator._host import Host, MiB
from vcbsim.simulator._hotadd import mark_proxy
from vcbsim.simulator.soap import serve


def build(mib: int, fill: int, profile: str = "esx-3.5u2") -> Host:
    host = Host(profile, seed=0)
    vm = host.add_vm("big", disks=[mib * MiB], tools="not-installed", power_state="poweredOn")
    runs = max(1, mib * fill // 100)
    stride = max(1, mib // runs)
    for i in range(runs):
        off = (i * stride) * MiB
        vm.disks[0].disk.write(off, bytes([(i % 251) + 1]) * MiB)
    return host


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def qemu_convert(src: Path, repeat: int) -> tuple[float, float] | None:
    """Best (wall, child CPU) of ``repeat`` ``qemu-img convert`` runs of ``src`` to a
    monolithic sparse VMDK beside it; ``None`` without qemu-img."""
    if not shutil.which("qemu-img"):
        return None
    runs: list[tuple[float, float]] = []
    for i in range(repeat):
        dst = src.with_name(f"conv{i}.vmdk")
        c0, w0 = child_cpu(), time.perf_counter()
        subprocess.run(["qemu-img", "convert", "-O", "vmdk", str(src), str(dst)], check=True)
        runs.append((time.perf_counter() - w0, child_cpu() - c0))
        dst.unlink()
    return min(runs)


def qemu_convert_backup(cat: Catalog, backup_id: int, tmp: Path, repeat: int) -> tuple[float, float] | None:
    """The baseline of every leg: the backup's VMDK copied out of the medium, then ``qemu_convert``."""
    vmdk = next(f for f in cat.image_files(backup_id) if f.name.endswith(".vmdk"))
    src = tmp / vmdk.name
    cat.store.copy_to(vmdk.sha256, src)
    return qemu_convert(src, repeat)


def measure(mib: int, fill: int, repeat: int) -> dict[str, Any]:
    host = build(mib, fill)
    data_bytes = max(1, mib * fill // 100) * MiB
    with tempfile.TemporaryDirectory(prefix="bench-restore-") as tmp, serve(host, port=0) as server:
        url = f"https://127.0.0.1:{server.port}/sdk"
        with VSphereHostClient(url, "user", "pass", insecure=True) as client, Catalog(Path(tmp) / "medium") as cat:
            res = BackupProxy(client, Path(tmp) / "proxy", quiesce=False, split=False).backup("name:big", "fullvm", catalog=cat)
            assert res.ok and res.backup_id is not None, res.summary()
            wire: list[tuple[float, float]] = []
            for i in range(repeat):
                c0, w0 = time.process_time(), time.perf_counter()
                restore_vm_over_wire(cat, res.backup_id, client, name=f"copy{i}")
                wire.append((time.perf_counter() - w0, time.process_time() - c0))
                host.destroy_vm(f"copy{i}")  # the next run starts from the same datastore
            qemu = qemu_convert_backup(cat, res.backup_id, Path(tmp), repeat)
    return _row(mib, fill, data_bytes, "folder upload", min(wire), qemu)


def measure_hotadd(mib: int, fill: int, repeat: int) -> dict[str, Any]:
    """The hot-add way back: the new VM's disk written through the proxy VM's NBD device."""
    host = build(mib, fill)
    host.add_vm("vcb-proxy", disks=[8 * MiB], tools="not-installed", power_state="poweredOn")
    data_bytes = max(1, mib * fill // 100) * MiB
    with tempfile.TemporaryDirectory(prefix="bench-restore-hot-") as tmp, serve(host, port=0) as server:
        mark_proxy(host, "vcb-proxy", tmp)
        url = f"https://127.0.0.1:{server.port}/sdk"
        with VSphereHostClient(url, "user", "pass", insecure=True) as client, Catalog(Path(tmp) / "medium") as cat:
            res = BackupProxy(client, Path(tmp) / "proxy", quiesce=False, split=False).backup("name:big", "fullvm", catalog=cat)
            assert res.ok and res.backup_id is not None, res.summary()
            hot: list[tuple[float, float]] = []
            for i in range(repeat):
                c0, w0 = time.process_time(), time.perf_counter()
                restore_vm_hotadd(cat, res.backup_id, client, name=f"hot{i}")
                hot.append((time.perf_counter() - w0, time.process_time() - c0))
                host.destroy_vm(f"hot{i}")
            qemu = qemu_convert_backup(cat, res.backup_id, Path(tmp), repeat)
    return _row(mib, fill, data_bytes, "hotadd", min(hot), qemu)

def measure_hotadd_over(mib: int, fill: int, repeat: int) -> dict[str, Any]:
    """The hot-add way back over the original: its own disk written through the proxy's device."""
    host = build(mib, fill)
    host.add_vm("vcb-proxy", disks=[8 * MiB], tools="not-installed", power_state="poweredOn")
    data_bytes = max(1, mib * fill // 100) * MiB
    with tempfile.TemporaryDirectory(prefix="bench-restore-over-") as tmp, serve(host, port=0) as server:
        mark_proxy(host, "vcb-proxy", tmp)
        url = f"https://127.0.0.1:{server.port}/sdk"
        with VSphereHostClient(url, "user", "pass", insecure=True) as client, Catalog(Path(tmp) / "medium") as cat:
            res = BackupProxy(client, Path(tmp) / "proxy", quiesce=False, split=False).backup("name:big", "fullvm", catalog=cat)
            assert res.ok and res.backup_id is not None, res.summary()
            if host.find_vm("big").power_state != "poweredOff":
                host.power_off("big")
            over: list[tuple[float, float]] = []
            for _ in range(repeat):
                c0, w0 = time.process_time(), time.perf_counter()
                restore_vm_hotadd_over(cat, res.backup_id, client, "name:big")
                over.append((time.perf_counter() - w0, time.process_time() - c0))
            qemu = qemu_convert_backup(cat, res.backup_id, Path(tmp), repeat)
    return _row(mib, fill, data_bytes, "hotadd over", min(over), qemu)


def _http(url: str, cookie: str, data: bytes | None = None) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    headers = {"Cookie": cookie}
    if data is not None:
        headers["Content-Type"] = "application/x-vnd.vmware-streamVmdk"
    with urlopen(Request(url, data=data, method="PUT" if data is not None else "GET", headers=headers),
                 context=ctx) as resp:
        return bytes(resp.read())


def _ready(lease: Any) -> None:
    while lease.state == vim.HttpNfcLease.State.initializing:  # the lease task runs at once
        time.sleep(0.005)


def measure_nfc(mib: int, fill: int, repeat: int) -> dict[str, Any]:
    """The OVF way back over an import lease (``ImportVApp``) against ``qemu-img convert`` of
    the same stream-optimized file."""
    host = build(mib, fill, "esxi-7.0")
    host.power_off("big")  # ExportVm needs a powered-off VM
    data_bytes = max(1, mib * fill // 100) * MiB
    with tempfile.TemporaryDirectory(prefix="bench-restore-nfc-") as tmp, serve(host, port=0) as server:
        si = SmartConnect(host="127.0.0.1", port=server.port, user="user", pwd="pass", disableSslCertValidation=True)
        try:
            cookie = si._stub.cookie
            view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
            vm = next(v for v in view.view if v.name == "big")
            lease = vm.ExportVm()
            _ready(lease)
            disk = _http(lease.info.deviceUrl[0].url, cookie)
            files = [vim.OvfManager.OvfFile(deviceId=lease.info.deviceUrl[0].key, path="disk-0.vmdk", size=len(disk))]
            ovf = si.content.ovfManager.CreateDescriptor(obj=vm, cdp=vim.OvfManager.CreateDescriptorParams(ovfFiles=files))
            lease.HttpNfcLeaseComplete()
            pool, folder = vim.ResourcePool("ha-root-pool", si._stub), si.content.rootFolder.childEntity[0].vmFolder
            nfc: list[tuple[float, float]] = []
            for i in range(repeat):
                c0, w0 = time.process_time(), time.perf_counter()
                spec = si.content.ovfManager.CreateImportSpec(
                    ovfDescriptor=ovf.ovfDescriptor, resourcePool=pool, datastore=vm.datastore[0],
                    cisp=vim.OvfManager.CreateImportSpecParams(entityName=f"nfc{i}"))
                imp = pool.ImportVApp(spec=spec.importSpec, folder=folder)
                _ready(imp)
                _http(imp.info.deviceUrl[0].url, cookie, disk)
                imp.HttpNfcLeaseComplete()
                nfc.append((time.perf_counter() - w0, time.process_time() - c0))
                host.destroy_vm(f"nfc{i}")
        finally:
            Disconnect(si)
        src = Path(tmp) / "disk-0.vmdk"
        src.write_bytes(disk)
        qemu = qemu_convert(src, repeat)
    return _row(mib, fill, data_bytes, "nfc import", min(nfc), qemu)


def _row(mib: int, fill: int, data_bytes: int, path: str, best: tuple[float, float],
         best_q: tuple[float, float] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "mib": mib, "fill_percent": fill, "data_mib": data_bytes / MiB, "path": path,
        "wire": {"seconds": best[0], "cpu_seconds": best[1], "mib_per_s": data_bytes / MiB / best[0]},
    }
    if best_q is not None:
        out["qemu_img"] = {"seconds": best_q[0], "cpu_seconds": best_q[1], "mib_per_s": data_bytes / MiB / best_q[0]}
        out["ratio_wall"] = best[0] / best_q[0]
        out["ratio_cpu"] = best[1] / max(best_q[1], 1e-6)
    return out



def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mib", default="64,256", help="disk sizes in MiB, comma-separated (default 64,256)")
    p.add_argument("--fill", type=int, default=50, help="percent of the disk holding data (default 50)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json-out", help="write the figures as JSON here")
    ns = p.parse_args(argv)
    rows = [f(int(m), ns.fill, ns.repeat) for m in ns.mib.split(",") for f in (measure, measure_nfc, measure_hotadd,
                                                                        measure_hotadd_over)]
    print(f"Whole-VM restore over the wire against qemu-img convert (fill {ns.fill} %, best of {ns.repeat})")
    print()
    print("| transport | disk | data | wire s | wire CPU s | wire MiB/s | qemu-img s | qemu-img CPU s | qemu-img MiB/s | wall ratio | CPU ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        w, q = r["wire"], r.get("qemu_img")
        qs = (f"{q['seconds']:.3f} | {q['cpu_seconds']:.3f} | {q['mib_per_s']:.0f} | {r['ratio_wall']:.1f}x | "
              f"{r['ratio_cpu']:.1f}x") if q else "n/a | n/a | n/a | n/a | n/a"
        print(f"| {r['path']} | {r['mib']} MiB | {r['data_mib']:.0f} MiB | {w['seconds']:.3f} | {w['cpu_seconds']:.3f} | "
              f"{w['mib_per_s']:.0f} | {qs} |")
    if ns.json_out:
        Path(ns.json_out).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
