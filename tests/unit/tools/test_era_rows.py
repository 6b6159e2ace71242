"""Profile-table rows whose earlier tests ran on one profile each, now on every profile (issue 17,
"Done when": every row of docs/architecture.md "Host profiles" has a test on each profile).

Rows: "scripts of a Windows VSS guest", "scripts of a Windows XP/2000 (SYNC) guest", "scripts
of a Linux guest", "arguments of the legacy pair", "what the snapshot records".
"""

from __future__ import annotations

import dataclasses

import pytest

from vcbsim.simulator import Host, get_profile
from vcbsim.simulator._host import GiB

PROFILES = ("esx-3.5u1", "esx-3.5u2", "esxi-7.0")


def _calls(r, with_dir: bool = True) -> tuple[str, str, str]:
    d = r.script(r.in_dir("10-a.bat" if r.files.os_family == "windows" else "10-a"), "") if with_dir else ""
    r.script(r.pre, "")
    r.script(r.post, "")
    return d, r.pre, r.post


# -- row: scripts of a Windows VSS guest -------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_vss_guest_scripts_per_profile(rig, profile: str) -> None:
    """3.5 U1: no VSS, the SYNC driver and the legacy pair (hostd); 3.5 U2: VSS and the
    directory alone (OVT 1da06b950); 7.0: one list, the legacy slot around the directory."""
    r = rig("windows", profile)
    d, pre, post = _calls(r)
    res = r.quiesce()
    expected = {
        "esx-3.5u1": [(pre, "freeze"), (post, "thaw")],
        "esx-3.5u2": [(d, "freeze"), (d, "thaw")],
        "esxi-7.0": [(pre, "freeze"), (d, "freeze"), (d, "thaw"), (post, "thaw")],
    }[profile]
    assert r.calls() == expected and res.outcome == "done"
    assert res.provider == ("sync" if profile == "esx-3.5u1" else "vss")


# -- row: scripts of a Windows XP/2000 (SYNC) guest ----------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_xp_guest_scripts_per_profile(rig, profile: str) -> None:
    """KB 1006671: XP on 3.5 (U2 too) runs the legacy pair only; Tools of 2010 on run the
    legacy slot with the directory."""
    r = rig("windows", profile, providers=("sync",))
    d, pre, post = _calls(r)
    res = r.quiesce()
    if profile == "esxi-7.0":
        assert r.calls() == [(pre, "freeze"), (d, "freeze"), (d, "thaw"), (post, "thaw")]
    else:
        assert r.calls() == [(pre, "freeze"), (post, "thaw")]
    assert res.provider == "sync"


# -- row: scripts of a Linux guest -------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_linux_guest_scripts_per_profile(rig, profile: str) -> None:
    r = rig("linux", profile)
    d, pre, post = _calls(r)
    r.quiesce()
    if profile == "esxi-7.0":
        assert r.calls() == [(pre, "freeze"), (d, "freeze"), (d, "thaw"), (post, "thaw")]
    else:  # seed Table 2-3 "Other": /usr/sbin only
        assert r.calls() == [(pre, "freeze"), (post, "thaw")]


# -- row: arguments of the legacy pair (switch legacy_layout_args) -----------------------------


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("switch", [True, False])
def test_legacy_pair_arguments_per_profile(rig, profile: str, switch: bool) -> None:
    """What hostd passed is unknown (spec Q3): the switch decides on the 3.5 profiles; Tools
    (7.0) always pass ``freeze`` / ``thaw`` / ``freezeFail``."""
    from vcbsim.simulator.tools import ToolsSwitches

    r = rig("linux", profile, switches=ToolsSwitches(legacy_layout_args=switch))
    _d, pre, post = _calls(r, with_dir=False)
    r.quiesce()
    if switch or profile == "esxi-7.0":
        assert r.calls() == [(pre, "freeze"), (post, "thaw")]
    else:  # hostd's path with the switch off: no argument at all
        assert r.calls() == [(pre, None), (post, None)]


# -- row: what the snapshot records ------------------------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_what_the_snapshot_records_per_profile(profile: str) -> None:
    """``quiesced``, the quiesce type and the ``.vmsd`` type on every profile;
    ``backupManifest`` only for an application-consistent VSS snapshot under the 4.1 rules."""
    host = Host(profile)
    w2003 = host.add_vm("w2003", disks=[GiB])
    lin = host.add_vm("lin", os_family="linux", disks=[GiB])
    s = host.create_snapshot(w2003, "q", quiesce=True)
    assert s.quiesced and 'snapshot0.type = "1"' in w2003.vmsd_text()
    if profile == "esx-3.5u1":  # SYNC driver only: file-system consistent
        assert s.quiesce_type == "filesystem" and s.backup_manifest is None
    elif profile == "esx-3.5u2":  # VSS with writers, but no manifest before the 4.x API
        assert s.quiesce_type == "application" and s.backup_manifest is None
    else:
        assert s.quiesce_type == "application" and s.backup_manifest == "w2003-vss_manifests1.zip"
    plain = host.create_snapshot(lin, "crash")
    assert not plain.quiesced and plain.quiesce_type is None and 'snapshot0.type = "0"' in lin.vmsd_text()
    q = host.create_snapshot(lin, "q", quiesce=True)
    assert q.quiesce_type == "filesystem" and q.backup_manifest is None


def test_profile_switches_exist_where_the_table_names_them() -> None:
    """The table's switches are real fields (a renamed one would leave the table wrong)."""
    from vcbsim.simulator.tools import ToolsSwitches

    tools = {f.name for f in dataclasses.fields(ToolsSwitches)}
    assert {"legacy_layout_args", "legacy_slot_defect", "guest_error_fault"} <= tools
    prof = {f.name for f in dataclasses.fields(get_profile("esxi-7.0"))}
    assert {"vss_guest_legacy_pair", "quiesce_without_tools", "api_consolidation", "consolidate_helper"} <= prof
