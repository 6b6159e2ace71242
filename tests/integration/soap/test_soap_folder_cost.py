"""``/folder`` resolves a path to its one VM and streams without re-rendering (issue 18).

Renders are counted (``VM.vmx_text``, ``VM.vmsd_text``, ``Host.datastore_files``), not timed:
a download touches only the VM that owns the file, and a multi-chunk download resolves once.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import ssl
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from vcbsim.simulator._host import Host
from vcbsim.simulator._vm import VM
from vcbsim.simulator.soap import serve
from vcbsim.simulator.soap.http._files import CHUNK

MiB = 1024**2
AUTH = {"Authorization": "Basic " + base64.b64encode(b"user:pass").decode()}
Q = "?dcPath=ha-datacenter&dsName=datastore1"


def get(server: Any, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ssl._create_unverified_context())
    try:
        conn.request("GET", path, headers={**AUTH, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """``"<what>:<vm name>"`` -> calls, for every render of a VM's files."""
    calls: Counter[str] = Counter()
    for name in ("vmx_text", "vmsd_text"):
        orig = getattr(VM, name)

        def wrapped(self: VM, *a: Any, _orig: Any = orig, _name: str = name, **kw: Any) -> Any:
            calls[f"{_name}:{self.name}"] += 1
            return _orig(self, *a, **kw)

        monkeypatch.setattr(VM, name, wrapped)
    orig_files = Host.datastore_files

    def files(self: Host, vm: Any) -> Any:
        calls[f"datastore_files:{self.find_vm(vm).name}"] += 1
        return orig_files(self, vm)

    monkeypatch.setattr(Host, "datastore_files", files)
    return calls


@pytest.fixture
def many() -> Iterator[tuple[Host, Any]]:
    host = Host("esx-3.5u2", seed=3)
    for i in range(30):
        host.add_vm(f"vm{i:02}", disks=[4 * MiB])
    vm = host.find_vm("name:vm17")
    vm.disks[0].disk.write(CHUNK + 5, b"seventeen")
    with serve(host, port=0) as running:
        yield host, running


def test_a_download_renders_only_its_own_vm_and_resolves_once(many: tuple[Host, Any], counted: Counter[str]) -> None:
    host, server = many
    vm = host.find_vm("name:vm17")
    status, body = get(server, f"/folder/vm17/vm17.vmx{Q}")  # the first lookup builds the folder index
    assert status == 200 and body == vm.vmx_text().encode()
    counted.clear()
    status, body = get(server, f"/folder/vm05/vm05.vmx{Q}")
    assert status == 200 and body == host.find_vm("name:vm05").vmx_text().encode()
    counted["vmx_text:vm05"] -= 1  # the check above
    assert +counted == Counter({"vmx_text:vm05": 1, "datastore_files:vm05": 1})
    counted.clear()
    # a 4-chunk flat extent: one resolution, nothing rendered, the disk's bytes
    status, body = get(server, f"/folder/vm17/vm17-flat.vmdk{Q}")
    assert status == 200 and len(body) == 4 * MiB > 3 * CHUNK
    assert body[CHUNK + 5 : CHUNK + 14] == b"seventeen"
    assert hashlib.sha256(body).digest() == hashlib.sha256(vm.disks[0].disk.read(0, 4 * MiB)).digest()
    assert +counted == Counter({"datastore_files:vm17": 1})
    counted.clear()
    status, body = get(server, f"/folder/vm17/vm17-flat.vmdk{Q}", {"Range": f"bytes={CHUNK}-{CHUNK + 13}"})
    assert (status, body[5:]) == (206, b"seventeen")
    assert +counted == Counter({"datastore_files:vm17": 1})


def test_a_new_vm_and_a_missing_file_fall_back_to_every_vms_names(many: tuple[Host, Any], counted: Counter[str]) -> None:
    """The folder index is a hint: a VM added after it was built is still found, and a path
    no VM has is a 404 (both name every VM's files, render none)."""
    host, server = many
    assert get(server, f"/folder/vm01/vm01.vmx{Q}")[0] == 200
    host.add_vm("late", disks=[4 * MiB])
    counted.clear()
    status, body = get(server, f"/folder/late/late.vmx{Q}")
    assert status == 200 and body == host.find_vm("name:late").vmx_text().encode()
    assert counted["vmx_text:late"] == 2 and sum(v for k, v in counted.items() if k.startswith("vmx_text")) == 2
    counted.clear()
    assert get(server, f"/folder/vm01/nothing.txt{Q}")[0] == 404
    assert not any(k.startswith(("vmx_text", "vmsd_text")) for k in counted)
