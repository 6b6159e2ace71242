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

**What a product wrote** (no restore declared): a product may instead declare where its backups
land, a *backup root* (``Capabilities.backup_root``, ``{workdir}`` allowed over the wire, or an
adapter attribute ``backup_root``), and the kit reads each job's backup there itself. A job's
backup is one folder under the root: the one its result names (``JobResult.location``, absolute
or relative to the root; or ``location`` on the job's or its copy's ``op.ok``), else the one
folder that appeared under the root while the job ran (``locate``). Its layout is the restore
layout above, holding what *this job* stored:

- an image backup (``fullvm``, level ``full``): the VM's export as VCB's ``vcbMounter -t
  fullvm`` writes it, ``<vm>.vmx``, one VMDK per disk named by the ``.vmx``'s ``fileName``
  lines (read by ``disk_digest``: the project's VMDK reader, else ``qemu-img``, which also
  follows a redo log to its parent beside it), and ``<vm>.vmsd`` / ``<vm>.nvram`` where kept: judged as a restore is (data and
  configuration, IMG-CONFIG; over the wire against what the host captured the moment the
  snapshot existed, ``POST /vcbsim-api/captures``). An incremental or differential image backup is not read from
  its folder (``read_vmdk`` does not keep a grain of zeros apart from one never written, so an
  area the increment zeroed cannot be told from an unchanged one): it is judged on the
  ``disks`` the product reports, and the evidence says so;
- a file-level backup: ``<letter>/<path>`` for every file this job copied. The kit restores
  the backup as the seed's chain gives it (``WrittenChain``): a full alone; a differential over
  the last full; an incremental over the last full or incremental (and so on back to its
  full), later copies over earlier ones. The union is the backup's content
  (CMT-BACKUP-CONTENT, against the guest as of the snapshot; a file the chain holds from an
  earlier backup and the guest has deleted since is left out, since the seed's levels record
  no deletions), and the job's own folder is what it copied (BK-INCR-SINCE-LAST,
  BK-DIFF-SINCE-FULL), whatever ``files`` and ``copied`` the product reports.

A product that declares neither a restore nor a backup root is judged on the digests it
reports only, and the run's evidence says which rules that leaves unread
(``_evidence.content_source``).

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
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from vcbsim.simulator import Event

__all__ = ["parse_vmx", "compare_vmx", "compare_config_file", "restored_files", "vmx_disk_files", "WrittenChain",
           "backup_entries", "locate", "disk_digest", "read_image", "config_violation"]

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


class _RawImage:
    """A raw disk image file as a ``BlockReader`` (``size``, ``read``), for ``image_digest``."""

    def __init__(self, path: Path) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by the caller (disk_digest)
        self.size = path.stat().st_size

    def read(self, offset: int, length: int) -> bytes:
        self._fh.seek(offset)
        return self._fh.read(length)

    def close(self) -> None:
        self._fh.close()


def disk_digest(path: Path) -> str:
    """``image_digest`` of the disk a VMDK holds, read by the kit itself: the project's reader
    (``vcbsim.simulator.disk.read_vmdk``: sparse, split sparse, flat, stream-optimized, no
    parent), else, for what it refuses (a redo log with its parent beside it, an extent type it
    does not read), ``qemu-img convert -O raw`` when ``qemu-img`` is installed; a disk neither
    reads digests as ``(unreadable: why)``, which equals no snapshot's."""
    from vcbsim.simulator import InvalidInputError
    from vcbsim.simulator.disk import read_vmdk

    from ._adapters import image_digest

    try:
        return image_digest(read_vmdk(path))
    except InvalidInputError as exc:
        why = str(exc).splitlines()[0]
    qemu = shutil.which("qemu-img")
    if qemu is None:
        return f"(unreadable: {why}; qemu-img is not installed to try it)"
    with tempfile.TemporaryDirectory(prefix="vcbsim-disk-") as tmp:
        raw = Path(tmp) / "disk.raw"
        done = subprocess.run([qemu, "convert", "-O", "raw", str(path), str(raw)],  # noqa: S603
                              capture_output=True, text=True, check=False, timeout=600)
        if done.returncode != 0:
            return f"(unreadable: {why}; qemu-img: {(done.stderr or done.stdout).strip()[:200]})"
        image = _RawImage(raw)
        try:
            return image_digest(image)
        finally:
            image.close()


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


