"""The coverage page is generated from the code, and the ``vcbsim serve`` entry point works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from pyVim.connect import Disconnect, SmartConnect

from vcbsim.simulator.soap._coverage import coverage_markdown
from vcbsim.simulator.soap.mo import ALL_TYPES

ROOT = Path(__file__).resolve().parents[3]


def test_coverage_page_is_current():
    page = ROOT / "docs" / "vsphere-coverage.md"
    assert page.read_text(encoding="utf-8") == coverage_markdown(), (
        "regenerate: python -m vcbsim.simulator.soap._coverage > docs/vsphere-coverage.md"
    )


def test_every_listed_method_is_a_method_of_its_vsphere_type():
    for impl in ALL_TYPES:
        wsdl_methods = {m.wsdlName for m in impl.vim_type._GetMethodList()}
        assert set(impl.soap_methods()) <= wsdl_methods, impl.__name__
        valid = {p.name for p in impl.vim_type._GetPropertyList()}
        declared = {n[2:] for n in dir(impl) if n.startswith("p_")}
        assert declared <= valid, impl.__name__  # every getter serves a real property


def test_serve_command_serves_the_demo_host_and_stops_on_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "vcbsim.simulator.soap._cli", "--port", "0", "--http", "--profile", "esxi-7.0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        first = proc.stdout.readline()
        assert " at http://127.0.0.1:" in first, first
        port = int(first.rsplit(":", 1)[1].split("/")[0])
        si = SmartConnect(protocol="http", host="127.0.0.1", port=port, user="user", pwd="pass")
        assert si.content.about.version == "7.0.3"
        vms = si.content.rootFolder.childEntity[0].vmFolder.childEntity
        assert sorted(vm.name for vm in vms) == ["rhel5-web", "win2003-sql"]
        Disconnect(si)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_tests_named_on_the_coverage_page_exist():
    import re

    names = set(re.findall(r"`(test_\w+?)(?:\.py)?`", coverage_markdown()))
    assert names
    sources = "".join(p.read_text(encoding="utf-8") for p in Path(__file__).parent.glob("test_*.py"))
    missing = sorted(n for n in names if f"def {n}(" not in sources and not (Path(__file__).parent / f"{n}.py").exists())
    assert missing == []
