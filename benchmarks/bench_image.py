"""Benchmark: a full image backup against the standard tools doing the same on the same data.

Run: ``python benchmarks/bench_image.py [--capacity-gib 64] [--data-mib 512] [--repeat 3]
[--json-out PATH]`` (prints a table; no assertions on time).

An ``esxi-7.0`` VM has a ``--capacity-gib`` disk holding ``--data-mib`` MiB of data (1 MiB
blocks spread evenly over the disk). The reference proxy takes a **full image backup**
(``fullvm``, the whole workflow: snapshot, export of the snapshot's disk as VMDK, store on the
catalog's medium, commit). The peer does what a script around the standard tools would do with
the same bytes: ``qemu-img convert -O vmdk`` of a sparse raw file holding the same data, then
``sha256sum`` of the result and ``cp`` of it to a medium directory.

Figures: CPU seconds (this process's own for vcbsim; the children's for the tools, from
``getrusage``), stable on a shared machine, and wall seconds; the best of ``--repeat`` runs.
qemu-img missing: its row says so (``apt-get install qemu-utils``).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from vcbsim.reference import BackupProxy, Catalog, InProcessHostClient
from vcbsim.simulator._host import Host

MiB = 1 << 20
GiB = 1 << 30


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def blocks(capacity: int, data: int) -> list[tuple[int, bytes]]:
    """(offset, 1 MiB) blocks spread evenly over the disk, each its own bytes."""
    n = data // MiB
    step = capacity // n // MiB * MiB
    return [(i * step, (i.to_bytes(4, "little") * (MiB // 4))) for i in range(n)]


def vcbsim_full(capacity: int, data: int, work: Path) -> dict[str, float]:
    host = Host("esxi-7.0", seed=0)
    vm = host.add_vm("imagesrv", disks=[capacity])
    dev = host.guest_device(vm, vm.disks[0].key)
    for off, chunk in blocks(capacity, data):
        dev.write(off, chunk)
    proxy = BackupProxy(InProcessHostClient(host), work / "proxy")
    with Catalog(work / "medium") as cat:
        c0, w0 = cpu_self(), time.perf_counter()
        res = proxy.backup("name:imagesrv", "fullvm", catalog=cat, kind="full")
        cpu, wall = cpu_self() - c0, time.perf_counter() - w0
        if not res.ok:
            raise RuntimeError(res.summary())
    return {"cpu": cpu, "wall": wall, "bytes_stored": float(res.bytes_stored)}


def tools_full(capacity: int, data: int, work: Path) -> dict[str, float] | None:
    if not (shutil.which("qemu-img") and shutil.which("sha256sum")):
        return None
    raw = work / "disk.raw"
    with raw.open("wb") as f:
        f.truncate(capacity)
        for off, chunk in blocks(capacity, data):
            f.seek(off)
            f.write(chunk)
    out, medium = work / "disk.vmdk", work / "medium"
    medium.mkdir()
    c0, w0 = cpu_children(), time.perf_counter()
    subprocess.run(["qemu-img", "convert", "-O", "vmdk", "-o", "subformat=twoGbMaxExtentSparse", str(raw), str(out)],
                   check=True, capture_output=True)
    for extent in sorted(work.glob("disk*.vmdk")):
        subprocess.run(["sha256sum", str(extent)], check=True, capture_output=True)
        subprocess.run(["cp", str(extent), str(medium)], check=True, capture_output=True)
    return {"cpu": cpu_children() - c0, "wall": time.perf_counter() - w0}


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {"cpu": min(r["cpu"] for r in runs), "wall": min(r["wall"] for r in runs),
            **{k: v for k, v in runs[0].items() if k not in ("cpu", "wall")}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--capacity-gib", type=int, default=64)
    ap.add_argument("--data-mib", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json-out", help="also write the figures as JSON to this file")
    ns = ap.parse_args()
    if not 1 <= ns.capacity_gib <= 4096 or not 1 <= ns.data_mib <= ns.capacity_gib * 1024 or not 1 <= ns.repeat <= 20:
        ap.error("--capacity-gib 1..4096, --data-mib 1..capacity, --repeat 1..20")
    capacity, data = ns.capacity_gib * GiB, ns.data_mib * MiB
    ours: list[dict[str, float]] = []
    peer: list[dict[str, float]] = []
    for _ in range(ns.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
            ours.append(vcbsim_full(capacity, data, Path(tmp)))
        with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
            got = tools_full(capacity, data, Path(tmp))
            if got is not None:
                peer.append(got)
    doc: dict[str, Any] = {"capacity_gib": ns.capacity_gib, "data_mib": ns.data_mib, "repeat": ns.repeat,
                           "vcbsim": best(ours), "peer": best(peer) if peer else None}
    if ns.json_out:
        Path(ns.json_out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"full image backup, {ns.data_mib} MiB of data on a {ns.capacity_gib} GiB disk (best of {ns.repeat})\n")
    print("| run | CPU s | wall s |")
    print("| --- | ---: | ---: |")
    v = doc["vcbsim"]
    print(f"| vcbsim full image backup (whole workflow, VMDK on the medium) | {v['cpu']:.2f} | {v['wall']:.2f} |")
    if doc["peer"]:
        p = doc["peer"]
        print(f"| qemu-img convert -O vmdk + sha256sum + cp | {p['cpu']:.2f} | {p['wall']:.2f} |")
        print(f"\nratio vcbsim / tools: CPU {v['cpu'] / p['cpu']:.2f}, wall {v['wall'] / p['wall']:.2f}")
    else:
        print("| qemu-img convert + sha256sum + cp | not installed (apt-get install qemu-utils) | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
