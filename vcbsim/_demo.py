r"""``vcbsim demo``: a narrated end-to-end VCB run on the demo host, with its data checked.

Three backups with the reference proxy, each printed step by step from the host's trace:

1. an image-level backup of ``rhel5-web`` (any guest OS): the snapshot is exported as VMDK
   files, copied to the medium, and the VMDK files are restored from the medium into the
   output directory, where ``qemu-img info`` reads them;
2. a file-level backup of ``win2003-sql``, with a guest file edited *during* the backup
   (after the snapshot, before the copy);
3. a failure path: a pre-freeze script that exits non-zero. The snapshot is never taken,
   VMware Tools runs the scripts that had frozen with ``freezeFail`` in descending order, and
   the job fails with ``ApplicationQuiesceFault``.

Then the data checks: the image export equals the snapshot's disks; the file backup equals the
snapshot's files (without the edit); after the commit the live disk holds the edit; nothing is
left behind (no snapshot, nothing mounted). The exit status is 0 only if every check passed.

``--inventory era`` runs ``vcbsim/_demo_era.py`` instead: one image backup per VM of the era
inventory, each checked against what a host of ``--profile`` does.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from ._teach_core import (
    STEP_TITLES,
    GuidedBackup,
    StepView,
    TeachSession,
    console_width,
    error_code_note,
    pipe_safe,
    piped_width,
    scripts_dir,
)
from ._teach_render import event_line

__all__ = ["Check", "DemoReport", "main", "run_demo"]

EDIT_PATH = r"D:\Data\orders.csv"
EDIT_TEXT = b"id,item,qty\r\n1,disk,4\r\n2,tape,12\r\n3,edited during the backup,1\r\n"
FAILING_SCRIPT = "30-demo-fails.bat"


@dataclass(slots=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass(slots=True)
class DemoReport:
    checks: list[Check] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    out: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "out": self.out, "checks": [asdict(c) for c in self.checks], "steps": self.steps}


class _Narrator:
    def __init__(self, console: Console, session: TeachSession, report: DemoReport, quiet: bool) -> None:
        self.console, self.session, self.report, self.quiet = console, session, report, quiet

    def print(self, *items: Any) -> None:
        if not self.quiet:
            for it in items:
                self.console.print(it)

    def section(self, title: str) -> None:
        self.print(Text(""), Rule(Text(title, style="bold magenta"), align="left"))

    def step(self, backup: str, view: StepView) -> None:
        heading = Text()
        heading.append(f"{view.step:<6}", style="bold cyan")
        heading.append(" " + STEP_TITLES.get(view.step, ""), style="bold")
        self.print(heading)
        if view.skipped:
            self.print(Text("       not reached on this path: " + ", ".join(view.skipped), style="yellow"))
        width = self.console.width - 7
        for ev in view.events:
            if ev.kind in ("guest.write", "note") and not self.quiet:
                continue
            self.print(Text("       " + event_line(ev, self.session, width), style="dim" if ev.kind == "op.invoke" else ""))
        for c in view.changes:
            self.print(Text("       => " + c, style="green"))
        self.report.steps.append(
            {
                "backup": backup,
                "step": view.step,
                "skipped": list(view.skipped),
                "changes": view.changes,
                "events": [e.to_dict() for e in view.events],
            }
        )

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.report.checks.append(Check(name, ok, detail))
        mark = Text("  PASS " if ok else "  FAIL ", style="bold green" if ok else "bold red")
        mark.append(name)
        if detail:
            mark.append(f"  ({detail})", style="dim")
        self.print(mark)


def _same_device(a: Any, b: Any) -> tuple[bool, int]:
    """Whether two block devices hold the same bytes; compares only where either has data."""
    if a.size != b.size:
        return False, 0
    areas = sorted(set(a.allocated_areas()) | set(b.allocated_areas()))
    compared = 0
    for off, n in areas:
        if a.read(off, n) != b.read(off, n):
            return False, compared
        compared += n
    return True, compared


def _tree(fs: Any, letters: tuple[str, ...] = ("C", "D")) -> dict[str, bytes]:
    return fs.read_tree(*(f"{letter}:\\" for letter in letters))


def _restored_tree(catalog: Any, backup_id: int, target: Path, letters: tuple[str, ...] = ("C", "D")) -> dict[str, bytes]:
    for letter in letters:
        catalog.restore_files(backup_id, f"{letter}:", target)
    out: dict[str, bytes] = {}
    for p in target.rglob("*"):
        if p.is_file():
            rel = p.relative_to(target).parts
            out[(rel[0] + ":\\" + "\\".join(rel[1:])).casefold()] = p.read_bytes()
    return out


def _steps(n: _Narrator, name: str, backup: GuidedBackup, hooks: dict[str, Any] | None = None) -> None:
    while (view := backup.step()) is not None:
        n.step(name, view)
        if hooks and view.step in hooks:
            hooks[view.step]()
    r = backup.result
    summary = r.summary().replace(str(n.session.proxy_root), "<proxy>")
    n.print(Text("       " + summary, style="bold red" if r.status == "failed" else "bold green"))
    note = error_code_note(r.reason or "") if r.status == "failed" else None
    if note:
        n.print(Text("       " + note))


def run_demo(
    out: Path, console: Console, *, seed: int = 0, quiet: bool = False, profile: str | None = None
) -> DemoReport:
    """Run the three backups and the checks; ``out`` receives the proxy dir and the medium."""
    from vcbsim.simulator.disk import read_vmdk

    report = DemoReport(out=str(out))
    session = TeachSession(out, seed=seed, profile=profile)
    n = _Narrator(console, session, report, quiet)
    host = session.host
    try:
        # -- 1. image-level ------------------------------------------------------------------
        n.section("1. Image-level backup of rhel5-web (any guest OS): export the snapshot as VMDK files")
        lin = session.vm("rhel5-web")
        b = session.start_backup(lin.name, "fullvm")
        exported: dict[str, Any] = {}

        def after_export() -> None:
            snap = lin.current_snapshot
            path = Path(b.result.path)
            files = sorted(p.name for p in path.iterdir())
            n.print(Text(f"       files on the proxy: {', '.join(files)}", style="cyan"))
            for d in lin.disks:
                name = d.base_name.rsplit("/", 1)[-1]
                exported[name] = (read_vmdk(path / name).view(), host.disk_view(lin, d.key, snap))
            ok = True
            total = 0
            for a, s in exported.values():
                same, k = _same_device(a, s)
                ok &= same
                total += k
            exported["ok"] = (ok, total)

        _steps(n, "image", b, {"WF-1f": after_export})
        ok, total = exported.get("ok", (False, 0))
        n.print(Text(""))
        n.check("image export equals the snapshot's disks", ok, f"{total} allocated bytes compared")
        if b.result.backup_id is not None:
            restored = session.catalog.restore_image_files(b.result.backup_id, out / "restored-image")
            vmdks = sorted(p.name for p in restored.glob("*.vmdk"))
            n.check(
                "the medium holds the VMDK files",
                bool(vmdks),
                f"{restored.name}/: {', '.join(vmdks[:3])}{' ...' if len(vmdks) > 3 else ''}",
            )
        else:
            n.check("the medium holds the VMDK files", False, b.result.summary())

        # -- 2. file-level, with an edit during the backup ---------------------------------
        n.section("2. File-level backup of win2003-sql, with a file edited during the backup")
        win = session.vm("win2003-sql")
        fs = host.guest_fs(win)
        b = session.start_backup(win.name, "file", "full")
        as_of: dict[str, dict[str, bytes]] = {}

        def after_snapshot() -> None:
            snap = win.current_snapshot
            as_of["snapshot"] = _tree(host.guest_fs_at(win, snap))

        def edit() -> None:
            fs.write_bytes(EDIT_PATH, EDIT_TEXT)
            n.print(Text(f"       the guest edits {EDIT_PATH} now, while the snapshot is exposed", style="bold yellow"))

        _steps(n, "file", b, {"WF-1e": after_snapshot, "WF-1f": edit})
        n.print(Text(""))
        r = b.result
        if r.backup_id is not None and "snapshot" in as_of:
            backed_up = _restored_tree(session.catalog, r.backup_id, out / "restored-files")
            snap_tree = as_of["snapshot"]
            n.check(
                "file backup equals the snapshot's files",
                backed_up == snap_tree,
                f"{len(snap_tree)} files",
            )
            n.check(
                "the edit made during the backup is not in the backup",
                backed_up.get(EDIT_PATH.casefold()) != EDIT_TEXT,
            )
        else:
            n.check("file backup equals the snapshot's files", False, r.summary())
        live = fs.read_bytes(EDIT_PATH)
        n.check("after the commit the disk holds the edit", live == EDIT_TEXT, EDIT_PATH)

        # -- 3. failure path -------------------------------------------------------------------
        n.section("3. Failure path: a pre-freeze script exits 3")
        script = scripts_dir(win) + "\\" + FAILING_SCRIPT
        fs.write_bytes(script, b"@echo off\r\nREM a pre-freeze script that fails\r\n[freeze] exit 3\r\n")
        n.print(Text(f"       installed {script}: '[freeze] exit 3'", style="yellow"))
        mark = len(host.trace)
        b = session.start_backup(win.name, "fullvm")
        _steps(n, "failure", b)
        n.print(Text(""))
        r = b.result
        n.check(
            "the job fails with ApplicationQuiesceFault at pre-freeze (WF-1a)",
            r.status == "failed" and r.fault == "ApplicationQuiesceFault" and r.cause_step == "WF-1a",
            f"{r.fault} at {r.failed_step}/{r.cause_step}",
        )
        runs = [e.details for e in host.trace.since(mark) if e.kind == "script.run"]
        froze = [d["path"] for d in runs if d["arg"] == "freeze" and d["exit_code"] == 0]
        failed = [d["path"] for d in runs if d["arg"] == "freezeFail"]
        # the legacy slot is one entry: pre-freeze-script gets freeze, post-thaw-script the rest
        expected = [p.replace("pre-freeze-script", "post-thaw-script") for p in reversed(froze)]
        ok = failed == expected
        n.check(
            "freezeFail goes to the scripts that froze, in descending order",
            ok and bool(failed),
            " > ".join(p.rsplit("\\", 1)[-1] for p in failed),
        )
        n.check(
            "no snapshot was taken",
            not any(e.kind == "snapshot.create" for e in host.trace.since(mark)) and not win.snapshots(),
        )
        fs.delete(script)

        # -- nothing left behind ---------------------------------------------------------------
        n.section("Nothing left behind")
        snaps = [f"{vm.name}:{s.name}" for vm in host.vms.values() for s in vm.snapshots()]
        n.check("no snapshot on any VM", not snaps, ", ".join(snaps) or "none")
        exposed = [p.name for p in session.proxy_root.glob("*") if not p.name.startswith(".")] if session.proxy_root.exists() else []
        n.check(
            "nothing mounted or exported on the proxy",
            not session.mounts and not exposed,
            ", ".join(session.mounts + exposed) or "none",
        )
        frozen = [vm.name for vm in host.vms.values() if vm.tools is not None and (vm.tools.frozen or vm.tools.phase != "IDLE")]
        n.check("no guest left quiesced", not frozen, ", ".join(frozen) or "none")
    finally:
        session.close()
    return report


@pipe_safe(1)
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="vcbsim demo",
        description="Narrated end-to-end VCB backups on the demo host (image, file-level with an "
        "edit during the backup, a failing pre-freeze script), then data checks.",
    )
    p.add_argument("--out", help="directory for the proxy, the medium and the restored VMDK files (default: a temporary one, removed)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of the narration")
    p.add_argument("--seed", type=int, default=0, help="the host's seed (default 0)")
    p.add_argument("--inventory", default="demo", choices=("demo", "era"),
                   help="'era': one image backup per era-specific case (XP with the legacy scripts, "
                        "Windows 2019, an independent disk, two datastores, no Tools, RDMs and a "
                        "nonpersistent disk), checked against the profile")
    p.add_argument("--profile", default="esx-3.5u2", choices=("esx-3.5u1", "esx-3.5u2", "esxi-7.0"),
                   help="host profile (default esx-3.5u2)")
    p.add_argument("--width", type=console_width, default=None,
                   help="output width in columns, 40 or more (default: the terminal's; 120 when piped)")
    ns = p.parse_args(list(argv) if argv is not None else None)
    console = Console(width=ns.width or piped_width(), highlight=False, markup=False, emoji=False)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if ns.out:
        out = Path(ns.out)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            console.print(f"vcbsim demo: --out {out}: expected a directory vcbsim can create and write, "
                          f"got: {exc.strerror or exc}; give another directory")
            return 2
        if any(out.iterdir()):
            console.print(f"vcbsim demo: --out {out} is not empty; give an empty or new directory")
            return 2
    else:
        tmp = tempfile.TemporaryDirectory(prefix="vcbsim-demo-")
        out = Path(tmp.name)
    try:
        if ns.inventory == "era":
            from ._demo_era import run_era_demo

            report = run_era_demo(out, console, seed=ns.seed, quiet=ns.json, profile=ns.profile)
        else:
            report = run_demo(out, console, seed=ns.seed, quiet=ns.json, profile=ns.profile)
    finally:
        if tmp is not None:
            from vcbsim.reference._workflow import force_remove

            force_remove(out)
            tmp.cleanup()
    if ns.json:
        if tmp is not None:
            report.out = ""
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    else:
        t = Table(title="checks", title_justify="left")
        t.add_column("result")
        t.add_column("check")
        for c in report.checks:
            t.add_row(Text("PASS", style="green") if c.ok else Text("FAIL", style="bold red"), c.name)
        console.print(Text(""))
        console.print(t)
        passed = sum(c.ok for c in report.checks)
        verdict = f"{passed}/{len(report.checks)} checks passed"
        console.print(Text(verdict, style="bold green" if report.ok else "bold red"))
        if ns.out:
            console.print(f"output kept in {out} (restored-image/ holds the VMDK files)")
    return 0 if report.ok else 1
