"""Guest operations on the simulated host, as a backup product installs its scripts.

A script uploaded with ``InitiateFileTransferToGuest`` is a real file on the guest's disk, and
VMware Tools runs it at the next quiesced snapshot.
"""

from __future__ import annotations

import http.client
import ssl
from urllib.parse import urlsplit

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim

from .conftest import SCRIPTS_D, find_vm

GuestFM = vim.vm.guest.FileManager
ADMIN = vim.vm.guest.NamePasswordAuthentication(username="Administrator", password="vmware")
ROOT = vim.vm.guest.NamePasswordAuthentication(username="root", password="vmware")


def _http(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=ssl._create_unverified_context())
    try:
        conn.request(method, f"{parts.path}?{parts.query}", body=body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture
def gom(esxi_si):
    return esxi_si.content.guestOperationsManager


def test_list_make_delete_in_a_windows_guest(esxi_si, gom):
    vm = find_vm(esxi_si)
    fm = gom.fileManager
    listing = fm.ListFilesInGuest(vm, ADMIN, "C:\\")
    names = {f.path: f for f in listing.files}
    assert {"boot.ini", "Windows", "Program Files"} <= set(names)
    assert names["Windows"].type == "directory" and names["boot.ini"].type == "file"
    assert names["boot.ini"].size > 0
    assert isinstance(names["boot.ini"].attributes, GuestFM.WindowsFileAttributes)
    only_ini = fm.ListFilesInGuest(vm, ADMIN, "C:\\", matchPattern=r".*\.ini")
    assert [f.path for f in only_ini.files] == ["boot.ini"]
    paged = fm.ListFilesInGuest(vm, ADMIN, "C:\\", 0, 1)
    assert len(paged.files) == 1 and paged.remaining == len(listing.files) - 1

    fm.MakeDirectoryInGuest(vm, ADMIN, "C:\\backup\\logs", True)
    assert [f.path for f in fm.ListFilesInGuest(vm, ADMIN, "C:\\backup").files] == ["logs"]
    with pytest.raises(vim.fault.FileAlreadyExists):
        fm.MakeDirectoryInGuest(vm, ADMIN, "C:\\backup", False)
    with pytest.raises(vim.fault.FileNotFound):
        fm.MakeDirectoryInGuest(vm, ADMIN, "C:\\nope\\deeper", False)
    with pytest.raises(vim.fault.DirectoryNotEmpty):
        fm.DeleteDirectoryInGuest(vm, ADMIN, "C:\\backup", False)
    with pytest.raises(vim.fault.NotAFile):
        fm.DeleteFileInGuest(vm, ADMIN, "C:\\backup")
    fm.DeleteDirectoryInGuest(vm, ADMIN, "C:\\backup", True)
    with pytest.raises(vim.fault.FileNotFound):
        fm.ListFilesInGuest(vm, ADMIN, "C:\\backup")


def test_credentials_and_tools_are_checked(esxi_si, gom, esxi):
    vm = find_vm(esxi_si)
    fm = gom.fileManager
    bad = vim.vm.guest.NamePasswordAuthentication(username="Administrator", password="nope")
    with pytest.raises(vim.fault.InvalidGuestLogin):
        fm.ListFilesInGuest(vm, bad, "C:\\")
    esxi.find_vm("win2003-sql").tools.state = "not-running"
    with pytest.raises(vim.fault.GuestOperationsUnavailable):
        fm.ListFilesInGuest(vm, ADMIN, "C:\\")
    esxi.find_vm("win2003-sql").tools.state = "running"
    WaitForTask(vm.PowerOffVM_Task())
    with pytest.raises(vim.fault.InvalidPowerState):
        fm.ListFilesInGuest(vm, ADMIN, "C:\\")


def test_upload_download_and_the_script_runs_at_the_next_quiesced_snapshot(esxi_si, gom, esxi):
    vm = find_vm(esxi_si)
    fm = gom.fileManager
    script = b"@echo off\r\necho vendor-%1 >> C:\\vendor.log\r\n"
    path = SCRIPTS_D + "\\50-vendor.bat"
    url = fm.InitiateFileTransferToGuest(vm, ADMIN, path, GuestFM.FileAttributes(), len(script), False)
    assert "/guestFile?" in url
    assert _http(url, "PUT", script)[0] == 200
    assert _http(url, "PUT", script)[0] == 404  # one transfer per URL
    again = fm.InitiateFileTransferToGuest(vm, ADMIN, path, GuestFM.FileAttributes(), len(script), False)
    assert _http(again, "PUT", script)[0] == 409  # FileAlreadyExists without overwrite

    info = fm.InitiateFileTransferFromGuest(vm, ADMIN, path)
    assert info.size == len(script)
    status, body = _http(info.url)
    assert status == 200 and body == script

    assert WaitForTask(vm.CreateSnapshot_Task("q", "", False, True)) == "success"
    log = esxi.guest_fs("win2003-sql").read_bytes("C:\\vendor.log")
    assert b"vendor-freeze" in log and b"vendor-thaw" in log
    runs = [e.details["path"] for e in esxi.trace.events if e.kind == "script.run"]
    assert any(p.lower().endswith("50-vendor.bat") for p in runs)


def test_start_program_runs_a_guest_script(esxi_si, gom, esxi):
    vm = find_vm(esxi_si, "rhel5-web")
    fm, pm = gom.fileManager, gom.processManager
    script = b"#!/bin/sh\necho installed-$1 >> /tmp-install.log\nexit 3\n"
    url = fm.InitiateFileTransferToGuest(vm, ROOT, "/install.sh", GuestFM.FileAttributes(), len(script), True)
    assert _http(url, "PUT", script)[0] == 200
    assert isinstance(fm.ListFilesInGuest(vm, ROOT, "/install.sh").files[0].attributes, GuestFM.PosixFileAttributes)
    pid = pm.StartProgramInGuest(vm, ROOT, vim.vm.guest.ProcessManager.ProgramSpec(programPath="/bin/sh", arguments="/install.sh now"))
    (proc,) = pm.ListProcessesInGuest(vm, ROOT, [pid])
    assert proc.pid == pid and proc.exitCode == 3 and proc.endTime is not None and proc.owner == "root"
    assert esxi.guest_fs("rhel5-web").read_bytes("/tmp-install.log") == b"installed-now\n"
    with pytest.raises(vim.fault.FileNotFound):
        pm.StartProgramInGuest(vm, ROOT, vim.vm.guest.ProcessManager.ProgramSpec(programPath="/usr/bin/nothing", arguments=""))
    assert pid in [p.pid for p in pm.ListProcessesInGuest(vm, ROOT)]


def test_guest_operations_need_a_running_guest_with_a_file_system(si):
    """A powered-off VM: InvalidPowerState; Tools running on a VM whose disks hold no file
    system yet: the agent cannot be reached (GuestOperationsUnavailable)."""
    fm = si.content.guestOperationsManager.fileManager
    with pytest.raises(vim.fault.InvalidPowerState):
        fm.ListFilesInGuest(find_vm(si, "lin-web"), ROOT, "/")
    with pytest.raises(vim.fault.GuestOperationsUnavailable):
        fm.ListFilesInGuest(find_vm(si, "win-db"), ADMIN, "C:\\")
