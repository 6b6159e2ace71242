"""Benchmark: Ansible's OVF export and import against ``qemu-img convert`` of the same data.

Run: ``python benchmarks/bench_ansible_ovf.py [--mib 256] [--fill 25] [--json-out FILE]``
(prints a table; no assertions on time; skips with a line when ``ansible-playbook`` or
``qemu-img`` is missing).

An ESXi 7.0 host (in memory, served in this process on loopback) gets a powered-off VM with
one ``--mib`` MiB disk, ``--fill`` percent of it written with incompressible bytes (1 MiB runs
spread over the disk). One playbook then runs, as a user would:

- **export**: ``community.vmware.vmware_export_ovf`` (``ExportVm``, the lease's stream-optimized
  VMDK downloaded, ``CreateDescriptor``, ``HttpNfcLeaseComplete``);
- **import**: ``community.vmware.vmware_deploy_ovf`` of that package as a new VM
  (``CreateImportSpec``, ``ImportVApp``, the VMDK POSTed to the import lease); the new VM's
  disk is checked to hold the exported bytes.

Each task's time is Ansible's own (the ``ansible.posix.json`` callback's start and end): the
module's start-up (some 0.5 s of Python imports and a login) is in it, as a user sees it. The
baseline is ``qemu-img convert`` of the same data, from raw to a stream-optimized VMDK (the
export's work on the data) and back to raw (the import's). Throughput is the data written
(``--fill`` of the capacity) per second.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from vcbsim.simulator._host import Host, MiB
from vcbsim.simulator.soap import serve

ANSIBLE_PLAYBOOK = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) or shutil.which(
    "ansible-playbook")


def build(mib: int, fill: int) -> tuple[Host, int]:
    host = Host("esxi-7.0", seed=0)
    vm = host.add_vm("big", disks=[mib * MiB], tools="not-installed", power_state="poweredOff")
    rng = random.Random(0)
    runs = max(1, mib * fill // 100)
    stride = max(1, mib // runs)
    for i in range(runs):
        vm.disks[0].disk.write(i * stride * MiB, rng.randbytes(MiB))
    return host, runs * MiB


def _seconds(task: dict[str, Any]) -> float:
    d = task["task"]["duration"]
    return (datetime.fromisoformat(d["end"].replace("Z", "+00:00"))
            - datetime.fromisoformat(d["start"].replace("Z", "+00:00"))).total_seconds()


def run_playbook(port: int, tmp: Path) -> tuple[float, float]:
    conn = {"hostname": "127.0.0.1", "port": port, "username": "user", "password": "pass", "validate_certs": False}
    tasks = [
        {"name": "export", "community.vmware.vmware_export_ovf": {**conn, "name": "big",
                                                                  "export_dir": str(tmp / "export")}},
        {"name": "import", "community.vmware.vmware_deploy_ovf": {**conn, "name": "big-copy", "power_on": False,
                                                                  "ovf": str(tmp / "export" / "big" / "big.ovf")}},
    ]
    play = tmp / "play.yml"
    play.write_text(json.dumps([{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]))
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
           "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-tmp"), "ANSIBLE_DEPRECATION_WARNINGS": "0"}
    assert ANSIBLE_PLAYBOOK is not None
    proc = subprocess.run([ANSIBLE_PLAYBOOK, "-i", "localhost,", str(play)], capture_output=True, text=True,
                          env=env, cwd=tmp, timeout=3600, check=False)
    report = json.loads(proc.stdout)
    done = report["plays"][0]["tasks"]
    for t in done:
        result = t["hosts"]["localhost"]
        if result.get("failed"):
            raise SystemExit(f"{t['task']['name']} failed: {result.get('msg')}")
    return _seconds(done[0]), _seconds(done[1])


def check_copy(host: Host) -> None:
    """The imported VM's disk holds the source's bytes (figures of a wrong copy are no figures)."""
    src, copy = host.find_vm("big"), host.find_vm("big-copy")
    a, b = host.disk_view(src.moref, src.disks[0].key), host.disk_view(copy.moref, copy.disks[0].key)
    areas = sorted(set(a.allocated_areas()) | set(b.allocated_areas()))
    if a.size != b.size or any(a.read(o, n) != b.read(o, n) for o, n in areas):
        raise SystemExit("the imported VM's disk differs from the exported one")


def qemu_baseline(host: Host, tmp: Path) -> tuple[float, float]:
    """(raw → stream-optimized, stream-optimized → raw) ``qemu-img convert`` wall seconds."""
    vm = host.find_vm("big")
    view = host.disk_view(vm.moref, vm.disks[0].key)
    raw = tmp / "big.raw"
    with raw.open("wb") as f:
        f.truncate(view.size)
        for offset, length in view.allocated_areas():
            f.seek(offset)
            f.write(view.read(offset, length))
    t0 = time.perf_counter()
    subprocess.run(["qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", str(raw),
                    str(tmp / "q.vmdk")], check=True)
    t1 = time.perf_counter()
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(tmp / "q.vmdk"), str(tmp / "back.raw")], check=True)
    return t1 - t0, time.perf_counter() - t1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--fill", type=int, default=25)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    if ANSIBLE_PLAYBOOK is None or shutil.which("qemu-img") is None:
        print("skipped: needs ansible-playbook (pip install 'ansible>=12,<13') and qemu-img (qemu-utils)")
        return 0
    host, data = build(args.mib, args.fill)
    with tempfile.TemporaryDirectory(prefix="bench-ansible-ovf-") as tmp_name, serve(host, port=0) as server:
        tmp = Path(tmp_name)
        export_s, import_s = run_playbook(server.port, tmp)
        check_copy(host)
        q_export, q_import = qemu_baseline(host, tmp)
    mib_data = data / MiB
    rows = [("export (vmware_export_ovf)", export_s, q_export), ("import (vmware_deploy_ovf)", import_s, q_import)]
    print(f"disk {args.mib} MiB, {mib_data:.0f} MiB of data written ({args.fill}%)")
    print(f"{'path':28} {'seconds':>8} {'MiB/s':>8} {'qemu-img s':>10} {'qemu MiB/s':>10} {'ratio':>6}")
    out = []
    for name, s, q in rows:
        print(f"{name:28} {s:8.2f} {mib_data / s:8.1f} {q:10.2f} {mib_data / q:10.1f} {s / q:6.1f}")
        out.append({"path": name, "seconds": s, "mib_per_s": mib_data / s, "qemu_img_seconds": q,
                    "qemu_img_mib_per_s": mib_data / q, "ratio_wall": s / q})
    if args.json_out is not None:
        args.json_out.write_text(json.dumps({"mib": args.mib, "fill_percent": args.fill, "rows": out}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
