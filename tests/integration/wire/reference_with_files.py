"""The reference proxy's CLI (``vcbsim backup --server ... --json``), which prints what the
backup holds itself (``ok``, ``usable``, ``files``, ``copied``), optionally tampered with:
``tamper`` reports one file with a wrong digest (a backup that does not hold what the guest had
at the snapshot), so the kit is shown to judge the content a product reports.

    python reference_with_files.py [tamper]      (the kit's VCBSIM_* environment)
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys


def main() -> int:
    from vcbsim.reference._cli import main as cli

    env = os.environ
    argv = ["backup", "--server", env["VCBSIM_URL"], "--user", env["VCBSIM_USER"], "--password",
            env["VCBSIM_PASSWORD"], "-a", f"name:{env['VCBSIM_VM']}", "-t", env["VCBSIM_MODE"], "--kind",
            env["VCBSIM_LEVEL"], "--state", env["VCBSIM_WORKDIR"], "--trace", env["VCBSIM_TRACE"], "--no-progress",
            "--json"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(argv)
    docs = json.loads(out.getvalue() or "null")
    if sys.argv[1:] == ["tamper"] and isinstance(docs, list) and docs and docs[0].get("files"):
        files = docs[0]["files"]
        files[sorted(files)[0]] = "0" * 64
    print(json.dumps(docs))
    return code


if __name__ == "__main__":
    sys.exit(main())
