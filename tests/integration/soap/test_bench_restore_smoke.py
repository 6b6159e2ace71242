"""The restore benchmark runs at a small size and measures both ways back (issue 16): the
``/folder`` upload with ``RegisterVM_Task``, the NFC import lease (``ImportVApp``) and the
hot-add restores (a new VM's disk, or the original's own, written through the proxy VM's NBD
device), each
beside ``qemu-img convert`` of the same data. No assertion on time: the figures belong in
``benchmarks/``; this only keeps the script working."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_the_restore_benchmark_runs_both_transports_at_a_small_size(tmp_path: Path) -> None:
    out = tmp_path / "restore.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/bench_restore.py", "--mib", "16", "--repeat", "1", "--json-out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONSAFEPATH="1"), check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.read_text())
    assert [r["path"] for r in rows] == ["folder upload", "nfc import", "hotadd", "hotadd over"]
    assert all(r["data_mib"] == 8 and r["wire"]["mib_per_s"] > 0 for r in rows)
    assert "| nfc import | 16 MiB |" in proc.stdout and "| hotadd | 16 MiB |" in proc.stdout
    assert "| hotadd over | 16 MiB |" in proc.stdout
