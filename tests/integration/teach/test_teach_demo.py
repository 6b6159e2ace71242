"""``vcbsim demo``: its narration shows the seed's steps and its checks pass."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

REPO = Path(__file__).resolve().parents[3]

STEPS = ("WF-1a", "WF-1b", "WF-1c", "WF-1d", "WF-1e", "WF-1f", "WF-2", "WF-3a", "WF-3b")


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vcbsim", "demo", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, COLUMNS="140"),
    )


def test_demo_narrates_the_seed_steps_and_passes_every_check(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    proc = _demo("--out", str(out_dir), "--width", "140")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    # the three backups, in order
    sections = [text.index(s) for s in ("1. Image-level backup", "2. File-level backup", "3. Failure path", "Nothing left behind")]
    assert sections == sorted(sections)
    image, files, failure = (
        text[sections[0] : sections[1]],
        text[sections[1] : sections[2]],
        text[sections[2] : sections[3]],
    )
    for part in (image, files):
        assert re.findall(r"^(WF-[0-9][a-f]?)\s", part, re.M) == list(STEPS)
    assert "[WF-1c]" in image and "disk.export" in image and "rhel5-web-fullVM" in image
    assert "the guest edits D:\\Data\\orders.csv now" in files
    assert files.index("the guest edits") < files.index("WF-2 ")
    assert re.findall(r"^(WF-[0-9][a-f]?)\s", failure, re.M) == ["WF-1a", "WF-1e"]
    assert "not reached on this path: WF-1b, WF-1c, WF-1d" in failure
    ff = re.findall(r"path=\S*?([\w-]+\.bat) arg=freezeFail", failure)
    assert ff == ["20-app-pause.bat", "10-sql-flush.bat"]
    assert "ApplicationQuiesceFault" in failure
    for check in (
        "image export equals the snapshot's disks",
        "file backup equals the snapshot's files",
        "the edit made during the backup is not in the backup",
        "after the commit the disk holds the edit",
        "freezeFail goes to the scripts that froze, in descending order",
        "no snapshot was taken",
        "no snapshot on any VM",
        "nothing mounted or exported on the proxy",
    ):
        assert f"PASS {check}" in text, check
    assert "FAIL" not in text
    assert re.search(r"^(\d+)/\1 checks passed$", text, re.M)
    # --out keeps the VMDK files restored from the medium
    assert (out_dir / "restored-image" / "rhel5-web.vmdk").is_file()
    assert list((out_dir / "restored-image").glob("rhel5-web-s00*.vmdk"))


def test_demo_json(tmp_path: Path) -> None:
    proc = _demo("--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    assert len(report["checks"]) >= 10 and all(c["ok"] for c in report["checks"])
    failure = [s for s in report["steps"] if s["backup"] == "failure"]
    assert [s["step"] for s in failure] == ["WF-1a", "WF-1e"]
    args = [e["details"]["arg"] for s in failure for e in s["events"] if e["kind"] == "script.run"]
    assert args == ["freeze"] * 3 + ["freezeFail"] * 2  # backupScripts.d alone on 3.5 U2 with VSS


def test_demo_refuses_a_non_empty_out(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    proc = _demo("--out", str(tmp_path))
    assert proc.returncode == 2 and "not empty" in proc.stdout


def test_a_failed_check_fails_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vcbsim import _demo

    monkeypatch.setattr(_demo, "_same_device", lambda a, b: (False, 0))
    report = _demo.run_demo(tmp_path, Console(file=open(tmp_path / "log.txt", "w"), width=120))  # noqa: SIM115
    failed = [c.name for c in report.checks if not c.ok]
    assert failed == ["image export equals the snapshot's disks"]
    assert not report.ok
    monkeypatch.setattr(sys, "argv", ["vcbsim"])
    assert _demo.main(["--json"]) == 1
