"""The CLI answers a damaged catalog, a locked state directory, an unwritable restore target
and a disk no file system can hold with one clear line, never a traceback."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ENV = {**os.environ, "PYTHONSAFEPATH": "1"}


def vcbsim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vcbsim", *args],
        capture_output=True, text=True, cwd=cwd, env=ENV, timeout=120,
    )


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("cli")
    proc = vcbsim("backup", "--state", "st", "-a", "name:win2003-sql", "-t", "file",
                  "--no-progress", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return cwd


def test_a_damaged_catalog(state: Path) -> None:
    catalog = state / "st" / "medium" / "catalog.sqlite"
    good = catalog.read_bytes()
    try:
        catalog.write_bytes(b"garbage!" * 64 + good[512:])
        line = one_line(vcbsim("restore", "--state", "st", "--list", cwd=state))
        assert "catalog.sqlite cannot be used" in line and "damaged" in line
    finally:
        catalog.write_bytes(good)


def test_two_proxies_on_one_state_directory(state: Path) -> None:
    fd = os.open(state / "st" / "datastore" / ".vcbsim.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        line = one_line(vcbsim("backup", "--state", "st", "-a", "name:win2003-sql",
                               "-t", "file", "--no-progress", cwd=state))
    finally:
        os.close(fd)
    assert "in use by another vcbsim" in line and "host.store" not in line


def test_an_unwritable_restore_target(state: Path) -> None:
    (state / "a-file").write_text("not a directory")
    line = one_line(vcbsim("restore", "--state", "st", "--backup", "1", "--path", "C:\\",
                           "--to", "a-file/x", cwd=state))
    assert "restore target a-file/x: cannot write" in line and "Not a directory" in line


@pytest.mark.parametrize("size", [2**64, 2**63 - 512])
def test_a_disk_no_file_system_can_hold(tmp_path: Path, size: int) -> None:
    (tmp_path / "inv.json").write_text(json.dumps({"vms": [{"name": "huge", "disks": [size]}]}))
    line = one_line(vcbsim("serve", "--port", "0", "--datastore", "ds", "--inventory",
                           "inv.json", cwd=tmp_path))
    assert "huge-flat.vmdk' is larger than the maximum size supported" in line
    assert not list((tmp_path / "ds").glob("*/huge/*"))  # nothing half-made is left
