"""``PUT /folder`` on a datastore kept as files: streamed to disk, bounded, kept across restarts,
listed by ``SearchDatastore_Task``; and an inaccessible VM answered over SOAP as such."""

from __future__ import annotations

import http.client
import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

from vcbsim.simulator._host import Host, MiB
from vcbsim.simulator._persist import STATE_SUFFIX
from vcbsim.simulator.soap import serve


def _put(url: str, path: str, body: bytes | list[bytes], *, auth: str | None = None,
         cookie: str | None = None) -> tuple[int, str]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    target = f"/folder/{quote(path)}?dcPath=ha-datacenter&dsName=datastore1"
    headers = {"Cookie": cookie} if cookie else {}
    if auth:
        import base64

        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    if isinstance(body, list):  # chunked
        conn.putrequest("PUT", target)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for chunk in body:
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
    else:
        conn.request("PUT", target, body=body, headers=headers)
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    return resp.status, text


def _search(si: Any, folder: str) -> set[str]:
    host = si.content.rootFolder.childEntity[0].hostFolder.childEntity[0].host[0]
    ds = host.datastore[0]
    task = ds.browser.SearchDatastoreSubFolders_Task(f"[{ds.name}] {folder}", None)
    WaitForTask(task)
    return {f"{r.folderPath.rstrip('/')}/{f.path}" for r in task.info.result for f in (r.file or [])}


def _connect(url: str) -> Any:
    parts = urlsplit(url)
    return SmartConnect(host=parts.hostname, port=parts.port, user="user", pwd="pass",
                        protocol="http", disableSslCertValidation=True)


def test_an_upload_is_a_file_that_survives_a_restart(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = Host(datastore_dir=d)
    host.add_vm("vm1", disks=[MiB])
    data = bytes(range(256)) * 4096  # 1 MiB
    with serve(host, http=True) as server:
        assert _put(server.url, "iso/tools.iso", data, auth="user:pass")[0] == 201
        status, _ = _put(server.url, "iso/chunked.bin", [b"a" * 70000, b"b" * 5], auth="user:pass")
        assert status == 201
        # refused before a byte is read: no credentials, a VM's own file, a bad name
        assert _put(server.url, "iso/x.bin", b"x", auth="user:wrong")[0] == 401
        assert _put(server.url, "vm1/vm1.vmx", b"x", auth="user:pass")[0] == 400
        assert _put(server.url, "bad\u0001name", b"x", auth="user:pass")[0] == 400
        si = _connect(server.url)
        try:
            assert {"[datastore1] iso/tools.iso", "[datastore1] iso/chunked.bin"} <= _search(si, "iso")
        finally:
            Disconnect(si)
    assert (d / "datastore1" / "iso" / "tools.iso").read_bytes() == data
    assert host.store is not None
    host.store.close()
    again = Host(datastore_dir=d)
    report = again.recovery_report
    assert report is not None and report.clean, report  # plain files are no damage
    with serve(again, http=True) as server:
        si = _connect(server.url)
        try:
            assert "[datastore1] iso/tools.iso" in _search(si, "iso")
        finally:
            Disconnect(si)
        parts = urlsplit(server.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        import base64

        conn.request("GET", "/folder/iso/tools.iso?dcPath=ha-datacenter&dsName=datastore1",
                     headers={"Authorization": "Basic " + base64.b64encode(b"user:pass").decode()})
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == data
        conn.close()


def test_an_upload_over_the_limit_or_the_free_space_leaves_nothing(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = Host(datastore_dir=d)
    assert host.store is not None
    host.store.max_upload_bytes = 100_000
    with serve(host, http=True) as server:
        status, text = _put(server.url, "big.bin", b"x" * 100_001, auth="user:pass")
        assert status == 413 and "FileTooLarge" in text
        status, text = _put(server.url, "big2.bin", [b"x" * 60_000, b"y" * 60_000], auth="user:pass")
        assert status == 413
        host.store.max_upload_bytes = 1 << 62
        host.store.reserve_bytes = shutil.disk_usage(d).total  # more than there can be free
        status, text = _put(server.url, "big3.bin", b"x" * 1000, auth="user:pass")
        assert status == 507 and "NoDiskSpace" in text
    assert sorted(p.name for p in (d / "datastore1").iterdir()) == []


def test_an_inaccessible_vm_is_listed_as_such_over_soap(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host = Host(datastore_dir=d)
    host.add_vm("good", disks=[MiB])
    host.add_vm("broken", disks=[MiB])
    assert host.store is not None
    host.store.close()
    state = d / "datastore1" / "broken" / f"broken{STATE_SUFFIX}"
    doc = json.loads(state.read_text())
    doc["snapshots"] = "not a list"
    state.write_text(json.dumps(doc))
    again = Host(datastore_dir=d)
    with serve(again, http=True) as server:
        si = _connect(server.url)
        try:
            view = si.content.viewManager.CreateContainerView(
                si.content.rootFolder, [vim.VirtualMachine], True)
            states = {vm.name: vm.runtime.connectionState for vm in view.view}
            summary = {vm.name: vm.summary.runtime.connectionState for vm in view.view}
            broken = next(vm for vm in view.view if vm.name == "broken")
            with pytest.raises(vim.fault.InvalidState):
                WaitForTask(broken.CreateSnapshot_Task("s", "", False, False))
        finally:
            Disconnect(si)
    assert states == {"good": "connected", "broken": "invalid"}
    assert summary == states
