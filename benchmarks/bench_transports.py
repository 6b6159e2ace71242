"""Benchmark: an image backup through each transport against ``qemu-img convert`` of the same data.

Run: ``python benchmarks/bench_transports.py [--mib 256] [--repeat 2] [--json-out FILE]``
(prints a table; no assertions on time).

One VM with one ``--mib`` MiB disk, every 64 KiB grain written (half random bytes, half
text, so compression has something to do and something it cannot do), on an ``esxi-7.0``
host with a marked proxy VM. The reference proxy backs it up (``-t fullvm``, no quiescing) to a
catalog on a temporary directory:

* in process: ``-m folder`` (the host's disk views), ``-m nfc`` (an export lease: the disk
  streamed as stream-optimized VMDK, read back) and ``-m hotadd`` (attached to the proxy VM);
* over the wire (``vcbsim serve`` in this process on loopback, pyVmomi and HTTP): ``-m folder``
  (``/folder`` range reads of the flat extent), ``-m nfc`` (``/nfc`` download) and ``-m hotadd``
  (``ReconfigVM_Task`` on the proxy VM, the disk read through the NBD device it becomes in the
  proxy's guest, ``simulator/_nbd.py``).

The baseline is ``qemu-img convert -O vmdk`` (twoGbMaxExtentSparse, what the proxy writes)
of the same bytes from a raw file, and, for the NFC path, ``-o subformat=streamOptimized``;
one more row has qemu-img read the disk from its hot-added NBD device (the proxy's reader
swapped for qemu's: what the device itself costs).
Figures: MiB/s by wall time and by CPU time (this process, or qemu-img's for the baseline:
stable on a shared machine), and each transport's CPU time over qemu-img's. The best of
``--repeat`` runs is kept. What a backup does beyond the copy (snapshot, catalog, hashing
the files) is in the transport figures, not in qemu-img's: the ratio is the whole job's cost
against a bare conversion.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from vcbsim.reference import BackupProxy, Catalog, InProcessHostClient
from vcbsim.simulator._host import Host, MiB
from vcbsim.simulator._hotadd import mark_proxy

GRAIN = 65536


def build(mib: int) -> Host:
    host = Host("esxi-7.0", seed=0)
    vm = host.add_vm("bench", disks=[mib * MiB])
    text = (b"vcbsim transport benchmark " * 2500)[:GRAIN]
    rnd = os.urandom(GRAIN)
    for i, off in enumerate(range(0, mib * MiB, GRAIN)):
        vm.disks[0].disk.write(off, rnd[i % 7:] + rnd[: i % 7] if i % 2 else text)
    host.add_vm("vcb-proxy", disks=[8 * MiB])
    mark_proxy(host, "vcb-proxy")
    return host


def _cpu() -> float:
    return time.process_time()


def backup(client: Any, mode: str, tmp: Path) -> tuple[float, float]:
    """(cpu, wall) seconds of one image backup through ``mode``."""
    root = tmp / f"run-{mode}-{time.perf_counter_ns()}"
    proxy = BackupProxy(client, root / "proxy", transport=mode, quiesce=False)
    with Catalog(root / "medium") as cat:
        c0, w0 = _cpu(), time.perf_counter()
        res = proxy.backup("name:bench", "fullvm", catalog=cat)
        cpu, wall = _cpu() - c0, time.perf_counter() - w0
    assert res.ok, res.summary()
    shutil.rmtree(root, ignore_errors=True)
    return cpu, wall


def qemu_convert(raw: Path, out: Path, subformat: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", f"subformat={subformat}", str(raw), str(out)],
                   check=True, capture_output=True)
    wall = time.perf_counter() - w0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    for p in out.parent.glob(out.stem + "*"):
        p.unlink()
    return cpu, wall


def qemu_reads_the_device(host: Host, tmp: Path) -> tuple[float, float]:
    """The disk hot-added to the proxy (in process) and read by ``qemu-img convert`` from its NBD
    device into the same VMDK: qemu-img's CPU plus this process's (the NBD server)."""
    from vcbsim.simulator._hotadd import hot_add, hot_remove

    snap = host.create_snapshot("bench", "bench-qemu", quiesce=False)
    (att,) = hot_add(host, "vcb-proxy", "bench", snap.moref)
    try:
        assert att.export is not None
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        c0, w0 = _cpu(), time.perf_counter()
        out = tmp / "nbd.vmdk"
        subprocess.run(["qemu-img", "convert", "-O", "vmdk", "-o", "subformat=twoGbMaxExtentSparse",
                        f"nbd+unix:///{att.device}?socket={att.export.path}", str(out)], check=True, capture_output=True)
        wall, mine = time.perf_counter() - w0, _cpu() - c0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        for p in out.parent.glob(out.stem + "*"):
            p.unlink()
    finally:
        hot_remove(host, "vcb-proxy")
        host.remove_snapshot("bench", snap.moref)
    return mine + (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def best(fn: Any, repeat: int) -> tuple[float, float]:
    runs = [fn() for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=256, help="disk size in MiB, all of it written (default 256)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per figure; the best is kept (default 2)")
    ap.add_argument("--json-out", help="also write the figures as JSON to this file")
    ns = ap.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vcbsim-bench-tr-") as t:
        tmp = Path(t)
        host = build(ns.mib)
        data_mib = ns.mib
        client = InProcessHostClient(host)
        for mode in ("folder", "nfc", "hotadd"):
            cpu, wall = best(lambda mode=mode: backup(client, mode, tmp), ns.repeat)
            rows.append({"path": f"in process, -m {mode}", "cpu_s": cpu, "wall_s": wall})
        from vcbsim.reference import VSphereHostClient
        from vcbsim.simulator.soap import serve

        with serve(host) as running, VSphereHostClient(f"https://127.0.0.1:{running.port}/sdk", "user", "pass",
                                                       insecure=True) as wire:
            for mode in ("folder", "nfc", "hotadd"):
                cpu, wall = best(lambda mode=mode: backup(wire, mode, tmp), ns.repeat)
                rows.append({"path": f"over the wire, -m {mode}", "cpu_s": cpu, "wall_s": wall})
        qemu: dict[str, tuple[float, float]] = {}
        if shutil.which("qemu-img"):
            raw = tmp / "disk.raw"
            vm = host.find_vm("name:bench")
            with raw.open("wb") as f:
                for off in range(0, ns.mib * MiB, 16 * MiB):
                    f.write(vm.disks[0].disk.read(off, min(16 * MiB, ns.mib * MiB - off)))
            for sub in ("twoGbMaxExtentSparse", "streamOptimized"):
                qemu[sub] = best(lambda sub=sub: qemu_convert(raw, tmp / "q.vmdk", sub), ns.repeat)
                rows.append({"path": f"qemu-img convert -O vmdk ({sub})", "cpu_s": qemu[sub][0], "wall_s": qemu[sub][1]})
            cpu, wall = best(lambda: qemu_reads_the_device(host, tmp), ns.repeat)
            rows.append({"path": "qemu-img convert of the hot-added NBD device", "cpu_s": cpu, "wall_s": wall})
    base = qemu.get("twoGbMaxExtentSparse", (None, None))[0]
    for r in rows:
        r["mib_per_s_wall"] = data_mib / r["wall_s"] if r["wall_s"] else None
        r["mib_per_s_cpu"] = data_mib / r["cpu_s"] if r["cpu_s"] else None
        r["cpu_over_qemu"] = r["cpu_s"] / base if base else None
    print(f"Image backup of one {ns.mib} MiB disk (all grains written), best of {ns.repeat}; "
          "CPU = this process (server and client) or qemu-img's")
    print(f"{'path':<48} {'wall s':>8} {'cpu s':>8} {'MiB/s wall':>11} {'MiB/s cpu':>10} {'cpu / qemu':>11}")
    for r in rows:
        ratio = "n/a" if r["cpu_over_qemu"] is None else f"{r['cpu_over_qemu']:.2f}"
        print(f"{r['path']:<48} {r['wall_s']:>8.2f} {r['cpu_s']:>8.2f} {r['mib_per_s_wall']:>11.1f} "
              f"{r['mib_per_s_cpu']:>10.1f} {ratio:>11}")
    if not qemu:
        print("qemu-img not installed (apt-get install qemu-utils): no baseline")
    if ns.json_out:
        Path(ns.json_out).write_text(json.dumps({"mib": ns.mib, "repeat": ns.repeat, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
