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


# -- what a product wrote (``_restored.locate``, ``WrittenChain``) ---------------------------

def test_a_jobs_folder_is_the_one_it_names_or_the_one_that_appeared(tmp_path: Path) -> None:
    from vcbsim.conformance._restored import backup_entries, locate

    (tmp_path / "old").mkdir()
    before = backup_entries(tmp_path)
    (tmp_path / "vm-2").mkdir()
    (tmp_path / ".index").mkdir()  # the product's bookkeeping is not a backup
    assert locate(tmp_path, None, [], "vm-1", before) == tmp_path / "vm-2"
    assert locate(tmp_path, "old", [], "vm-1", before) == tmp_path / "old"
    outside = locate(tmp_path, str(tmp_path.parent), [], "vm-1", before)
    assert isinstance(outside, str) and "not under its declared backup root" in outside
    (tmp_path / "vm-3").mkdir()
    two = locate(tmp_path, None, [], "vm-1", before)
    assert isinstance(two, str) and "2 folders appeared" in two


def test_the_written_chain_follows_the_seeds_bases() -> None:
    from vcbsim.conformance._judge import norm_path
    from vcbsim.conformance._restored import WrittenChain

    chain = WrittenChain()
    alive = {norm_path(p) for p in ("D:\\a", "D:\\b", "D:\\c", "D:\\d")}
    assert chain.add("vm", "full", {"D:\\a": "1", "D:\\gone": "0"}, norm_path, lambda k: True) == {
        "D:\\a": "1", "D:\\gone": "0"}
    # an incremental over the full; a file the guest deleted since is no longer restored
    assert chain.add("vm", "incremental", {"D:\\b": "2"}, norm_path, alive.__contains__) == {"D:\\a": "1", "D:\\b": "2"}
    # a differential builds on the full only, not on the incremental
    assert chain.add("vm", "differential", {"D:\\c": "3"}, norm_path, alive.__contains__) == {"D:\\a": "1", "D:\\c": "3"}
    # the next incremental builds on the last incremental (a differential is no base)
    assert chain.add("vm", "incremental", {"d:\\A": "4"}, norm_path, alive.__contains__) == {"d:\\A": "4", "D:\\b": "2"}


def test_looks_between_reads_prove_the_order_over_the_wire(tmp_path: Path) -> None:
    from vcbsim.conformance._observed import Look, judge_looks
    from vcbsim.simulator import Event

    def ev(seq: int, kind: str) -> Event:
        return Event(seq, 0.0, "host", kind, "vm-1", None, {"snapshot": "snapshot-1"})

    host = [ev(0, "snapshot.create"), ev(1, "snapshot.remove")]
    base = Look(frozenset(), 0, 0)
    # the export was seen while the read after the look still had no snapshot: WF-1f
    early = judge_looks(tmp_path, [base, Look(frozenset({"vm-fullVM"}), 0, 0), Look(frozenset(), 2, 2)], host,
                        "vm-1", ok=True, vm="vm")
    assert early.violation is not None and early.violation[0] == "WF-1f"
    # seen after the read that had the removal: WF-3a; gone before it: a pass
    late = judge_looks(tmp_path, [base, Look(frozenset({"vm-fullVM"}), 2, 2)], host, "vm-1", ok=True, vm="vm")
    assert late.violation is not None and late.violation[0] == "WF-3a"
    fine = judge_looks(tmp_path, [base, Look(frozenset({"vm-fullVM"}), 1, 1), Look(frozenset(), 2, 2)], host,
                       "vm-1", ok=True, vm="vm")
    assert fine.violation is None and fine.occasions == {"WF-1f": 1, "WF-3a": 1, "CLN-NO-MOUNT-LEFT": 1}


def test_a_folder_declaration_is_a_path_with_only_the_workdir_placeholder() -> None:
    import pytest

    from vcbsim.conformance import Capabilities, InvalidDefinition
    from vcbsim.conformance._capabilities import capabilities_of

    assert Capabilities(mount_root="{workdir}/mnt", backup_root="/srv/backups").backup_root == "/srv/backups"
    with pytest.raises(InvalidDefinition, match="workdir"):
        Capabilities(backup_root="{work}/backups")
    with pytest.raises(InvalidDefinition, match="outside the mount root"):
        Capabilities(mount_root="{workdir}", backup_root="{workdir}/backups")

    class Attr:
        mount_root = "/somewhere"  # a folder of the instance's own: the declaration says it was given
    assert capabilities_of(Attr()).mount_root == "(the adapter's mount_root attribute)"
    assert capabilities_of(Attr()).backup_root == ""


def test_a_vmdk_the_projects_reader_refuses_is_read_with_qemu_img(tmp_path: Path) -> None:
    """A redo log with its parent beside it (what copying a snapshot's files gives): ``read_vmdk``
    refuses it, ``qemu-img`` reads the chain, and the digest is the disk's."""
    import shutil
    import subprocess

    import pytest

    from vcbsim.conformance._adapters import image_digest
    from vcbsim.conformance._restored import disk_digest
    from vcbsim.simulator.disk import LayeredDisk, write_vmdk

    disk = LayeredDisk(4 << 20)
    disk.write(65536 * 3, b"backed up" * 100)
    write_vmdk(disk.view(disk.top), tmp_path / "vm.vmdk", split=False)
    assert disk_digest(tmp_path / "vm.vmdk") == image_digest(disk.view(disk.top))
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed (.ci/run installs qemu-utils)")
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", "-b", "vm.vmdk", "-F", "vmdk", str(tmp_path / "vm-000001.vmdk")],
                   check=True, cwd=tmp_path)
    assert disk_digest(tmp_path / "vm-000001.vmdk") == image_digest(disk.view(disk.top))
    (tmp_path / "vm.vmdk").unlink()  # the parent gone: unreadable, which equals no snapshot's digest
    assert disk_digest(tmp_path / "vm-000001.vmdk").startswith("(unreadable:")
