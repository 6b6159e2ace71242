"""Backups judged from what the product wrote (issue 11, "judge what happened"): a product that
declares no restore but a backup root (``backup_root``; the toy writes ``<letter>/<path>`` per
copied file, or the VM's export) is judged on the folder each job wrote, read by the kit
(``_restored``), not on the digests it reports; a product that declares neither is told in the
evidence what was not read."""

from __future__ import annotations

import io

import pytest
from toy_proxy import toy

from vcbsim.conformance import ConformanceViolation, run

WRITES = dict(writes_backups=True)


@pytest.mark.parametrize("named", [True, False], ids=["location-named", "location-found-in-the-folder"])
def test_a_product_that_writes_correct_backups_passes_judged_from_them(named: bool) -> None:
    result = run(toy(**WRITES, location_unnamed=not named), profile="quick", seed=3, out=io.StringIO())
    assert result.ok and result.evidence is not None
    ev = result.evidence
    # read by the kit: the configuration files of the image backups, the chains of the file ones
    assert ev.exercised.get("IMG-CONFIG") and ev.exercised.get("CMT-BACKUP-CONTENT")
    assert ev.exercised.get("BK-INCR-SINCE-LAST") and "IMG-CONFIG" not in ev.not_applicable
    assert ev.content.startswith("read by the kit from what the product wrote")
    assert ev.declaration["backup_root"] == "(the adapter's backup_root attribute)"


def test_right_digests_over_a_wrong_written_file_are_rejected() -> None:
    """The toy reports every digest right, but one file it wrote holds other bytes."""
    with pytest.raises(ConformanceViolation) as info:
        run(toy(**WRITES, writes_wrong_file=True), profile="quick", seed=3, scenarios=["file-backup-series"],
            explore=False, out=io.StringIO())
    assert info.value.rule_id == "CMT-BACKUP-CONTENT" and "other content" in info.value.explanation
    # the same bug, with nothing declared, is invisible: the kit had only the reported digests
    result = run(toy(writes_wrong_file=True), profile="quick", seed=3, scenarios=["file-backup-series"],
                 explore=False, out=io.StringIO())
    assert result.ok


def test_an_exported_vmx_that_lost_a_setting_is_rejected() -> None:
    with pytest.raises(ConformanceViolation) as info:
        run(toy(**WRITES, writes_vmx_without_memsize=True), profile="quick", seed=3, scenarios=["image-backup"],
            explore=False, out=io.StringIO())
    assert info.value.rule_id == "IMG-CONFIG" and "as the product wrote it" in info.value.explanation
    assert "lacks memsize" in info.value.explanation


def test_a_product_that_declares_neither_is_told_what_was_not_read() -> None:
    result = run(toy(), profile="quick", seed=3, scenarios=["image-backup"], explore=False, out=io.StringIO())
    assert result.evidence is not None
    assert result.evidence.content.startswith("NOT read from what the product wrote")
    assert "IMG-CONFIG not at all" in result.evidence.content
    assert "declared neither a restore" in result.evidence.not_applicable["IMG-CONFIG"]
    assert result.evidence.to_dict()["content"] == result.evidence.content
