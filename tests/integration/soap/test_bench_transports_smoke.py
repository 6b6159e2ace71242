"""The transports benchmark runs at a small size with every leg: folder, nfc and hotadd in
process and over the wire (hot-add read through the proxy's NBD device), and the qemu-img
rows, one of them reading the hot-added device itself. No assertion on time: the figures
belong in ``benchmarks/``; this only keeps the script working."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_the_transports_benchmark_runs_every_leg_at_a_small_size(tmp_path: Path) -> None:
    out = tmp_path / "transports.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/bench_transports.py", "--mib", "8", "--repeat", "1", "--json-out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONSAFEPATH="1"), check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    paths = [r["path"] for r in json.loads(out.read_text())["rows"]]
    legs = [f"{where}, -m {mode}" for where in ("in process", "over the wire") for mode in ("folder", "nfc", "hotadd")]
    assert paths[:6] == legs
    if shutil.which("qemu-img"):
        assert paths[-1] == "qemu-img convert of the hot-added NBD device"
