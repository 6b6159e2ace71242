"""Kill ``vcbsim backup`` for real (SIGKILL) at every crash point; the next backup recovers.

The crash points are read from the source (every ``crash_point("...")`` of the host and every
``fault_point("crash", "...")`` of the proxy), so a new one is covered without editing this
file. For each point and for image-level (``fullvm``) and file-level (``file``, incremental)
backups of the demo's Windows VM (two disks, volumes ``C:`` and ``D:``):

1. a prepared ``--state`` directory (guest files written, one image and one full file backup
   completed) is copied (sparse) for the case; the guest writes more files;
2. ``python -m vcbsim backup ... --state DIR`` runs with ``VCBSIM_CRASH_AT=<point>`` and must
   die by SIGKILL without printing a result;
3. what it left is listed from the outside (``_VCB-BACKUP_`` snapshots, paths on the proxy,
   session records, catalog records still ``running``); the guest writes again, into the redo
   log of a leftover snapshot if there is one;
4. the same backup runs again: it must report every leftover, clean it and succeed, with a
   trace that conforms (``check_trace``);
5. then no snapshot, redo log, mount or session is left, the guest holds every file written
   (all three rounds), and every complete backup in the catalog, before the crash, of the
   killed run or of the recovery run, restores exactly what the guest held at its snapshot.

Also: kills at every point in a row on one state (each killed run cleans the previous
leftovers), held mounts (``vcbsim mount`` or ``unmount`` killed; ``mount`` and ``unmount``
finish), and ``vcbsim jobs run`` backing up two VMs at once, killed at every point in turn.
Each case copies the prepared state (``cp --sparse``: the flat extents are gigabytes long).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import vcbsim.reference
import vcbsim.simulator
from vcbsim.conformance._checker import check_trace
from vcbsim.reference import Catalog
from vcbsim.reference._cli import CRASH_ENV
from vcbsim.reference._image import read_export_catalog
from vcbsim.reference._workflow import CRASH_POINTS, SNAPSHOT_NAME
from vcbsim.simulator import open_host
from vcbsim.simulator._trace import load_jsonl
from vcbsim.simulator.disk import read_vmdk
from vcbsim.simulator.guest import PartitionDevice

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or shutil.which("cp") is None, reason="SIGKILL, flock and sparse cp"
)

VM = "win2003-sql"
PACKAGES = (Path(vcbsim.simulator.__file__).parent, Path(vcbsim.reference.__file__).parent)
Files = dict[str, bytes]


def _const(node: ast.expr) -> Any:
    return node.value if isinstance(node, ast.Constant) else None


def crash_points() -> list[str]:
    """Every crash point named in the host's and the proxy's code, in source order."""
    found: list[str] = []
    for path in [p for pkg in PACKAGES for p in sorted(pkg.glob("*.py"))]:
        calls = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            args = node.args
            if name == "crash_point" and args and isinstance(_const(args[0]), str):
                calls.append((node.lineno, _const(args[0])))
            elif name == "fault_point" and len(args) >= 2 and _const(args[0]) == "crash":
                if isinstance(_const(args[1]), str):
                    calls.append((node.lineno, _const(args[1])))
        for _, point in sorted(calls):
            if point not in found:
                found.append(point)
    return found


POINTS = crash_points()
#: where the killed run certainly left its snapshot (between WF-1 and WF-3b)
HOLDING_SNAPSHOT = CRASH_POINTS[CRASH_POINTS.index("proxy.after-snapshot") : CRASH_POINTS.index("proxy.after-commit")]


def run_cli(state: Path, *argv: str, crash_at: str | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash_at is not None:
        env[CRASH_ENV] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "vcbsim", *argv, "--state", str(state), "--json", "--no-progress"],
        env=env, capture_output=True, timeout=120, check=False,
    )


def backup(
    state: Path, type_: str, crash_at: str | None = None, *, trace: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    extra = ["--kind", "incremental"] if type_ == "file" else []
    if trace is not None:
        extra += ["--trace", str(trace)]
    return run_cli(state, "backup", "-a", f"name:{VM}", "-t", type_, *extra, crash_at=crash_at)


def payload(tag: str, n: int) -> bytes:
    """Distinct data, a few grains long, so writes cross grain and cluster boundaries."""
    return (tag.encode() + b"|") * (n // (len(tag) + 1) + 1)


def guest_write(state: Path, tag: str, files: Files) -> None:
    """The guest writes new files and rewrites one of the earlier ones (``files`` is updated)."""
    new = {
        rf"C:\crash\{tag}.txt": payload(f"c-{tag}", 3000),
        rf"D:\crash\{tag}.bin": payload(f"d-{tag}", 150_000),
        r"D:\crash\rewritten.bin": payload(f"r-{tag}", 70_000 + len(files) * 4096),
    }
    host = open_host(state / "datastore")
    try:
        fs = host.find_vm(VM).guest
        for d in (r"C:\crash", r"D:\crash"):
            if not fs.exists(d):
                fs.mkdir(d)
        for path, data in new.items():
            fs.write_bytes(path, data)
    finally:
        host.store.close()
    files.update(new)


def image_files(cat: Catalog, bid: int, host: Any) -> Files:
    """The ``crash`` files of the guest as an image backup holds them (restored, read back)."""
    vm = host.find_vm(VM)
    with tempfile.TemporaryDirectory(prefix="vcbsim-crash-restore-") as tmp:
        src = cat.restore_image_files(bid, tmp)
        meta = read_export_catalog(src / "catalog")
        images = {d.key: read_vmdk(src / meta[f"disk.{d.key}.filename"]) for d in vm.disks}
        views = {
            v: PartitionDevice.of(images[vm.disks[v.disk_index].key], v.partition)
            for v in vm.guest.volumes
            if v.disk_index is not None and v.partition is not None
        }
        return read_crash_files(vm.guest.as_of(views))


def read_crash_files(fs: Any) -> Files:
    out: Files = {}
    for top in (r"C:\crash", r"D:\crash"):
        if fs.exists(top):
            for name in fs.listdir(top):
                out[f"{top}\\{name}"] = fs.read_bytes(f"{top}\\{name}")
    return out


def file_backup_files(cat: Catalog, bid: int, out: Path) -> Files:
    got: Files = {}
    for top in (r"C:\crash", r"D:\crash"):
        target = out / str(bid) / top[0]
        try:
            restored = cat.restore_files(bid, top, target)
        except LookupError:
            continue
        for p in restored:
            if p.is_file():
                got[f"{top}\\{p.name}"] = p.read_bytes()
    return got


def snapshot_leftovers(
    state: Path, proxy: Path | None = None
) -> tuple[list[str], list[Path], list[str], list[int]]:
    """(``_VCB-BACKUP_`` snapshot ids, proxy paths, session records, running catalog ids)."""
    host = open_host(state / "datastore")
    try:
        snaps = [s.moref for s in host.find_vm(VM).snapshots() if s.name == SNAPSHOT_NAME]
    finally:
        host.store.close()
    proxy = proxy or state / "proxy"
    paths = sorted(p for p in proxy.iterdir() if p.name != ".vcb-sessions") if proxy.is_dir() else []
    sessions = sorted(p.name for p in (proxy / ".vcb-sessions").glob("*.json")) if proxy.is_dir() else []
    with Catalog(state / "medium") as cat:
        running = [r.id for r in cat.backups(VM, status="running")]
    return snaps, paths, sessions, running


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Files, dict[int, Files]]]:
    """A state directory with guest files and two complete backups (image #1, full file #2)."""
    state = tmp_path_factory.mktemp("prepared") / "state"
    files: Files = {}
    guest_write(state, "w0", files)
    for type_ in ("fullvm", "file"):
        proc = backup(state, type_)
        assert proc.returncode == 0, proc.stderr.decode()
    with Catalog(state / "medium") as cat:
        assert [(r.id, r.kind) for r in cat.backups(VM)] == [(1, "image"), (2, "full")]
    yield state, files, {1: dict(files), 2: dict(files)}


def copy_state(src: Path, dst: Path) -> None:
    """Copy a state directory keeping its disk extents sparse (they are gigabytes long)."""
    subprocess.run(["cp", "-a", "--sparse=always", str(src), str(dst)], check=True)


def test_the_crash_points_are_found_in_the_code() -> None:
    assert set(CRASH_POINTS) <= set(POINTS)
    assert {"host.snapshot.before-freeze", "host.snapshot.after-freeze"} <= set(POINTS)
    assert all(p.startswith(("proxy.", "host.")) for p in POINTS)


@pytest.mark.parametrize("type_", ["fullvm", "file"])
@pytest.mark.parametrize("point", POINTS)
def test_a_backup_killed_at_a_crash_point_is_cleaned_up_by_the_next_one(
    prepared: tuple[Path, Files, dict[int, Files]], tmp_path: Path, point: str, type_: str
) -> None:
    base, written, expected = prepared
    files = dict(written)
    expected = dict(expected)
    state = tmp_path / "state"
    copy_state(base, state)
    guest_write(state, "w1", files)
    before_kill = dict(files)

    killed = backup(state, type_, crash_at=point)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr.decode())
    assert killed.stdout == b""

    snaps, paths, sessions, running = snapshot_leftovers(state)
    assert sessions == [f"{VM}.json"]  # the run was interrupted, not finished
    if point in HOLDING_SNAPSHOT:
        assert len(snaps) == 1, snaps
    if point in ("proxy.during-expose", "proxy.after-expose", "proxy.during-copy", "proxy.after-copy"):
        assert paths, "the exposed snapshot is still on the proxy"
    if point == "proxy.during-copy":
        assert running, "the half-written backup is still running in the catalog"
    with Catalog(state / "medium") as cat:
        done = [r.id for r in cat.backups(VM)]
    for bid in done:
        if bid not in expected:
            expected[bid] = before_kill  # completed by the killed run, of the snapshot after w1
    guest_write(state, "w2", files)  # the guest goes on: into the leftover snapshot's redo log

    again = backup(state, type_, trace=tmp_path / "recovery.jsonl")
    assert again.returncode == 0, again.stderr.decode() + again.stdout.decode()
    report = check_trace(load_jsonl(tmp_path / "recovery.jsonl"))
    assert report.ok, "\n".join(v.format() for v in report.violations)
    (res,) = json.loads(again.stdout)
    assert res["status"] == "ok", res
    notes = "\n".join(res["stale_cleaned"])
    assert notes, "the leftovers were not reported"
    for s in snaps:
        assert s in notes
    for p in paths:
        assert str(p) in notes
    for bid in running:
        assert f"backup {bid} " in notes
    expected[res["backup_id"]] = dict(files)

    host = open_host(state / "datastore")
    try:
        vm = host.find_vm(VM)
        assert vm.snapshots() == [] and not vm.consolidation_needed
        assert all(len(d.disk.chain()) == 1 for d in vm.disks), "a redo log is left"
        assert read_crash_files(vm.guest) == files  # every guest write reached the disks
        assert [p.name for p in (state / "proxy").iterdir()] in ([], [".vcb-sessions"])
        assert not list((state / "proxy" / ".vcb-sessions").glob("*"))
        with Catalog(state / "medium") as cat:
            assert cat.backups(VM, status="running") == []
            complete = cat.backups(VM)
            assert {r.id for r in complete} == set(expected), (complete, sorted(expected))
            for rec in complete:
                if rec.kind == "image":
                    got = image_files(cat, rec.id, host)
                else:
                    got = file_backup_files(cat, rec.id, tmp_path / "restored")
                assert got == expected[rec.id], f"backup {rec.id} ({rec.kind}) restores other data"
    finally:
        host.store.close()


