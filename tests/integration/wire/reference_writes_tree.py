"""The reference proxy's CLI (``vcbsim backup --server ... --json``) as a product that also writes
each backup in the kit's layout (``conformance/_restored.py``): after a file-level job, the files
it copied are written from its medium (the catalog's blobs) to ``$VCBSIM_WORKDIR/backups/
<vm>-<backup id>/<letter>/<path>``; after an image job, the VM's export (``Catalog.
restore_image_files``: the ``.vmx`` and VMDKs as VCB moved them). The JSON names that folder
(``location``; the declaration's ``backup_root`` is ``{workdir}/backups``). ``tamper`` writes
one copied file with other bytes, or drops ``memsize`` from the exported ``.vmx``, while the
JSON still reports the right digests: only a kit that reads what was written sees it.

    python reference_writes_tree.py [tamper] [unnamed]      (the kit's VCBSIM_* environment)

``unnamed``: print no ``location`` (the kit takes the folder that appeared).
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
    work = Path(env["VCBSIM_WORKDIR"])
    argv = ["backup", "--server", env["VCBSIM_URL"], "--user", env["VCBSIM_USER"], "--password",
            env["VCBSIM_PASSWORD"], "-a", f"name:{env['VCBSIM_VM']}", "-t", env["VCBSIM_MODE"], "--kind",
            env["VCBSIM_LEVEL"], "--state", str(work), "--trace", env["VCBSIM_TRACE"], "--no-progress", "--json",
            "--guest-user", "Administrator", "--guest-password", "vmware"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli(argv)
    docs = json.loads(out.getvalue() or "null")
    doc = docs[0] if isinstance(docs, list) and len(docs) == 1 else None
    if doc is not None and doc.get("ok") and env["VCBSIM_MODE"] == "fullvm" and doc.get("backup_id") is not None:
        folder = work / "backups" / f"{env['VCBSIM_VM']}-{doc['backup_id']}"
        cat = Catalog(work / "medium")
        try:
            cat.restore_image_files(int(doc["backup_id"]), folder)
        finally:
            cat.close()
        if "tamper" in sys.argv[1:]:
            for vmx in folder.glob("*.vmx"):
                lines = vmx.read_text(encoding="utf-8").splitlines(keepends=True)
                vmx.write_text("".join(ln for ln in lines if not ln.lower().startswith("memsize")), encoding="utf-8")
        if "unnamed" not in sys.argv[1:]:
            doc["location"] = folder.name
    elif doc is not None and doc.get("usable") and doc.get("copied") is not None and doc.get("backup_id") is not None:
        folder = work / "backups" / f"{env['VCBSIM_VM']}-{doc['backup_id']}"
        cat = Catalog(work / "medium")
        try:
            for i, (path, digest) in enumerate(sorted(doc["copied"].items())):
                data = cat.store.path(digest).read_bytes()
                if "tamper" in sys.argv[1:] and i == 0:
                    data += b" (torn write)"
                dest = folder / path[0] / path[3:].replace("\\", "/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
            folder.mkdir(parents=True, exist_ok=True)  # an incremental that copied nothing
        finally:
            cat.close()
        if "unnamed" not in sys.argv[1:]:
            doc["location"] = folder.name
    print(json.dumps(docs))
    return code


if __name__ == "__main__":
    sys.exit(main())
