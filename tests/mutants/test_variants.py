"""Correct variants: different but valid implementations the kit must pass (issue 11).

Each differs from the plain toy proxy where the seed or the host's era allows a choice: its own
snapshot name on esxi-7.0, changed files selected by content (a byte-identical rewrite left
out) or by metadata (an extra file whose mtime changed kept in), the letterless volume backed
up outside ``letters\\``, a crash-consistent backup announced as one (configured, or after the
VM could not be quiesced), descending mount order, polling for the snapshot, and on API 5.0+
a removal without consolidation followed by ConsolidateVMDisks_Task, mounts that are never
announced (the kit looks at the proxy's folder). ``quick`` runs each
(cheap, every commit); one slow test runs ``certify`` over all of them.
"""

from __future__ import annotations

import io

import pytest
from image_level_mutants import NeverAnnouncesMounts
from toy_proxy import toy

from vcbsim.conformance import run

#: (variant, orchestrator factory, host profile, the rule family whose choice it exercises)
VARIANTS = [
    ("own-snapshot-name-on-7.0", toy(snapshot_name="acme-backup"), "esxi-7.0", "WF"),
    ("selects-changed-files-by-content", toy(select_by_content=True), "esx-3.5u2", "FILE"),
    ("keeps-metadata-changed-files", toy(), "esx-3.5u2", "FILE"),
    ("letterless-volume-outside-letters", toy(letterless_outside_letters=True), "esx-3.5u2", "FILE"),
    ("configured-crash-consistent", toy(crash_consistent=True), "esx-3.5u2", "WF"),
    ("crash-consistent-fallback-announced", toy(crash_consistent_fallback=True), "esx-3.5u2", "WF"),
    ("descending-mount-order", toy(descending_mounts=True), "esx-3.5u2", "FILE"),
    ("polls-for-the-snapshot", toy(poll_for_snapshot=True), "esx-3.5u2", "WF"),
    ("consolidate-disks-on-7.0", toy(relies_on_consolidate_disks=True), "esxi-7.0", "COMMIT"),
    ("linux-file-level-on-7.0", toy(file_level_linux=True), "esxi-7.0", "FILE"),
    # the files an incremental copied only on its trace events: BK-* judged and counted from them
    ("copied-files-only-in-the-trace", toy(copied_only_in_trace=True), "esx-3.5u2", "FILE"),
    # no restore: its backups are written under a backup root, read and judged by the kit there
    ("writes-its-backups-for-the-kit-to-read", toy(writes_backups=True, location_unnamed=True), "esxi-7.0", "COMMIT"),
    # mounts and unmounts as the reference does, announcing none of it: judged from its folder
    ("never-announces-mounts", NeverAnnouncesMounts, "esx-3.5u2", "FILE"),
]


@pytest.mark.parametrize(("name", "factory", "host_profile", "family"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_quick_passes_a_correct_variant(name: str, factory, host_profile: str, family: str) -> None:
    out = io.StringIO()
    result = run(factory, profile="quick", seed=3, host_profile=host_profile, out=out)
    assert result.ok, out.getvalue()[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "factory", "host_profile", "family"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_certify_passes_a_correct_variant(name: str, factory, host_profile: str, family: str) -> None:
    out = io.StringIO()
    result = run(factory, profile="certify", seed=5, host_profile=host_profile, out=out)
    assert result.ok, out.getvalue()[-3000:]


def test_disks_the_kit_cannot_read_make_the_unsnapshotted_rules_not_applicable_not_unexercised() -> None:
    """The toy reports no disks and declares neither a restore nor a backup root: its image backup
    of the VM with disks no snapshot covers cannot be judged, and the evidence says so with the
    reason (certify once failed every toy variant on 'never exercised' here)."""
    out = io.StringIO()
    result = run(toy(), profile="quick", seed=3, host_profile="esx-3.5u2", out=out)
    assert result.ok, out.getvalue()[-3000:]
    assert result.evidence is not None
    for rid in ("IMG-NO-UNSNAPSHOTTED", "IMG-SAYS-UNSNAPSHOTTED"):
        assert rid not in result.evidence.unexercised
        assert "no disks to read" in result.evidence.not_applicable[rid]
