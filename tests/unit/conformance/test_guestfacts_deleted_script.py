"""A freeze script deleted while a 3.5-era quiesce operation still runs (the host stopped
waiting, the guest did not): Tools skip it at its turn (spec R22), but one the guest had already
launched runs on and its ``script.run`` is traced when it ends. The kit must accept the second
(certify seed 0 once rejected the reference here on SCR-ORDER-FREEZE)."""

from __future__ import annotations

from vcbsim.conformance import ReferenceOrchestrator, Scenario


def test_a_script_launched_before_its_deletion_may_run_on() -> None:
    s = Scenario(ReferenceOrchestrator, host_profile="esx-3.5u2")
    try:
        s.add_script(name="05-slow.bat", exit_code=0, sleep=895.0, phase="freeze")
        s.add_script(name="10-x.bat", exit_code=1, sleep=0.0, phase="thaw")
        s.add_script(name="9-nine.bat", exit_code=0, sleep=0.0, phase="")
        s.add_script(name="B.bat", exit_code=0, sleep=0.0, phase="")
        s.backup(vm="win2003-sql", mode="fullvm", level="full", during=())
        s.remove_script(name="b.bat")  # the guest is running B.bat when it is deleted
        s.finish()  # the guest's operation goes on and ends; judged with the rest
        runs = [e for e in s.host.trace.events if e.kind == "script.run" and str(e.details["path"]).endswith("B.bat")]
        deletes = [e for e in s.host.trace.events if e.kind == "guest.delete" and str(e.details["path"]).endswith("B.bat")]
        assert deletes and runs and runs[0].seq > deletes[0].seq  # its run traced after the deletion
    finally:
        s.close()
