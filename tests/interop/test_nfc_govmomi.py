"""govmomi (Go), govc's export path, against the NFC export: ``ExportSnapshot``, ``nfc.Lease.Wait``
(a property-collector wait), the lease updater, ``DownloadFile`` of each disk URL, ``Complete``;
the downloaded disk is read by ``qemu-img`` and equals the snapshot.

Built offline in GOPATH mode against Debian's govmomi (``golang-github-vmware-govmomi-dev``), as
``benchmarks/interop/build_govmomi_client.sh`` builds the benchmark client; skipped without them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from vcbsim.simulator import Host
from vcbsim.simulator.soap import serve

HERE = Path(__file__).resolve().parent
GOVMOMI = Path("/usr/share/gocode/src/github.com/vmware/govmomi/nfc")
MiB = 1 << 20

pytestmark = pytest.mark.skipif(
    shutil.which("go") is None or not GOVMOMI.is_dir() or shutil.which("qemu-img") is None,
    reason="needs go, govmomi sources (apt-get install golang-go golang-github-vmware-govmomi-dev) and qemu-img",
)


def build(tmp: Path) -> Path:
    src = tmp / "gopath" / "src" / "vcbsim-interop" / "nfc_export"
    src.mkdir(parents=True)
    shutil.copy(HERE / "go" / "nfc_export.go", src / "main.go")
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": f"{tmp / 'gopath'}:/usr/share/gocode", "GOFLAGS": "",
           "GOPROXY": "off", "CGO_ENABLED": "0", "GOCACHE": os.environ.get("GOCACHE", str(tmp / "gocache"))}
    out = tmp / "nfc_export"
    subprocess.run(["go", "build", "-o", str(out), "vcbsim-interop/nfc_export"], env=env, check=True,
                   capture_output=True, timeout=600)
    return out


def test_govmomi_exports_the_snapshot_through_the_lease(tmp_path: Path) -> None:
    binary = build(tmp_path)
    host = Host("esxi-7.0", seed=5)
    vm = host.add_vm("go-export", disks=[48 * MiB])
    dev = host.guest_device(vm, vm.disks[0].key)
    dev.write(MiB, b"govmomi" * 10000)
    snap = host.create_snapshot(vm, "backup")
    dev.write(MiB, b"LATER!!" * 10000)  # after the snapshot: not in the export
    raw = tmp_path / "snap.raw"
    view = host.disk_view(vm, vm.disks[0].key, snap.moref)
    raw.write_bytes(view.read(0, view.size))
    out = tmp_path / "out"
    out.mkdir()
    with serve(host) as server:
        proc = subprocess.run([str(binary), "-url", server.url, "-vm", "go-export", "-out", str(out)],
                              capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    path, nvram = proc.stdout.split()  # an API 6.7+ lease also lists the VM's .nvram: govmomi takes it
    assert nvram.endswith("disk-1.nvram") and Path(nvram).stat().st_size == 8684
    cmp = subprocess.run(["qemu-img", "compare", "-f", "vmdk", "-F", "raw", path, str(raw)], capture_output=True, text=True)
    assert cmp.returncode == 0, cmp.stdout + cmp.stderr
    states = [e.details["state"] for e in host.trace.events if e.kind == "nfc.lease"]
    assert states == ["initializing", "ready", "done"]
