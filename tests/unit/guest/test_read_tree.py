"""``GuestFileSystem.read_tree``: every file under some guest directories, keyed case-folded."""

from __future__ import annotations

from vcbsim.simulator import Host


def test_read_tree_lists_every_file_of_the_volumes_asked_for() -> None:
    host = Host.demo()
    fs = host.guest_fs(host.find_vm("name:win2003-sql"))
    fs.mkdir(r"D:\Sub")
    fs.write_text(r"D:\Sub\New.TXT", "hello")
    tree = fs.read_tree("C:\\", "D:\\")
    assert tree[r"d:\sub\new.txt"] == b"hello"
    assert all(k == k.casefold() for k in tree)
    assert not any(k.startswith("d:") for k in fs.read_tree("C:\\"))
    linux = host.guest_fs(host.find_vm("name:rhel5-web"))
    assert "/etc/hostname" in linux.read_tree("/")