def test_kills_in_a_row_each_run_cleaning_what_the_previous_one_left(
    prepared: tuple[Path, Files, dict[int, Files]], tmp_path: Path
) -> None:
    """Every crash point in turn on one state directory, image and file runs alternating: each
    killed run first cleans what the previous kill left (of the other backup type too)."""
    base, written, _ = prepared
    files = dict(written)
    state = tmp_path / "state"
    copy_state(base, state)
    for i, point in enumerate(POINTS):
        guest_write(state, f"k{i}", files)
        killed = backup(state, ("fullvm", "file")[i % 2], crash_at=point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.returncode, killed.stderr.decode())
    last = backup(state, "file")
    assert last.returncode == 0, last.stderr.decode() + last.stdout.decode()
    (res,) = json.loads(last.stdout)
    assert res["status"] == "ok" and res["stale_cleaned"], res
    host = open_host(state / "datastore")
    try:
        vm = host.find_vm(VM)
        assert vm.snapshots() == [] and all(len(d.disk.chain()) == 1 for d in vm.disks)
        assert read_crash_files(vm.guest) == files
    finally:
        host.store.close()
    assert [p.name for p in (state / "proxy").iterdir()] == [".vcb-sessions"]
    with Catalog(state / "medium") as cat:
        assert cat.backups(VM, status="running") == []
        assert file_backup_files(cat, res["backup_id"], tmp_path / "restored") == files


