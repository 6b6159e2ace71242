"""Issue 17's "Done when": every row of the profile table in docs/architecture.md names, first in
its test column, a test that runs on each profile. A row added without one, or a test renamed or
narrowed to fewer profiles, fails here."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
from pathlib import Path

from vcbsim.simulator import PROFILES

ROOT = Path(__file__).resolve().parents[3]
FILES = {
    "T": "tests/unit/tools/test_era.py",
    "E": "tests/unit/tools/test_era_rows.py",
    "H": "tests/unit/host/test_profiles.py",
    "V": "tests/unit/host/test_profiles_vss.py",
    "R": "tests/unit/host/test_profiles_rdm.py",
    "D": "tests/unit/host/test_demo_and_guest.py",
    "P": "tests/unit/persist/test_persist_era.py",
}


def _rows() -> list[tuple[str, str, str]]:
    """``(behaviour, file letter, first test name)`` of every row of the profile table."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Host profiles", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6 or cells[0] in ("behaviour", "---"):
            continue
        m = re.match(r"([A-Z]) `([^`]+)`", cells[5])
        assert m, f"row {cells[0]!r}: the test column should start with a letter and a test name"
        rows.append((cells[0], m.group(1), m.group(2)))
    return rows


def test_every_row_has_a_test_on_each_profile() -> None:
    rows = _rows()
    assert len(rows) >= 23
    files = sorted({FILES[letter] for _, letter, _ in rows})
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONSAFEPATH": "1"},  # the checkout's vcbsim/ must not shadow the package
    ).stdout
    ids = [line for line in out.splitlines() if "::" in line]
    missing = []
    for behaviour, letter, name in rows:
        mine = [i for i in ids if i.startswith(FILES[letter] + "::") and fnmatch.fnmatch(i.split("::")[1].split("[")[0], name)]
        for profile in PROFILES:
            if not any(f"[{profile}" in i or f"-{profile}" in i for i in mine):
                missing.append(f"{behaviour!r}: {name} has no case on {profile}")
    assert not missing, "\n".join(missing)
