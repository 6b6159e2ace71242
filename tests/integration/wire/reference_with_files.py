"""The reference proxy's CLI (``vcbsim backup --server``) wrapped to report what the backup holds:
it runs the job, then prints ``{"ok": ..., "files": {guest path: sha256}, "copied": {...}}`` (what
a restore of the backup gives, and what the job itself copied) read from the backup catalog, as a product that knows its own medium would. ``tamper`` reports one file with
a wrong digest (a backup that does not hold what the guest had at the snapshot).

    python reference_with_files.py [tamper]      (the kit's VCBSIM_* environment)
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path


def main() -> int:
    from vcbsim.reference import Catalog
    from vcbsim.reference._cli import main as cli

    env = os.environ
    state = Path(env["VCBSIM_WORKDIR"])
    argv = ["backup", "--server", env["VCBSIM_URL"], "--user", env["VCBSIM_USER"], "--password",
            env["VCBSIM_PASSWORD"], "-a", f"name:{env['VCBSIM_VM']}", "-t", env["VCBSIM_MODE"], "--kind",
            env["VCBSIM_LEVEL"], "--state", str(state), "--trace", env["VCBSIM_TRACE"], "--no-progress", "--json"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(argv)
    doc = json.loads(out.getvalue() or "null")
    if code != 0 or not isinstance(doc, list):
        print(json.dumps({"ok": False, "error": out.getvalue()[-400:]}))
        return code or 1
    files: dict[str, str] = {}
    copied: dict[str, str] = {}
    if env["VCBSIM_MODE"] == "file":
        with Catalog(state / "medium") as catalog:
            entries = catalog.entries(int(doc[0]["backup_id"]))
            files = {e.path: e.sha256 for e in entries.values() if not e.is_dir and e.sha256}
            copied = {e.path: e.sha256 for e in entries.values() if not e.is_dir and e.sha256 and e.copied}
        if sys.argv[1:] == ["tamper"] and files:
            first = sorted(files)[0]
            files[first] = "0" * 64
    print(json.dumps({"ok": True, "files": files, "copied": copied} if files else {"ok": True}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
