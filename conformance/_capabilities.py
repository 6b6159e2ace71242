"""What a product declares it supports, and what the kit may therefore ask of it.

A backup product is certified on what it claims, no more and no less: the kit asks only for
jobs within the declaration, judges every rule those jobs can exercise, and fails a run in
which a declared capability never worked (``EV-DECLARED-WORKS``). The declaration is printed
in the results bundle (``results.json`` ``evidence.declaration``), so a reader knows what the
certificate covers.

An adapter declares with an attribute ``capabilities`` (a ``Capabilities`` or a mapping of its
fields; ``CommandAdapter(..., capabilities=...)``, ``vcbsim conform --capabilities FILE``). An
adapter that declares nothing is taken as the kit always took it: image-level ``full`` backups
(plus the levels of its older ``image_levels`` attribute) and file-level backups of every
level, of Windows and Linux guests, application-consistent.

The fields mirror the choices the seed leaves to a product (``docs/seed/vcb-workflow.txt``,
"Types of backups"): image-level and/or file-level, full / differential / incremental, the
transport that moves the data (``folder``: datastore files, ``nfc``: an export lease,
``hotadd``: disks attached to the proxy VM; VCB's ``nbd``/``nbdssl`` are NFC, ``cos`` and ``file``
read the files; the ``TR-*`` rules apply to a declared ``nfc`` or ``hotadd``), the guest families, the snapshot name (spec R59: ``_VCB-BACKUP_`` by VCB's
convention; a product of the 7.0 era may name its own), and the consistency it claims:
``application`` or ``filesystem`` (quiesced snapshots, seed step 1b) or ``crash`` (no
quiescing: the quiescing and script rules are then not applicable, and say so).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import PurePath
from typing import Any

from ._errors import InvalidDefinition

__all__ = ["Capabilities", "capabilities_of", "MODES", "LEVELS", "FAMILIES", "CONSISTENCY", "TRANSPORTS"]

MODES: tuple[str, ...] = ("fullvm", "file")
LEVELS: tuple[str, ...] = ("full", "differential", "incremental")
FAMILIES: tuple[str, ...] = ("windows", "linux")
CONSISTENCY: tuple[str, ...] = ("application", "filesystem", "crash")
#: the transports (seed: "SAN, hot-add or LAN (NBD)"): the simulator's three and VCB's names
TRANSPORTS: tuple[str, ...] = ("folder", "nfc", "hotadd", "san", "nbd", "nbdssl", "cos", "file")
VCB_SNAPSHOT = "_VCB-BACKUP_"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """A product's declaration. An empty ``image_levels`` means no image-level backups, an
    empty ``file_levels`` no file-level backups; at least one must be non-empty, and a
    non-empty one holds ``full`` (every chain starts with one)."""

    image_levels: tuple[str, ...] = ("full",)
    file_levels: tuple[str, ...] = LEVELS
    guest_families: tuple[str, ...] = FAMILIES
    transports: tuple[str, ...] = ("folder",)
    snapshot_name: str = VCB_SNAPSHOT
    consistency: str = "application"
    #: the product restores what it backed up (``Orchestrator.restore``); the kit then judges
    #: the restored data instead of the digests the product reports
    restore: bool = False
    #: over the wire: the command honours ``VCBSIM_PROXY_FAULTS`` (faults of its own steps)
    proxy_faults: bool = False
    #: the product restores over the endpoint: whole VMs (``RegisterVM_Task``/``CreateVM_Task``
    #: of uploaded disks) and files into a running guest (guest operations); the RESTORE rules
    #: apply (``conformance/_check_restore.py``)
    wire_restore: bool = False
    #: the folder on this machine where the product mounts and exports (``_observed``: the kit
    #: looks at it); over the wire ``{workdir}`` is the case's work folder. In process an
    #: adapter's ``mount_root`` attribute says the same. ``""``: not declared
    mount_root: str = ""
    #: the folder on this machine where the product writes its backups, in the layout
    #: ``_restored`` documents (``{workdir}`` allowed over the wire; in process an adapter's
    #: ``backup_root`` attribute says the same): the kit reads what each job wrote there instead
    #: of the digests the product reports. ``""``: not declared
    backup_root: str = ""

    def __post_init__(self) -> None:
        for name, allowed in (("image_levels", LEVELS), ("file_levels", LEVELS), ("guest_families", FAMILIES),
                              ("transports", TRANSPORTS)):
            value = getattr(self, name)
            if isinstance(value, str) or not all(v in allowed for v in value):
                msg = f"Capabilities.{name}"
                raise InvalidDefinition(msg, expected="a list of " + ", ".join(map(repr, allowed)), got=value)
            object.__setattr__(self, name, tuple(dict.fromkeys(value)))
        for name in ("image_levels", "file_levels"):
            value = getattr(self, name)
            if value and "full" not in value:
                msg = f"Capabilities.{name}"
                raise InvalidDefinition(msg, expected="'full' among the levels (a chain starts with a full backup)",
                                        got=value, hint='for example ("full", "incremental")')
        if not self.image_levels and not self.file_levels:
            msg = "Capabilities"
            raise InvalidDefinition(msg, expected="image-level or file-level support (a non-empty image_levels or "
                                    "file_levels)", got="neither")
        if not self.guest_families:
            msg = "Capabilities.guest_families"
            raise InvalidDefinition(msg, expected="at least one of " + ", ".join(FAMILIES), got=())
        if self.consistency not in CONSISTENCY:
            msg = "Capabilities.consistency"
            raise InvalidDefinition(msg, expected="one of " + ", ".join(CONSISTENCY), got=self.consistency)
        for name in ("mount_root", "backup_root"):
            value = getattr(self, name)
            if not isinstance(value, str) or (value and "{" in value.replace("{workdir}", "")):
                msg = f"Capabilities.{name}"
                raise InvalidDefinition(msg, expected="a folder path (over the wire {workdir} may stand for the "
                                        "case's work folder)", got=value, hint='for example "{workdir}/mnt"')
        if self.mount_root and self.backup_root and not self.mount_root.startswith("(") and (
                PurePath(self.backup_root) == PurePath(self.mount_root)
                or PurePath(self.mount_root) in PurePath(self.backup_root).parents):
            msg = "Capabilities.backup_root"
            raise InvalidDefinition(msg, expected=f"a folder outside the mount root {self.mount_root!r} (the kit "
                                    "reads every folder under a mount root as a mount)", got=self.backup_root,
                                    hint='for example mount_root "{workdir}/mnt", backup_root "{workdir}/backups"')
        if not isinstance(self.snapshot_name, str) or not self.snapshot_name:
            msg = "Capabilities.snapshot_name"
            raise InvalidDefinition(msg, expected="a non-empty snapshot name", got=self.snapshot_name)

    # -- what the kit may ask -----------------------------------------------------------
    @property
    def image(self) -> bool:
        return bool(self.image_levels)

    @property
    def file(self) -> bool:
        return bool(self.file_levels)

    @property
    def quiesces(self) -> bool:
        """Whether the product asks for quiesced snapshots (``application`` / ``filesystem``)."""
        return self.consistency != "crash"

    def levels(self, mode: str) -> tuple[str, ...]:
        return self.image_levels if mode == "fullvm" else self.file_levels

    def ask(self, mode: str, level: str, family: str) -> tuple[str | None, str]:
        """The level at which a job of ``mode``/``level`` on a ``family`` guest is asked, or
        ``(None, reason)`` when the declaration excludes it. A level the product does not
        declare is asked as ``full`` (as a product without it would run that job); a mode or
        a guest family it does not declare is not asked at all. A file-level job of a Linux
        guest is asked of every product with file-level support: refusing it is the rule
        (FILE-WINDOWS-ONLY)."""
        if family not in self.guest_families:
            return None, f"the product declared no support for {family} guests"
        levels = self.levels(mode)
        if not levels:
            what = "image-level" if mode == "fullvm" else "file-level"
            return None, f"the product declared no {what} support"
        return (level if level in levels else "full"), ""

    def clean_mode(self, family: str) -> str | None:
        """The mode of the final clean run of a ``family`` guest: image-level when declared
        (it covers every guest), else file-level of a Windows guest; ``None``: no job at all."""
        if family not in self.guest_families:
            return None
        if self.image:
            return "fullvm"
        return "file" if self.file and family == "windows" else None

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_mapping(cls, doc: Mapping[str, Any]) -> Capabilities:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(doc) - known)
        if unknown:
            msg = "capabilities"
            raise InvalidDefinition(msg, expected="fields from " + ", ".join(sorted(known)), got=unknown)
        args: dict[str, Any] = {k: tuple(v) if isinstance(v, list | tuple) else v for k, v in doc.items()}
        return cls(**args)


def capabilities_of(adapter: Any) -> Capabilities:
    """The declaration of ``adapter``: its ``capabilities`` attribute (a ``Capabilities`` or a
    mapping), else the legacy ``image_levels`` attribute with everything else as the kit
    always asked (see the module docstring)."""
    declared = getattr(adapter, "capabilities", None)
    if isinstance(declared, Capabilities):
        return _with_folders(declared, adapter)
    if isinstance(declared, Mapping):
        return _with_folders(Capabilities.from_mapping(declared), adapter)
    if declared is not None:
        msg = f"{getattr(adapter, 'name', type(adapter).__name__)}.capabilities"
        raise InvalidDefinition(msg, expected="a vcbsim.conformance.Capabilities or a mapping of its fields",
                                got=type(declared).__name__)
    from ._adapters import image_levels

    return _with_folders(Capabilities(image_levels=image_levels(adapter)), adapter)


#: what the declaration says of a folder an adapter gives as an attribute (a path of its own,
#: different in every instance: the kit reads the attribute, the bundle says it was given)
ATTRIBUTE_FOLDER = "(the adapter's {} attribute)"


def _with_folders(caps: Capabilities, adapter: Any) -> Capabilities:
    """The declaration with the ``mount_root`` / ``backup_root`` an in-process adapter gives as
    attributes (``ReferenceOrchestrator.mount_root``), where the declaration names none."""
    from dataclasses import replace

    given: dict[str, Any] = {name: ATTRIBUTE_FOLDER.format(name) for name in ("mount_root", "backup_root")
                             if getattr(adapter, name, None) and not getattr(caps, name)}
    return replace(caps, **given) if given else caps
