"""The file-level benchmark runs at a small size: each round a full that copies every file and
an incremental that copies the 1% rewritten, the best of the rounds shown, every round kept in
the JSON (issue 18). No assertion on time: the figures belong in ``benchmarks/``; this only
keeps the script working."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_the_filelevel_benchmark_runs_its_rounds_at_a_small_size(tmp_path: Path) -> None:
    out = tmp_path / "filelevel.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/bench_filelevel.py", "--files", "300", "--repeat", "2", "--json-out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONSAFEPATH="1"), check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    rounds = doc["vcbsim"]["rounds"]
    assert doc["repeat"] == 2 and len(rounds) == 2 and len(doc["incremental_over_full_per_round"]) == 2
    for r in rounds:
        assert (r["full"]["files_copied"], r["full"]["files_total"]) == (300, 300)
        assert (r["incremental"]["files_copied"], r["incremental"]["files_total"]) == (3, 300)
    assert doc["vcbsim"]["full"]["cpu"] == min(r["full"]["cpu"] for r in rounds)
    assert "best of 2 round(s) each" in proc.stdout and "vcbsim per round" in proc.stdout


def test_a_round_count_out_of_range_is_one_clear_line() -> None:
    proc = subprocess.run(
        [sys.executable, "benchmarks/bench_filelevel.py", "--repeat", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONSAFEPATH="1"), check=False,
    )
    assert proc.returncode == 2 and "--repeat: expected 1 to 20 rounds, got 0" in proc.stderr
    assert "Traceback" not in proc.stderr
