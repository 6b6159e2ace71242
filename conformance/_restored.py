"""What a product's restore gives back, compared with the host as of the backup snapshot.

A product that declares a restore (``Capabilities.restore``) is judged on what its own restore
writes (``Orchestrator.restore(host, vm_name, backup_id, target)``), not on the digests it
reports: the kit reads the restored files itself.

- An image backup restores to a VM directory: ``<vm>.vmx``, one VMDK per disk (readable by
  ``vcbsim.simulator.disk.read_vmdk``: sparse or flat, split or not) and, where the product
  exports them, ``<vm>.vmsd`` / ``<vm>.nvram``. Each disk's data is compared with the disk as of
  the snapshot (CMT-BACKUP-CONTENT, IMG-LEVEL-CONTENT); the configuration files with the host's
  as of the snapshot (IMG-CONFIG, ``compare_vmx``).
- A file-level backup restores to ``<target>/<letter>/<path>`` (``Catalog.restore_files``'s
  layout); the files are compared with the guest as of the snapshot (CMT-BACKUP-CONTENT).

``compare_vmx`` is the rule's definition: the backed-up ``.vmx`` holds every setting of the
host's ``.vmx`` as of the snapshot, with its value, and nothing else, except that a disk's
``<node>.fileName`` may name the exported disk (a VMDK the backup holds) instead of the
snapshot's redo log: VCB's export is a consistent VM whose disks are the exported ones (seed,
"Performing Image-Level Virtual Machine Backups", step 1; spec R57).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["parse_vmx", "compare_vmx", "compare_config_file", "restored_files", "vmx_disk_files"]

_LINE = re.compile(r'^\s*(?P<key>[^=#\s][^=]*?)\s*=\s*"(?P<value>.*)"\s*$')
_FILENAME = re.compile(r"^(?P<node>[a-z]+\d+:\d+)\.filename$", re.IGNORECASE)


def parse_vmx(text: str) -> dict[str, str]:
    """``key = "value"`` lines of a ``.vmx`` / ``.vmsd``; keys are case-insensitive in VMware's
    format, so they are folded; blank and comment lines are ignored, and a malformed line is
    kept as a key of its own (so a rewritten line never compares equal)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            out[f"(unparsed) {line}"] = ""
            continue
        out[m["key"].casefold()] = m["value"]
    return out


def vmx_disk_files(text: str) -> dict[str, str]:
    """``{node: file name}`` of the disks a ``.vmx`` names (``scsi0:1`` -> ``vm_1.vmdk``)."""
    out: dict[str, str] = {}
    for key, value in parse_vmx(text).items():
        m = _FILENAME.match(key)
        if m and value.lower().endswith(".vmdk"):
            out[m["node"].casefold()] = value
    return out


def compare_vmx(at_snapshot: str, backed_up: str, held: set[str]) -> list[str]:
    """What the backed-up ``.vmx`` gets wrong against the host's as of the snapshot (empty: it
    holds the same configuration). ``held``: the file names the backup holds, for the disks'
    ``fileName`` lines."""
    want, got = parse_vmx(at_snapshot), parse_vmx(backed_up)
    problems: list[str] = []
    for key, value in want.items():
        if key not in got:
            problems.append(f"lacks {key} = \"{value}\"")
            continue
        if _FILENAME.match(key) and value.lower().endswith(".vmdk"):
            name = got[key].replace("\\", "/").rsplit("/", 1)[-1]
            if name != value.replace("\\", "/").rsplit("/", 1)[-1] and name not in held:
                problems.append(f"{key} names \"{got[key]}\", a disk the backup does not hold")
            continue
        if got[key] != value:
            problems.append(f"has {key} = \"{got[key]}\" where the VM had \"{value}\"")
    problems += [f"adds {key} = \"{got[key]}\", which the VM did not have" for key in got if key not in want]
    return problems


def compare_config_file(name: str, at_snapshot: str | None, backed_up: str) -> list[str]:
    """A further configuration file (``.vmsd``, ``.nvram``) against the host's: the same
    settings (``key = value`` files) or the same bytes."""
    if at_snapshot is None:
        return [f"holds {name}, which the VM did not have at the snapshot"]
    want, got = parse_vmx(at_snapshot), parse_vmx(backed_up)
    if want and got:
        return [] if want == got else [f"{name} differs from the VM's at the snapshot ({len(set(want.items()) ^ set(got.items()))} settings)"]
    return [] if at_snapshot == backed_up else [f"{name} differs from the VM's at the snapshot"]


def restored_files(target: Path) -> dict[str, str]:
    """``{guest path: sha256}`` of a file-level restore laid out as ``target/<letter>/<path>``."""
    out: dict[str, str] = {}
    if not target.is_dir():
        return out
    for letter_dir in sorted(p for p in target.iterdir() if p.is_dir()):
        letter = letter_dir.name.upper()
        for path in sorted(letter_dir.rglob("*")):
            if path.is_file():
                rel = path.relative_to(letter_dir).as_posix().replace("/", "\\")
                out[f"{letter}:\\{rel}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def find_vmx(target: Path, vm_name: str) -> Path | None:
    """The restored ``.vmx``: ``<vm>.vmx``, else the only ``.vmx`` there."""
    exact = target / f"{vm_name}.vmx"
    if exact.is_file():
        return exact
    found = sorted(target.glob("*.vmx"))
    return found[0] if len(found) == 1 else None


def node_keys(disks: Mapping[str, int], vmx: str) -> dict[int, str]:
    """``{disk key: restored file name}`` from the restored ``.vmx`` (``disks``: node -> key)."""
    files = vmx_disk_files(vmx)
    return {key: files[node] for node, key in disks.items() if node in files}