def _json(proc: subprocess.CompletedProcess[bytes]) -> Any:
    return json.loads(proc.stdout)


@pytest.mark.parametrize("type_", ["fullvm", "file"])
@pytest.mark.parametrize("point", POINTS)
def test_a_held_mount_killed_at_a_crash_point_is_finished_by_mount_and_unmount(
    prepared: tuple[Path, Files, dict[int, Files]], tmp_path: Path, point: str, type_: str
) -> None:
    """``vcbsim mount`` (or, once it completed, ``vcbsim unmount``) killed at the point: the
    next ``mount`` cleans up and mounts (or says the VM is mounted), ``unmount`` finishes."""
    base, written, _ = prepared
    files = dict(written)
    state = tmp_path / "state"
    copy_state(base, state)
    guest_write(state, "w1", files)
    mnt = tmp_path / "mnt"
    where = mnt / (f"{VM}-fullVM" if type_ == "fullvm" else VM)
    mount = ("mount", "-a", f"name:{VM}", "-t", type_, "-r", str(mnt))
    unmount = ("unmount", "-r", str(where))

    first = run_cli(state, *mount, crash_at=point)
    if first.returncode == 0:
        second = run_cli(state, *unmount, crash_at=point)
        if second.returncode == 0:
            assert "copy" in point, f"{point} is reached by neither mount nor unmount"
            return
        assert second.returncode == -signal.SIGKILL, second.stderr.decode()
        guest_write(state, "w2", files)
        again = run_cli(state, *unmount, "--trace", str(tmp_path / "t.jsonl"))
        assert again.returncode == 0, again.stderr.decode() + again.stdout.decode()
    else:
        assert first.returncode == -signal.SIGKILL, first.stderr.decode()
        guest_write(state, "w2", files)
        remount = run_cli(state, *mount)
        if remount.returncode == 4:  # the mount had completed before the point: it is held
            assert "already mounted" in _json(remount)["message"]
        else:
            assert remount.returncode == 0, remount.stderr.decode() + remount.stdout.decode()
            assert _json(remount)["stale_cleaned"], "the leftovers were not reported"
        again = run_cli(state, *unmount, "--trace", str(tmp_path / "t.jsonl"))
        assert again.returncode == 0, again.stderr.decode() + again.stdout.decode()
    res = _json(again)
    assert res["status"] == "ok" and all(s["ok"] for s in res["steps"]), res
    report = check_trace(load_jsonl(tmp_path / "t.jsonl"))
    assert report.ok, "\n".join(v.format() for v in report.violations)
    snaps, paths, sessions, _ = snapshot_leftovers(state, mnt)
    assert (snaps, paths, sessions) == ([], [], [])
    host = open_host(state / "datastore")
    try:
        vm = host.find_vm(VM)
        assert vm.snapshots() == [] and all(len(d.disk.chain()) == 1 for d in vm.disks)
        assert read_crash_files(vm.guest) == files
    finally:
        host.store.close()


