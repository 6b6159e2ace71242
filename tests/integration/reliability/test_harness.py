"""The reliability harness: a full disk at random moments, damage of every file kind.

The property after each round: every acknowledged write is readable (after a restart too),
every failed operation left the host as it was, every damaged item is reported with its file,
nothing a user made is deleted, and the host keeps serving.

``KIT_RELIABILITY_OPS`` (operations with faults) and ``KIT_RELIABILITY_SEEDS`` (rounds of
damage) size it; ``tox -e reliability`` runs it long. With ``KIT_RELIABILITY_REPORT=FILE`` the
figures (operations, faults injected, acknowledged writes checked ...) are written there.
"""

from __future__ import annotations

import errno
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim, vmodl

from vcbsim.simulator._host import Host
from vcbsim.simulator._persist import HOST_FILE, STATE_SUFFIX
from vcbsim.simulator.disk import _persistent
from vcbsim.simulator.disk._persistent import FailingIO

OPS = int(os.environ.get("KIT_RELIABILITY_OPS", "400"))
SEEDS = int(os.environ.get("KIT_RELIABILITY_SEEDS", "2"))
SIZE = 512 * 1024
G = 65536


def _figures(name: str, **values: Any) -> None:
    path = os.environ.get("KIT_RELIABILITY_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"test": name, **values}) + "\n")


class Model:
    """What the host must show: each VM's live disk bytes and each snapshot's."""

    def __init__(self) -> None:
        self.live: dict[str, bytearray] = {}
        self.snaps: dict[str, dict[str, bytes]] = {}

    def check(self, host: Host) -> int:
        checked = 0
        for name, data in self.live.items():
            vm = host.find_vm(name)
            assert vm.disks[0].disk.read(0, SIZE) == data, f"{name}: live disk differs"
            assert sorted(s.name for s in vm.snapshots()) == sorted(self.snaps[name])
            for s in vm.snapshots():
                view = host.disk_view(vm, vm.disks[0].key, s)
                assert view.read(0, SIZE) == self.snaps[name][s.name], f"{name}@{s.name} differs"
            checked += 1
        return checked


FAULTS = (vim.fault.FileFault, vmodl.fault.SystemError)


@pytest.mark.parametrize("seed", range(SEEDS))
def test_a_full_disk_at_random_moments_loses_nothing_acknowledged(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    d = tmp_path / "ds"
    host = Host(datastore_dir=d)
    model = Model()
    for name in ("v0", "v1", "v2"):
        host.add_vm(name, disks=[SIZE], power_state="poweredOff")
        model.live[name] = bytearray(SIZE)
        model.snaps[name] = {}
    seam = FailingIO(probability=0.0, seed=seed,
                     code=errno.ENOSPC if seed % 3 else errno.EIO)
    previous = _persistent.use_io(seam)
    ops = failed = acked_writes = restarts = 0
    snap_no = 0
    try:
        for _ in range(OPS):
            seam.probability = rng.choice((0.0, 0.05, 0.3, 1.0))
            name = rng.choice(sorted(model.live))
            vm = host.find_vm(name)
            kind = rng.choices(("write", "snapshot", "remove", "revert"), (6, 2, 2, 1))[0]
            ops += 1
            try:
                if kind == "write":
                    off = rng.randrange(0, SIZE - 1)
                    data = rng.randbytes(rng.randrange(1, min(3 * G, SIZE - off) + 1))
                    vm.disks[0].disk.write(off, data)
                    model.live[name][off : off + len(data)] = data
                    acked_writes += 1
                elif kind == "snapshot":
                    if len(model.snaps[name]) >= 4:
                        continue
                    snap_no += 1
                    sname = f"s{snap_no}"
                    host.create_snapshot(vm, sname)
                    model.snaps[name][sname] = bytes(model.live[name])
                elif kind == "remove" and model.snaps[name]:
                    sname = rng.choice(sorted(model.snaps[name]))
                    host.remove_snapshot(vm, sname)
                    del model.snaps[name][sname]
                elif kind == "revert" and model.snaps[name]:
                    sname = rng.choice(sorted(model.snaps[name]))
                    host.revert_to_snapshot(vm, sname)
                    model.live[name][:] = model.snaps[name][sname]
            except FAULTS as exc:
                failed += 1
                if kind == "write" and vm.disks and vm.disks[0].disk.fenced:
                    # documented: a failed base write whose old bytes could not be written
                    # back is completed instead (and the disk fenced until a restart)
                    model.live[name][off : off + len(data)] = data
                assert type(exc).__name__.rsplit(".", 1)[-1] in (
                    "NoDiskSpace", "FileFault", "CannotAccessFile"
                ), exc
            seam.probability = 0.0
            if any(v.connection_state != "connected" or any(x.disk.fenced for x in v.disks)
                   for v in host.vms.values()):
                # a VM whose failed operation could not even be rolled back in memory (the disk
                # kept failing): out of service until a restart, which loads its last state
                assert host.store is not None
                host.store.close()
                host = Host(datastore_dir=d)
                restarts += 1
            model.check(host)  # a failed operation left the host as it was
    finally:
        _persistent.use_io(previous)
    assert host.store is not None
    host.store.close()
    again = Host(datastore_dir=d)
    report = again.recovery_report
    assert report is not None and not report.errors and not report.unaccounted, report
    checked = model.check(again)
    assert checked == 3
    assert seam.injected > 0 and failed > 0
    _figures("enospc", seed=seed, operations=ops, failed=failed, faults_injected=seam.injected,
             io_calls=seam.calls, acknowledged_writes=acked_writes, restarts=restarts)


# -- damage of every file kind ------------------------------------------------------------------

def _build(d: Path) -> tuple[Host, dict[str, bytes]]:
    host = Host("esxi-7.0", datastore_dir=d)
    live = {}
    for i, name in enumerate(("alpha", "beta", "gamma")):
        vm = host.add_vm(name, disks=[SIZE], power_state="poweredOff")
        host.reconfigure(vm, change_tracking=True)
        vm.disks[0].disk.write(0, bytes([i + 1]) * 3 * G)
        host.create_snapshot(vm, "base")
        vm.disks[0].disk.write(G, bytes([i + 10]) * 1000)
        live[name] = vm.disks[0].disk.read(0, SIZE)
    return host, live


def _damage(path: Path, kind: str, rng: random.Random) -> None:
    raw = path.read_bytes()
    if kind == "delete":
        path.unlink()
    elif kind == "truncate":
        path.write_bytes(raw[: rng.randrange(0, max(1, len(raw) // 2))])
    elif kind == "flip":
        buf = bytearray(raw)
        for _ in range(3):
            pos = rng.randrange(min(len(buf), 24 if len(buf) > 24 else 0), len(buf))
            buf[pos] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(buf))
    elif kind == "shape":
        path.write_text(json.dumps({"vm": "not an object", "disks": 3}))


#: (file suffix, damage) -> whether a restart must name the file (False: it is the data
#: itself, raw sectors as on VMFS, or a derived file that is simply written again)
KINDS = [
    (STATE_SUFFIX, "delete", True), (STATE_SUFFIX, "truncate", True), (STATE_SUFFIX, "flip", True),
    (STATE_SUFFIX, "shape", True),
    ("-flat.vmdk", "delete", True), ("-flat.vmdk", "truncate", True), ("-flat.vmdk", "flip", False),
    ("-000001-sesparse.vmdk", "delete", True), ("-000001-sesparse.vmdk", "flip", True),
    ("-000001-sesparse.vmdk", "truncate", False),
    ("-ctk.log", "delete", True), ("-ctk.log", "flip", True), ("-ctk.log", "truncate", False),
    (".vmx", "delete", False), (".vmsd", "flip", False),
]


@pytest.mark.parametrize(("suffix", "kind", "named"), KINDS)
def test_damage_of_every_file_kind_is_reported_and_nothing_else_is_lost(
    tmp_path: Path, suffix: str, kind: str, named: bool
) -> None:
    rng = random.Random(f"{suffix}{kind}")
    d = tmp_path / "ds"
    host, live = _build(d)
    assert host.store is not None
    host.store.close()
    victim = d / "datastore1" / "beta" / f"beta{suffix}"
    assert victim.exists(), sorted(p.name for p in victim.parent.iterdir())
    user_file = d / "datastore1" / "beta" / "notes-of-the-admin.txt"
    user_file.write_text("mine")
    _damage(victim, kind, rng)
    again = Host("esxi-7.0", datastore_dir=d)
    report = again.recovery_report
    assert report is not None
    text = json.dumps(report.to_dict())
    rel = f"beta/beta{suffix}"
    if named:
        assert rel in text, report
    for name in ("alpha", "gamma"):  # the others are untouched and work
        vm = again.find_vm(name)
        assert vm.disks[0].disk.read(0, SIZE) == live[name]
        again.create_snapshot(vm, "after")
    assert user_file.read_text() == "mine"  # nothing the user made is deleted
    beta = again.find_vm("beta")
    if beta.connection_state == "connected" and suffix != "-flat.vmdk":
        assert beta.disks[0].disk.read(0, SIZE) == live["beta"] or suffix.endswith("sesparse.vmdk")
    if suffix == "-ctk.log" and named:  # CBT reset: the old change id is refused
        assert "change tracking reset" in text
    _figures("damage", file=suffix, kind=kind, named=named, state=beta.connection_state)


def test_a_damaged_host_file_and_unknown_files(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    host, live = _build(d)
    assert host.store is not None
    host.store.close()
    (d / HOST_FILE).write_bytes(b"\x00garbage")
    (d / "datastore1" / "alpha" / "alpha-000009-delta.vmdk").write_bytes(b"someone's")
    copied = d / "datastore1" / "copied"
    copied.mkdir()
    (copied / "copied.vmx").write_text('displayName = "copied"\n')
    again = Host("esxi-7.0", datastore_dir=d)
    report = again.recovery_report
    assert report is not None and sorted(report.vms) == ["alpha", "beta", "gamma"]
    files = {u["file"] for u in report.unaccounted}
    assert {"datastore1/alpha/alpha-000009-delta.vmdk", "datastore1/copied/"} <= files
    assert [q["file"] for q in report.quarantined] == [HOST_FILE]
    assert (copied / "copied.vmx").exists()
    for name, data in live.items():
        assert again.find_vm(name).disks[0].disk.read(0, SIZE) == data
