"""IMG-NO-UNSNAPSHOTTED / IMG-SAYS-UNSNAPSHOTTED: quick rejects a proxy whose image backup
holds the disks no snapshot covers, warns about one that leaves them out silently, and passes
the reference, which leaves them out and says so (``vcbsim.conformance._check_disks``)."""

from __future__ import annotations

import io

import pytest
from unsnapshotted_mutants import ExportsDisksNoSnapshotCovers, LeavesOutDisksSilently

from vcbsim.conformance import ConformanceViolation, ReferenceOrchestrator, run

SCENARIO = ["image-unsnapshotted-disks"]


@pytest.mark.parametrize("host_profile", ["esx-3.5u2", "esxi-7.0"])
def test_quick_rejects_a_proxy_that_exports_disks_no_snapshot_covers(host_profile: str) -> None:
    with pytest.raises(ConformanceViolation) as info:
        run(ExportsDisksNoSnapshotCovers, profile="quick", seed=0, host_profile=host_profile, out=io.StringIO())
    exc = info.value
    assert exc.rule_id == "IMG-NO-UNSNAPSHOTTED", str(exc)
    assert "a physical-mode RDM" in str(exc) and "an independent_persistent disk" in str(exc)


def test_quick_warns_about_a_proxy_that_leaves_them_out_silently() -> None:
    out = io.StringIO()
    result = run(LeavesOutDisksSilently, profile="quick", seed=0, out=out, scenarios=SCENARIO)
    assert result.ok, out.getvalue()[-3000:]
    assert result.warnings == ("IMG-SAYS-UNSNAPSHOTTED",)
    warned = [w for c in result.cases for w in c.warnings if w["rule"] == "IMG-SAYS-UNSNAPSHOTTED"]
    assert warned and warned[0]["severity"] == "warn" and "does not say so" in warned[0]["explanation"]


@pytest.mark.parametrize("host_profile", ["esx-3.5u1", "esx-3.5u2", "esxi-7.0"])
def test_the_reference_passes_and_exercises_both_rules(host_profile: str) -> None:
    out = io.StringIO()
    result = run(ReferenceOrchestrator, profile="quick", seed=0, host_profile=host_profile, out=out,
                 scenarios=SCENARIO)
    assert result.ok and result.warnings == (), out.getvalue()[-3000:]
    exercised = {r for c in result.cases for r, n in c.exercised.items() if n}
    assert {"IMG-NO-UNSNAPSHOTTED", "IMG-SAYS-UNSNAPSHOTTED", "CMT-BACKUP-CONTENT"} <= exercised