def test_scheduled_jobs_killed_at_every_point_in_turn_then_run_once(
    prepared: tuple[Path, Files, dict[int, Files]], tmp_path: Path
) -> None:
    """``vcbsim jobs run`` backs up two VMs at once (concurrency 2); killed at each point in
    turn, each next run cleans what both VMs' runs left, and the last one records both."""
    base, written, _ = prepared
    files = dict(written)
    state = tmp_path / "state"
    copy_state(base, state)
    add = run_cli(state, "jobs", "add", "nightly", "-a", f"name:{VM}", "-a", "name:rhel5-web",
                  "-t", "fullvm", "--at", "+60", "--every", "86400")
    assert add.returncode == 0, add.stderr.decode()
    for i, point in enumerate(POINTS):
        guest_write(state, f"j{i}", files)
        killed = run_cli(state, "jobs", "run", "--until", "+120", crash_at=point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.returncode, killed.stderr.decode())
    last = run_cli(state, "jobs", "run", "--until", "+120")
    assert last.returncode == 0, last.stderr.decode() + last.stdout.decode()
    runs = _json(last)
    assert sorted(r["selector"] for r in runs) == sorted([f"name:{VM}", "name:rhel5-web"])
    assert all(r["result"]["status"] == "ok" for r in runs)
    hist = _json(run_cli(state, "jobs", "history"))
    assert sorted(r["vm_name"] for r in hist) == sorted([VM, "rhel5-web"]) and {r["status"] for r in hist} == {"ok"}
    snaps, paths, sessions, running = snapshot_leftovers(state)
    assert (snaps, paths, sessions, running) == ([], [], [], [])
    (latest,) = [r["result"]["backup_id"] for r in runs if r["selector"] == f"name:{VM}"]
    host = open_host(state / "datastore")
    try:
        assert all(vm.snapshots() == [] for vm in host.vms.values())
        assert read_crash_files(host.find_vm(VM).guest) == files
        with Catalog(state / "medium") as cat:
            assert image_files(cat, latest, host) == files
    finally:
        host.store.close()
