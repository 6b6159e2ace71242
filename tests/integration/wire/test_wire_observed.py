"""Route 2 looks at the proxy's folder itself (issue 11, "judge what happened"): a command
product declares its mount root (``Capabilities.mount_root``, ``{workdir}/mnt``), and the kit
looks at it around and during each command, between two reads of the host's trace
(``_observed.judge_looks``), whatever the product's ``mount`` / ``unmount`` events say."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from vcbsim.conformance import Capabilities, CommandAdapter
from vcbsim.conformance._wire import certify_command

HERE = Path(__file__).parent
DECLARED = Capabilities(image_levels=("full",), file_levels=(), mount_root="{workdir}/mnt")


def _product(behaviour: str, caps: Capabilities | None = DECLARED) -> CommandAdapter:
    return CommandAdapter([sys.executable, str(HERE / "pyvmomi_proxy.py"), behaviour], name=f"pyvmomi-{behaviour}",
                          timeout=60, capabilities=caps)


def test_an_unmount_announced_while_the_folder_stays_is_rejected_wf_3a() -> None:
    (case,) = certify_command(_product("unmount-leaves-folder"), scenarios=["image-backup"], out=io.StringIO()).cases
    assert case.outcome == "fail" and case.rules[0] == "WF-3a", case.message
    assert "mnt/win2003-sql-fullVM was still on the proxy after the host removed" in case.message
    # the same product without the declaration: its announcements are all the kit has, and they lie
    (blind,) = certify_command(_product("unmount-leaves-folder", Capabilities(image_levels=("full",), file_levels=())),
                               scenarios=["image-backup"], out=io.StringIO()).cases
    assert blind.outcome == "pass", blind.message


def test_a_product_that_never_announces_its_mounts_passes_judged_from_its_folder() -> None:
    result = certify_command(_product("quiet-mounts"), scenarios=["image-backup"], out=io.StringIO())
    (case,) = result.cases
    assert case.outcome == "pass", case.message
    # occasions from the folder: one export per job (two VMs), its removal before the commit
    assert case.exercised["WF-1f"] >= 2 and case.exercised["WF-3a"] >= 2 and case.exercised["CLN-NO-MOUNT-LEFT"] >= 3


def test_a_correct_product_that_announces_is_judged_on_both() -> None:
    (case,) = certify_command(_product("correct"), scenarios=["image-backup"], out=io.StringIO()).cases
    assert case.outcome == "pass", case.message
    assert case.exercised["WF-1f"] >= 4  # the folder's two and the announced ones


# -- what a command wrote, read by the kit (``Capabilities.backup_root``) -------------------

WRITES = Capabilities(backup_root="{workdir}/backups", mount_root="{workdir}/proxy")


def _writer(*args: str) -> CommandAdapter:
    return CommandAdapter([sys.executable, str(HERE / "reference_writes_tree.py"), *args], name="reference-tree",
                          timeout=120, capabilities=WRITES)


def test_a_command_whose_written_files_are_right_passes_judged_from_them() -> None:
    result = certify_command(_writer("unnamed"), scenarios=["file-backup-series"], out=io.StringIO())
    (case,) = result.cases
    assert case.outcome == "pass", case.message
    assert case.exercised["CMT-BACKUP-CONTENT"] >= 4 and case.exercised["BK-INCR-SINCE-LAST"] >= 1
    assert case.exercised["FILE-JUNCTION"] >= 4  # its mounts, seen under {workdir}/proxy
    assert result.evidence is not None and result.evidence.content.startswith("read by the kit from what the product")


def test_a_command_whose_written_file_is_wrong_under_right_digests_is_rejected() -> None:
    (case,) = certify_command(_writer("tamper"), scenarios=["file-backup-series"], out=io.StringIO()).cases
    assert case.outcome == "fail" and case.rules[0] == "CMT-BACKUP-CONTENT", case.message
    assert "holds other content than the guest had" in case.message


@pytest.mark.slow
def test_route_2_certify_of_the_reference_cli_judged_from_its_folder(tmp_path: Path) -> None:
    """The reference's command line, its mount root declared (``{workdir}/proxy``) and its guest
    account given (the drive letters from guest operations), certifies with the mount rules
    exercised from the folder; its evidence says backup content was judged on what it reports
    (its medium is a catalog and blobs, not the kit's layout)."""
    command = [sys.executable, "-m", "vcbsim", "backup", "--server", "{url}", "--user", "{user}", "--password",
               "{password}", "-a", "name:{vm}", "-t", "{mode}", "--kind", "{level}", "--state", "{workdir}", "--trace",
               "{trace}", "--no-progress", "--json", "--guest-user", "Administrator", "--guest-password", "vmware"]
    adapter = CommandAdapter(command, name="reference", capabilities=Capabilities(mount_root="{workdir}/proxy"))
    result = certify_command(adapter, kit_profile="certify", report=tmp_path, out=io.StringIO())
    assert not [c for c in result.cases if c.outcome in ("fail", "error", "skip")], [
        (c.name, c.message) for c in result.cases if c.outcome != "pass"]
    assert result.evidence is not None and result.evidence.unexercised == ()
    assert result.evidence.content.startswith("NOT read from what the product wrote")


def test_a_commands_written_image_export_is_read_against_the_hosts_capture() -> None:
    result = certify_command(_writer(), scenarios=["image-backup"], out=io.StringIO())
    (case,) = result.cases
    assert case.outcome == "pass", case.message
    assert case.exercised.get("IMG-CONFIG", 0) >= 2 and case.exercised["CMT-BACKUP-CONTENT"] >= 2
    assert result.evidence is not None and "IMG-CONFIG" not in result.evidence.not_applicable
    (bad,) = certify_command(_writer("tamper"), scenarios=["image-backup"], out=io.StringIO()).cases
    assert bad.outcome == "fail" and bad.rules[0] == "IMG-CONFIG", bad.message
    assert "as the product wrote it" in bad.message and "lacks memsize" in bad.message