def backup_entries(root: Path) -> set[str]:
    """The folders directly under a backup root now (names starting with ``.`` are the
    product's own bookkeeping)."""
    try:
        return {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    except OSError:
        return set()


def locate(root: Path, named: str | None, events: Sequence[Event], moref: str | None,
           before: set[str]) -> Path | str:
    """The folder of one job's backup under ``root``, or why the kit cannot find it: the one
    the product names (``named``: ``JobResult.location``; else ``location`` on one of its
    ``op.ok`` events for the VM among ``events``), else the one folder that appeared under the
    root while the job ran (``before``: the folders there when it began)."""
    if named is None:
        named = next((str(e.details["location"]) for e in reversed(events) if e.kind == "op.ok"
                      and e.actor == "proxy" and e.vm == moref and e.details.get("location")), None)
    if named is not None:
        path = Path(named) if Path(named).is_absolute() else root / named
        try:
            inside = path.resolve().is_relative_to(root.resolve())
        except OSError:
            inside = False
        if not inside:
            return f"it names {named} as its backup's location, which is not under its declared backup root {root}"
        if not path.is_dir():
            return f"it names {path} as its backup's location, but there is no such folder"
        return path
    new = sorted(backup_entries(root) - before)
    if len(new) == 1:
        return root / new[0]
    if not new:
        return (f"no folder appeared under its declared backup root {root} during the job, and it named none "
                "(JobResult.location, or location on its op.ok)")
    return (f"{len(new)} folders appeared under its declared backup root {root} during the job ({', '.join(new[:3])}), "
            "and it named none of them (JobResult.location, or location on its op.ok)")


class WrittenChain:
    """File-level backups as a product wrote them, per VM, restored through the seed's chains
    (module docstring): each usable job's folder laid over its base's restored set."""

    def __init__(self) -> None:
        self._chains: dict[str, list[tuple[str, dict[str, tuple[str, str]]]]] = {}

    def add(self, vm: str, level: str, own: Mapping[str, str], norm: Callable[[str], str],
            alive: Callable[[str], bool]) -> dict[str, str]:
        """Lay job's own files (``own``: guest path -> sha256) over its base's restored set and
        return the union (guest path -> sha256). ``alive(normalised path)``: the file exists in
        the guest as of this job's snapshot (a file the chain holds from earlier and the guest
        deleted since is left out)."""
        entries = self._chains.setdefault(vm, [])
        bases = ("full",) if level == "differential" else ("full", "incremental")
        base = None if level == "full" else next((u for lv, u in reversed(entries) if lv in bases), None)
        union = {} if base is None else {k: v for k, v in base.items() if alive(k)}
        union.update({norm(p): (p, h) for p, h in own.items()})
        entries.append((level if base is not None else "full", union))
        return {p: h for p, h in union.values()}


def read_image(target: Path, vm_name: str, config: Mapping[str, str], nodes: Mapping[str, int]
               ) -> tuple[list[str], dict[int, str]]:
    """An image backup restored or written to ``target``, read by the kit: what its configuration
    files get wrong against the VM's as of the snapshot (``config``: ``.vmx``, ``.vmsd``; empty:
    all is well, IMG-CONFIG) and the digest of each disk (``nodes``: ``scsi0:0`` -> disk key;
    ``(missing)`` for a disk the ``.vmx`` names no file of, or whose file is not there)."""
    vmx_path = find_vmx(target, vm_name)
    held = {p.name for p in target.iterdir()} if target.is_dir() else set()
    problems = ["holds no .vmx"] if vmx_path is None else []
    vmx = vmx_path.read_text(encoding="utf-8", errors="replace") if vmx_path is not None else ""
    if vmx_path is not None and ".vmx" in config:
        problems += compare_vmx(config[".vmx"], vmx, held)
    for suffix in (".vmsd", ".nvram"):
        extra = target / f"{vm_name}{suffix}"
        if extra.is_file():
            problems += compare_config_file(extra.name, config.get(suffix),
                                            extra.read_text(encoding="utf-8", errors="replace"))
    out: dict[int, str] = {}
    for key, name in node_keys(nodes, vmx).items():
        path = target / name.replace("\\", "/").rsplit("/", 1)[-1]
        out[key] = disk_digest(path) if path.is_file() else "(missing)"
    for key in nodes.values():
        out.setdefault(key, "(missing)")
    return problems, out


def config_violation(vm: str, how: str, snap: Event, problems: Sequence[str]) -> str:
    """The IMG-CONFIG sentence for ``problems`` (``read_image``)."""
    return (f"the image backup of {vm}, {how}, does not hold the VM's configuration as of the snapshot "
            f"(#{snap.seq}): the .vmx " + "; ".join(problems[:4])
            + (f" (and {len(problems) - 4} more)" if len(problems) > 4 else "")
            + "; an image backup restores to the VM as it was, its disks pointing at the backed-up ones")
