"""Property: for any script set, layout and OS, the order and arguments follow spec R19-R29.

The oracle below is written from the spec's text, independently of the implementation:
list = [legacy slot if either legacy file exists] + directory files in byte order (R21; the
directory only on the scripts.d layout, seed Table 2-3); freeze ascending with ``freeze``,
stopping at the first failure k (R26); then either ``freezeFail`` for k-1 … 0 (R26), or,
after an engage / thaw failure, ``freezeFail`` for all (F3, F7), or ``thaw`` for all, every
one of them even after a failure (R28); the legacy slot runs its post-thaw file in the
descending phases (R22) and a missing file is skipped.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyVmomi import vim

from vcbsim.simulator import FaultRule
from vcbsim.simulator.tools import ToolsSwitches

EXITS = st.sampled_from([0, 0, 0, 0, 1, 3])


@st.composite
def scenarios(draw: Any) -> dict[str, Any]:
    os_family = draw(st.sampled_from(["windows", "linux"]))
    windows = os_family == "windows"
    stems = draw(
        st.lists(
            st.text(alphabet="aAbBzZ019-_", min_size=1, max_size=4),
            max_size=6,
            unique_by=(lambda s: s.lower()) if windows else (lambda s: s),
        )
    )
    names = [s + ".bat" for s in stems] if windows else stems
    return {
        "os": os_family,
        "profile": draw(st.sampled_from(["esx-3.5u1", "esx-3.5u2", "esxi-7.0"])),
        "names": names,
        "pre": draw(st.booleans()),
        "post": draw(st.booleans()),
        "subdir": draw(st.booleans()),
        "freeze_exit": draw(st.lists(EXITS, min_size=len(names) + 1, max_size=len(names) + 1)),
        "thaw_exit": draw(st.lists(EXITS, min_size=len(names) + 1, max_size=len(names) + 1)),
        "failure": draw(st.sampled_from([None, None, "engage", "disengage"])),
    }


def _script_text(tag: str, freeze_exit: int, thaw_exit: int, log: str, windows: bool) -> str:
    arg = "%1" if windows else "$1"
    return (
        f"echo {tag} {arg} >> {log}\n"
        f"[freeze] exit {freeze_exit}\n"
        f"[thaw] exit {thaw_exit}\n"
        "[freezeFail] exit 7\n"
    )


@settings(max_examples=100, deadline=None)
@given(sc=scenarios())
def test_script_order_and_arguments(rig: Any, sc: dict[str, Any]) -> None:
    # the R30 defect has its own test; here the order alone is checked
    r = rig(sc["os"], sc["profile"], switches=ToolsSwitches(legacy_slot_defect=False))
    windows = sc["os"] == "windows"
    log = "C:\\order.log" if windows else "/order.log"
    tag_of: dict[str, str] = {}
    fexit: dict[str, int] = {}
    texit: dict[str, int] = {}

    def add(path: str, tag: str, i: int) -> None:
        r.script(path, _script_text(tag, sc["freeze_exit"][i], sc["thaw_exit"][i], log, windows))
        tag_of[path] = tag
        fexit[path] = sc["freeze_exit"][i]
        texit[path] = sc["thaw_exit"][i]

    for i, name in enumerate(sc["names"]):
        add(r.in_dir(name), f"d{i}", i)
    if sc["subdir"]:
        r.files.mkdir(r.in_dir("sub.d"), parents=True)
        add(r.in_dir("sub.d") + ("\\x.bat" if windows else "/x"), "nested", len(sc["names"]))
    last = len(sc["names"])
    if sc["pre"]:
        add(r.pre, "pre", last)
    if sc["post"]:
        add(r.post, "post", last)
    if sc["failure"] == "engage":
        r.faults.add(FaultRule("quiesce.engage", target="vm-1"))
    elif sc["failure"] == "disengage":
        r.faults.add(FaultRule("quiesce.disengage", target="vm-1"))

    # ---- oracle (spec R21-R23, R26, R28) ----
    # which lists run, per era (seed Table 2-3, KB 1006671, OVT 1da06b950): 3.5 U1 the legacy
    # pair; 3.5 U2 the directory for a VSS (Windows) guest, the legacy pair for Linux; 7.0 both
    legacy_runs = sc["profile"] != "esx-3.5u2" or not windows
    dir_runs = sc["profile"] == "esxi-7.0" or (sc["profile"] == "esx-3.5u2" and windows)
    slots: list[tuple[str | None, str | None]] = []
    if legacy_runs and (sc["pre"] or sc["post"]):
        slots.append((r.pre if sc["pre"] else None, r.post if sc["post"] else None))
    if dir_runs:
        for name in sorted(sc["names"], key=lambda n: n.encode()):
            slots.append((r.in_dir(name), r.in_dir(name)))
    expected: list[tuple[str, str]] = []
    failed_at = None
    for k, (fpath, _) in enumerate(slots):
        if fpath is None:
            continue
        expected.append((fpath, "freeze"))
        if fexit[fpath] != 0:
            failed_at = k
            break
    if failed_at is not None:
        below, arg = failed_at, "freezeFail"
    elif sc["failure"] is not None:
        below, arg = len(slots), "freezeFail"
    else:
        below, arg = len(slots), "thaw"
    descending = [t for _, t in reversed(slots[:below]) if t is not None]
    expected += [(p, arg) for p in descending]

    # ---- run ----
    if failed_at is not None:
        with pytest.raises(vim.fault.ApplicationQuiesceFault):
            r.quiesce()
        assert r.created == []
    elif sc["failure"] == "engage":
        with pytest.raises(vim.fault.SnapshotFault):
            r.quiesce()
        assert r.created == []
    elif sc["failure"] == "disengage":
        with pytest.raises(vim.fault.FilesystemQuiesceFault):
            r.quiesce()
        assert r.rolled_back == r.created == ["snapshot-1"]
    else:
        res = r.quiesce()
        thaw_failed = any(texit[p] != 0 for p in descending)
        assert res.outcome == ("error" if thaw_failed else "done")
        assert res.snapshot == "snapshot-1" and r.frozen_during_create == [res.provider != "null"]

    assert r.calls() == expected
    for ev in r.trace.of_kind("script.run"):
        assert ev.step == ("WF-1a" if ev.details["arg"] == "freeze" else "WF-1e")
        assert ev.details["legacy"] == (ev.details["path"] in (r.pre, r.post))
    # the side effects on the guest's disk happened in the same order
    want_log = "".join(f"{tag_of[p]} {a}" + ("\r\n" if windows else "\n") for p, a in expected)
    got_log = r.files.read_text(log) if r.files.exists(log) else ""
    assert got_log == want_log
    # nothing stays frozen; exactly one end; time only moves forward
    assert not r.tools.frozen and r.tools.phase == "IDLE"
    assert len(r.trace.of_kind("quiesce.end")) == 1
    times = [e.time for e in r.trace]
    assert times == sorted(times)
