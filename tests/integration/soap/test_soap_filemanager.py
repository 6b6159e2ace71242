"""FileManager over SOAP: the recipe's example (one module, ``mo/_filemanager.py``)."""

from __future__ import annotations

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim

from vcbsim.simulator.soap import serve

from .conftest import connect, small_host


@pytest.mark.parametrize("profile", ["esx-3.5u2", "esxi-7.0"])
def test_content_names_the_file_manager_of_a_standalone_host(profile: str) -> None:
    with serve(small_host(profile)) as running:
        for si in connect(running):
            fm = si.content.fileManager
            assert isinstance(fm, vim.FileManager) and fm._moId == "ha-nfc-file-manager"


def test_make_directory_then_browse_it(si, server) -> None:
    fm = si.content.fileManager
    dc = si.content.rootFolder.childEntity[0]
    fm.MakeDirectory("[datastore1] backups", dc)
    assert server.endpoint.files.is_dir("datastore1", "backups")
    browser = dc.datastore[0].browser
    task = browser.SearchDatastore_Task("[datastore1] backups", None)
    assert WaitForTask(task) == "success" and task.info.result.file == []  # empty, and found
    root = browser.SearchDatastore_Task("[datastore1]", None)
    WaitForTask(root)
    folders = {f.path for f in root.info.result.file if isinstance(f, vim.host.DatastoreBrowser.FolderInfo)}
    assert {"backups", "win-db", "lin-web"} <= folders


def test_make_directory_faults_as_a_host_gives_them(si) -> None:
    fm = si.content.fileManager
    fm.MakeDirectory("[datastore1] a")
    with pytest.raises(vim.fault.FileAlreadyExists) as exists:
        fm.MakeDirectory("[datastore1] a")
    assert exists.value.file == "[datastore1] a"
    with pytest.raises(vim.fault.FileAlreadyExists):
        fm.MakeDirectory("[datastore1] win-db")  # a VM's directory exists without being made
    with pytest.raises(vim.fault.FileAlreadyExists):
        fm.MakeDirectory("[datastore1] win-db/win-db.vmx")  # a file is there
    with pytest.raises(vim.fault.FileNotFound) as missing:
        fm.MakeDirectory("[datastore1] x/y/z")  # no parent, and not asked to make it
    assert missing.value.file == "[datastore1] x"
    fm.MakeDirectory("[datastore1] x/y/z", createParentDirectories=True)
    fm.MakeDirectory("[datastore1] x/y/w")  # the parents exist now
    with pytest.raises(vim.fault.InvalidDatastore):
        fm.MakeDirectory("[nosuch] a")
    with pytest.raises(vim.fault.InvalidDatastorePath):
        fm.MakeDirectory("no brackets")
