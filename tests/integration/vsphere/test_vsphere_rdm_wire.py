"""The wire client reads a raw device mapping's ``VMFSRDM`` extent (the LUN's bytes through
``/folder``), so a VM with a virtual-mode RDM is image-backed up over the wire on every
transport, the RDM's image equal to the LUN as of the snapshot; a physical-mode RDM is in no
snapshot and stays out (``reference/_image.py``)."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from vcbsim.reference import BackupProxy, Catalog, VSphereHostClient
from vcbsim.simulator import VirtualClock
from vcbsim.simulator._host import Host, MiB
from vcbsim.simulator._hotadd import mark_proxy
from vcbsim.simulator.disk import read_vmdk
from vcbsim.simulator.soap import serve


def _digest(view: Any) -> str:
    return hashlib.sha256(view.read(0, view.size)).hexdigest()


@pytest.mark.parametrize("transport", ["folder", "hotadd", "nfc"])
def test_a_virtual_mode_rdm_is_backed_up_over_the_wire(tmp_path: Path, transport: str) -> None:
    host = Host("esxi-7.0", seed=3)
    vm = host.add_vm("db", disks=[16 * MiB, 16 * MiB, 16 * MiB], tools="not-installed",
                     disk_rdms=[None, "virtualMode", "physicalMode"])
    for i, d in enumerate(vm.disks):
        host.guest_device(vm, d.key).write(MiB + 512 * i, f"disk {i} ".encode() * 3000)
    host.add_vm("vcb-proxy", disks=[8 * MiB], tools="not-installed")
    devices = Path(tempfile.mkdtemp(prefix="vcbsim-rdm-"))
    mark_proxy(host, "vcb-proxy", devices)
    plain, vrdm, prdm = (d.key for d in vm.disks)
    expected = {k: _digest(host.disk_view(vm, k)) for k in (plain, vrdm)}
    try:
        with serve(host, clock=VirtualClock()) as running, VSphereHostClient(
            f"https://127.0.0.1:{running.port}/sdk", "user", "pass", insecure=True
        ) as client, Catalog(tmp_path / "medium") as cat:
            assert client.vm_info(vm.moref).disks[1].rdm == "virtualMode"
            res = BackupProxy(client, tmp_path / "proxy", transport=transport, quiesce=False).backup(
                "name:db", "fullvm", catalog=cat)
            assert res.ok, res.summary()
            assert [line.split(":")[0] for line in res.excluded_disks] == [f"disk {prdm} (Hard disk 3)"]
            out = cat.restore_image_files(res.backup_id, tmp_path / "restored")
            got = {d.key: _digest(read_vmdk(out / d.file_name).view(None)) for d in cat.image_disks(res.backup_id)}
        assert got == expected
    finally:
        shutil.rmtree(devices, ignore_errors=True)
