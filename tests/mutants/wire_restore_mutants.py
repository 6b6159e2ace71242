"""Restore mutants over the wire (issue 16): the reference CLI's restore (``vcbsim restore
--server``) wrong in one plausible way, run as the product's restore command by route 2
(``vcbsim conform --command ... --restore-command ...``).

Run as a program, ``python wire_restore_mutants.py MUTANT ARGS...`` patches one step of
``reference/_wirerestore.py`` (the same patches as ``restore_mutants.py``, which the in-process
scenario rejects) and runs ``vcbsim restore ARGS...``; ``wire_restore_adapter(name)`` is the
``CommandAdapter`` of the reference CLI whose restore commands are that program. The kit's
``wire/wire-restore`` case rejects each, naming its rule (``test_wire_restore_mutants.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
PY = [sys.executable, "-m", "vcbsim"]
#: what every run of the reference CLI is given over the wire
COMMON = ["--server", "{url}", "--user", "{user}", "--password", "{password}", "--state", "{workdir}",
          "--trace", "{trace}", "--no-progress", "--json"]
#: the reference's backup command (it prints its backup id and what a file backup holds)
BACKUP = [*PY, "backup", *COMMON, "-a", "name:{vm}", "-t", "{mode}", "--kind", "{level}"]
#: the arguments of ``vcbsim restore`` per restore kind (``CommandAdapter.restore``)
RESTORE_ARGS: dict[str, list[str]] = {
    "new": ["restore", *COMMON, "--backup", "{backup_id}", "--vm", "--name", "{name}", "--datastore",
            "{datastore}", "--set={set}"],
    "over": ["restore", *COMMON, "--backup", "{backup_id}", "--vm", "--over", "-a", "name:{vm}"],
    "files": ["restore", *COMMON, "--backup", "{backup_id}", "--path", "{path}", "--into-guest", "--guest-user",
              "{guest_user}", "--guest-password", "{guest_password}"],
}
#: the reference's own restore commands
RESTORE = {kind: [*PY, *args] for kind, args in RESTORE_ARGS.items()}


def _mutants() -> dict[str, tuple[Any, str]]:
    from restore_mutants import RESTORE_MUTANTS

    # the in-process "restores-the-live-disk" reads the kit's own host: not a command's
    return {n: m for n, m in RESTORE_MUTANTS.items() if n != "restores-the-live-disk"}


#: a restore command wrong only when a restore call fails (``test_wire_restore_mutants.py``
#: arms the fault; the wire route has no exploration to arm it)
BEHIND_A_FAULT = "leaves-its-placeholder-after-a-failed-upload"


#: mutant -> the rule it breaks
WIRE_RESTORE_MUTANTS: Mapping[str, str] = {
    "ignores-the-asked-settings": "RST-VMX-KEPT",
    "overwrites-a-running-vm": "RST-NO-RUNNING-OVERWRITE",
    "leaves-a-half-made-vm": "RST-NO-HALF-VM",
    "file-restore-hides-overwrites": "RST-FILES-EXACT",
}


def wire_restore_adapter(name: str | None = None, *, declared: bool = True) -> Any:
    """The reference CLI as a command product with restore commands (mutant ``name``'s, or the
    reference's own with ``None``); ``declared``: it declares ``wire_restore``."""
    from vcbsim.conformance import Capabilities, CommandAdapter

    restore = RESTORE if name is None else {k: [sys.executable, str(Path(__file__)), name, *a]
                                            for k, a in RESTORE_ARGS.items()}
    return CommandAdapter(BACKUP, name="reference" if name is None else f"reference+{name}", timeout=120,
                          restore=restore, capabilities=Capabilities(wire_restore=declared))


def main(argv: list[str]) -> int:
    """``MUTANT ARGS...``: ``vcbsim ARGS...`` with the mutant's patches."""
    import contextlib
    from unittest import mock

    from vcbsim.reference import _wirerestore
    from vcbsim.reference._cli import main as cli

    patches = _mutants()[argv[0]][0]
    with contextlib.ExitStack() as stack:
        for attr, fn in patches(None).items():
            stack.enter_context(mock.patch.object(_wirerestore, attr, fn))
        return cli(argv[1:])


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))  # restore_mutants, beside this file (PYTHONSAFEPATH leaves it out)
    raise SystemExit(main(sys.argv[1:]))
