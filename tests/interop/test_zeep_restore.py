"""A restore with zeep (issue 16), a SOAP stack that knows the vSphere API only from the WSDL
the endpoint serves, never from pyVmomi: upload a stream-optimized VMDK (made by ``qemu-img``)
with ``PUT /folder``, ``CreateVM_Task`` with that existing disk, power the VM on, and read a
guest file back through guest operations (``InitiateFileTransferFromGuest``): the guest's
files are there."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

zeep = pytest.importorskip("zeep", reason="pip install zeep  (the 'test' extra)")

from vcbsim.simulator._host import Host, MiB  # noqa: E402
from vcbsim.simulator.disk import write_vmdk  # noqa: E402
from vcbsim.simulator.soap import serve  # noqa: E402

VIM = "urn:vim25"
HELLO = b"restored through zeep\r\n"


def _vmdk(tmp: Path) -> Path:
    src = Host("esx-3.5u2", seed=9)
    vm = src.add_vm("src", disks=[64 * MiB])
    src.add_guest_volumes(vm, {0: [(None, "C", "SYSTEM")]})
    src.guest_fs(vm).write_bytes("C:\\hello.txt", HELLO)
    sparse = tmp / "src.vmdk"
    write_vmdk(src.disk_view(vm, vm.disks[0].key), sparse, split=False)
    out = tmp / "restored.vmdk"
    subprocess.run(["qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", str(sparse), str(out)],
                   check=True)
    return out


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="apt-get install qemu-utils")
def test_zeep_creates_a_vm_from_an_uploaded_disk_and_reads_its_guest_file(tmp_path: Path) -> None:
    import requests
    from zeep.transports import Transport

    disk = _vmdk(tmp_path)
    host = Host("esxi-7.0", seed=2)
    with serve(host, http=True, port=0) as server:
        base = f"http://127.0.0.1:{server.port}"
        http = requests.Session()
        http.trust_env = False
        client = zeep.Client(f"{base}/sdk/vimService.wsdl", transport=Transport(session=http))
        vim = client.service

        def t(name: str) -> Any:
            return client.get_type(f"{{{VIM}}}{name}")

        def ref(typ: str, value: str) -> Any:
            return t("ManagedObjectReference")(value, type=typ)

        content = vim.RetrieveServiceContent(_this=ref("ServiceInstance", "ServiceInstance"))
        vim.Login(_this=content.sessionManager, userName="user", password="pass")

        def wait(task: Any) -> Any:
            spec = t("PropertyFilterSpec")(propSet=[t("PropertySpec")(type="Task", all=False, pathSet=["info"])],
                                           objectSet=[t("ObjectSpec")(obj=task, skip=False)])
            for _ in range(2000):
                res = vim.RetrievePropertiesEx(_this=content.propertyCollector, specSet=[spec], options=t("RetrieveOptions")())
                info = res.objects[0].propSet[0].val
                if info.state in ("success", "error"):
                    assert info.state == "success", info.error
                    return info.result
                time.sleep(0.02)
            raise AssertionError("task did not end")

        # the upload, with the session cookie zeep's HTTP session holds
        put = http.put(f"{base}/folder/zr/zr.vmdk", params={"dcPath": "ha-datacenter", "dsName": "datastore1"},
                       data=disk.read_bytes())
        assert put.status_code in (200, 201), put.text
        backing = t("VirtualDiskFlatVer2BackingInfo")(fileName="[datastore1] zr/zr.vmdk", diskMode="persistent")
        device = t("VirtualDisk")(key=-1, controllerKey=1000, unitNumber=0, capacityInKB=0, backing=backing)
        change = t("VirtualDeviceConfigSpec")(operation="add", device=device)
        spec = t("VirtualMachineConfigSpec")(name="zr", guestId="winNetEnterpriseGuest", memoryMB=512, numCPUs=1,
                                             files=t("VirtualMachineFileInfo")(vmPathName="[datastore1]"),
                                             deviceChange=[change])
        vm = wait(vim.CreateVM_Task(_this=ref("Folder", "ha-folder-vm"), config=spec, pool=ref("ResourcePool", "ha-root-pool")))
        wait(vim.PowerOnVM_Task(_this=vm))
        auth = t("NamePasswordAuthentication")(username="Administrator", password="vmware", interactiveSession=False)
        info = vim.InitiateFileTransferFromGuest(_this=ref("GuestFileManager", "ha-guest-operations-file-manager"),
                                                 vm=vm, auth=auth, guestFilePath="C:\\hello.txt")
        url = info.url.replace("https://*", base).replace("http://*", base)
        got = requests.get(url, timeout=30)
        assert got.status_code == 200 and got.content == HELLO
    assert host.find_vm("zr").disks[0].file_name == "[datastore1] zr/zr.vmdk"
