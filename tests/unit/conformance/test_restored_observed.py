"""The kit's own reading of a product's restore (``_restored``) and of the proxy's mount root
(``_observed``): what a correct export or folder looks like, and what a wrong one gives."""

from __future__ import annotations

from pathlib import Path

from vcbsim.conformance._observed import ProxyFolder, mounts_under
from vcbsim.conformance._restored import compare_vmx, parse_vmx, restored_files, vmx_disk_files

AT_SNAPSHOT = """.encoding = "UTF-8"
displayName = "vm1"
memsize = "1024"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "vm1-000001.vmdk"
ethernet0.networkName = "VM Network"
"""


def test_an_export_whose_disks_point_at_the_backed_up_files_is_the_same_configuration() -> None:
    exported = AT_SNAPSHOT.replace("vm1-000001.vmdk", "vm1.vmdk")
    assert compare_vmx(AT_SNAPSHOT, exported, {"vm1.vmdk", "vm1.vmx"}) == []
    assert vmx_disk_files(exported) == {"scsi0:0": "vm1.vmdk"}
    assert parse_vmx('MemSize = "1"')["memsize"] == "1"  # keys are case-insensitive


def test_a_dropped_rewritten_added_or_dangling_setting_is_named() -> None:
    bad = (AT_SNAPSHOT.replace('memsize = "1024"', 'memsize = "512"')
           .replace('ethernet0.networkName = "VM Network"\n', "")
           .replace("vm1-000001.vmdk", "other.vmdk") + 'floppy0.present = "TRUE"\n')
    problems = compare_vmx(AT_SNAPSHOT, bad, {"vm1.vmdk"})
    assert any("memsize" in p and "512" in p for p in problems)
    assert any(p.startswith("lacks ethernet0.networkname") for p in problems)
    assert any("other.vmdk" in p and "does not hold" in p for p in problems)
    assert any(p.startswith("adds floppy0.present") for p in problems)


def test_restored_files_are_read_per_letter(tmp_path: Path) -> None:
    (tmp_path / "D" / "Data").mkdir(parents=True)
    (tmp_path / "D" / "Data" / "a.txt").write_bytes(b"x")
    assert list(restored_files(tmp_path)) == ["D:\\Data\\a.txt"]


def test_the_folder_is_observed_mounts_appear_and_go(tmp_path: Path) -> None:
    folder = ProxyFolder(tmp_path)
    folder.observe(1)
    (tmp_path / ".vcb-sessions").mkdir()
    (tmp_path / "vm1" / "letters" / "C").mkdir(parents=True)
    (tmp_path / "vm1-fullVM").mkdir()
    folder.observe(5)
    assert mounts_under(tmp_path) == {"vm1/letters/C", "vm1-fullVM"}
    assert folder.since(5) == ["vm1-fullVM", "vm1/letters/C"] and folder.first_seen["vm1-fullVM"] == 5
    (tmp_path / "vm1-fullVM").rmdir()
    folder.observe(9)
    assert folder.present == {"vm1/letters/C"} and folder.gone_at == {"vm1-fullVM": 9}
