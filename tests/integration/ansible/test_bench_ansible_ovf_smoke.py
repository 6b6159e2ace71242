"""The Ansible OVF benchmark (``benchmarks/bench_ansible_ovf.py``) runs at a small size: export
and import through the modules, each beside ``qemu-img convert`` of the same data. No
assertion on time: the figures belong in ``benchmarks/``; this only keeps the script working."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(
    shutil.which("ansible-playbook") is None,
    reason="ansible-playbook is not installed (pip install 'ansible>=12,<13' for community.vmware)",
)


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img not installed (apt-get install qemu-utils)")
def test_the_ansible_ovf_benchmark_runs_at_a_small_size(tmp_path: Path) -> None:
    out = tmp_path / "ovf.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/bench_ansible_ovf.py", "--mib", "16", "--fill", "25", "--json-out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=600, env=dict(os.environ, PYTHONSAFEPATH="1"), check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert [r["path"] for r in report["rows"]] == ["export (vmware_export_ovf)", "import (vmware_deploy_ovf)"]
    assert all(r["mib_per_s"] > 0 and r["qemu_img_mib_per_s"] > 0 for r in report["rows"])
    assert "4 MiB of data written (25%)" in proc.stdout
