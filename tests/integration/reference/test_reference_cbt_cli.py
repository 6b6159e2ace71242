"""``vcbsim backup -t fullvm --kind incremental`` on a persisted esxi-7.0 state directory:
the first run enables changed block tracking and takes the baseline full, later runs store
only the changed areas and say so; ``restore`` lists and restores them."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from vcbsim.reference import main
from vcbsim.simulator import open_host

VM = "win2003-sql"
GRAIN = 64 * 1024


def cli(state: Path, *argv: str, json_out: bool = True) -> tuple[int, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--state", str(state), *(["--json"] if json_out else [])])
    return code, json.loads(out.getvalue()) if json_out else out.getvalue()


def guest_write(state: Path, path: str, data: bytes) -> None:
    host = open_host(state / "datastore")
    try:
        host.find_vm(VM).guest.write_bytes(path, data)
    finally:
        host.store.close()


def disks_now(state: Path) -> dict[int, dict[int, bytes]]:
    """Every non-zero 64 KiB grain of each disk, by offset."""
    host = open_host(state / "datastore")
    try:
        vm = host.find_vm(VM)
        out: dict[int, dict[int, bytes]] = {}
        for d in vm.disks:
            view = host.disk_view(vm, d.key)
            out[d.key] = {}
            for o, n in view.allocated_areas():
                for g in range(o - o % GRAIN, o + n, GRAIN):
                    data = view.read(g, GRAIN)
                    if any(data):
                        out[d.key][g] = data
        return out
    finally:
        host.store.close()


def test_cli_incremental_image_backups_on_a_persisted_esxi_host(tmp_path: Path) -> None:
    state = tmp_path / "state"
    # a persisted esxi-7.0 state directory, with one plain (full) image backup in it
    code, res = cli(state, "backup", "-a", f"name:{VM}", "-t", "fullvm", "--profile", "esxi-7.0")
    assert code == 0 and res[0]["level"] == "full" and res[0]["fallback"] == ""
    # the first incremental: CBT is off, so it is enabled and this run is the baseline full
    code, text = cli(state, "backup", "-a", f"name:{VM}", "-t", "fullvm", "--kind", "incremental", json_out=False)
    assert code == 0, text
    assert "(backup 2, image full, " in text and "incremental requested, full because changed block tracking was off" in text
    assert "note: enabled changed block tracking on win2003-sql" in text
    guest_write(state, "C:\\report.txt", b"quarterly numbers\r\n" * 5000)  # ~95 KB
    # the real command, in its own process
    proc = subprocess.run(
        [sys.executable, "-m", "vcbsim", "backup", "-a", f"name:{VM}", "-t", "fullvm", "--kind", "incremental",
         "--state", str(state), "--no-progress"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip().splitlines()[0]
    assert line.startswith(f"{VM}: ok at ") and "(backup 3, image incremental on backup 2, " in line, line
    stored = int(line.split(", image incremental on backup 2, ")[1].split(" bytes stored")[0])
    assert 95_000 < stored < 20 * GRAIN  # the file, its FAT and directory grains, the quiesce log
    # a differential, as JSON
    guest_write(state, "D:\\Data\\new.csv", b"a,b\r\n" * 1000)
    code, res = cli(state, "backup", "-a", f"name:{VM}", "-t", "fullvm", "--kind", "differential")
    assert code == 0
    r = res[0]
    assert (r["kind"], r["requested_level"], r["level"], r["base_backup_id"], r["fallback"]) == (
        "image", "differential", "differential", 2, ""
    )  # fmt: skip
    assert 0 < r["bytes_stored"] < stored + 20 * GRAIN
    # restore --list shows the levels and what each builds on
    code, text = cli(state, "restore", "--list", json_out=False)
    assert code == 0
    lines = text.splitlines()
    assert lines[0].startswith(f"#1 {VM} image/full files=")
    assert lines[2].startswith(f"#3 {VM} image/incremental on #2 ")
    assert lines[3].startswith(f"#4 {VM} image/differential on #2 ")
    code, listed = cli(state, "restore", "--list")
    assert [(b["level"], b["base_id"]) for b in listed] == [("full", None), ("full", None), ("incremental", 2), ("differential", 2)]
    # a disaster, then the whole VM back from the incremental (rebuilt from backups 2 and 3)
    # (not quiesced: the thaw scripts would write to the guest after the snapshot)
    code, res = cli(state, "backup", "-a", f"name:{VM}", "-t", "fullvm", "--kind", "incremental", "--no-quiesce")
    assert code == 0 and res[0]["level"] == "incremental" and res[0]["backup_id"] == 5
    before = disks_now(state)
    guest_write(state, "C:\\report.txt", b"overwritten by mistake")
    assert disks_now(state) != before
    code, res = cli(state, "restore", "--backup", "5", "--vm")
    assert code == 0 and res == {"restored": VM, "backup": 5}
    assert disks_now(state) == before
