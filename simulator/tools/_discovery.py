r"""Where VMware Tools finds quiescing scripts, and in which order it runs them.

Three layouts (seed Table 2-3, KB 1006671, open-vm-tools ``1da06b950``):

- ``"legacy"`` (ESX 3.5 U1 and earlier): only the single legacy scripts,
  ``C:\Windows\pre-freeze-script.bat`` / ``C:\Windows\post-thaw-script.bat`` on Windows and
  ``/usr/sbin/pre-freeze-script`` / ``/usr/sbin/post-thaw-script`` elsewhere (R20).
- ``"scripts.d"`` (Tools that run the legacy pair themselves, open-vm-tools ``1da06b950``,
  2010 on): the legacy scripts **plus** every regular file in
  ``<Tools install path>\backupScripts.d`` (R19): by default
  ``C:\Program Files\VMware\VMware Tools\backupScripts.d`` on Windows and
  ``/etc/vmware-tools/backupScripts.d`` on Linux.
- ``"directory"`` (a VSS guest on ESX 3.5 U2, where hostd still ran the legacy pair on its
  SYNC-driver path only): the directory alone, no legacy slot.

Which layout a quiesce uses is ``VMwareTools.script_layout(profile, provider)``.

List construction (R21), done once when the operation starts (R22):

1. If either legacy file exists, index 0 is the *legacy slot*: its freeze path is the legacy
   pre-freeze script, its thaw/freezeFail path the legacy post-thaw script.
2. Then the regular files of the directory (no recursion; subdirectories ignored),
   sorted by plain byte-wise comparison (``strcmp``): ``10-a.bat`` < ``2-b.bat`` < ``B.bat`` <
   ``a.bat``.

Order (R23): freeze runs the list ascending with ``freeze``; thaw and freezeFail run it
descending with ``thaw`` / ``freezeFail``. So the legacy pre-freeze runs first, the legacy
post-thaw last, and each entry is re-checked as a regular file just before it runs; a missing
one is skipped silently (R22).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .._errors import InvalidInputError
from ._files import GuestFiles, is_file, join

__all__ = [
    "ScriptEntry",
    "ScriptPlan",
    "discover_scripts",
    "legacy_paths",
    "default_scripts_dir",
    "WINDOWS_INSTALL_PATH",
    "LINUX_SCRIPTS_DIR",
    "LAYOUTS",
]

#: ``discover_scripts`` layouts: legacy pair only; legacy slot plus directory; directory only.
LAYOUTS: tuple[str, ...] = ("legacy", "scripts.d", "directory")

Phase = Literal["freeze", "thaw", "freezeFail"]

WINDOWS_INSTALL_PATH = r"C:\Program Files\VMware\VMware Tools"
LINUX_SCRIPTS_DIR = "/etc/vmware-tools/backupScripts.d"
_LEGACY = {
    "windows": (r"C:\Windows\pre-freeze-script.bat", r"C:\Windows\post-thaw-script.bat"),
    "linux": ("/usr/sbin/pre-freeze-script", "/usr/sbin/post-thaw-script"),
}


def legacy_paths(os_family: str) -> tuple[str, str]:
    """``(pre-freeze, post-thaw)`` legacy script paths for an OS family (R20)."""
    try:
        return _LEGACY[os_family]
    except KeyError:
        raise InvalidInputError(what="os_family", expected="'windows' or 'linux'", got=os_family) from None


def default_scripts_dir(os_family: str, install_path: str | None = WINDOWS_INSTALL_PATH) -> str | None:
    """``backupScripts.d`` for an OS family (R19); ``None`` if the install path is unknown."""
    if os_family == "windows":
        if install_path is None:
            return None
        return join("windows", install_path.rstrip("\\"), "backupScripts.d")
    legacy_paths(os_family)
    return LINUX_SCRIPTS_DIR


@dataclass(frozen=True, slots=True)
class ScriptEntry:
    """One list entry. The legacy slot has a different path per phase (R22)."""

    path: str
    legacy: bool = False
    thaw_path: str = ""

    def path_for(self, phase: str) -> str:
        return self.thaw_path if self.legacy and phase != "freeze" else self.path


@dataclass(frozen=True, slots=True)
class ScriptPlan:
    """The script list of one quiesce operation, built once at its start (R21, R22)."""

    os_family: str
    layout: str
    directory: str | None
    entries: tuple[ScriptEntry, ...]

    @property
    def has_legacy_slot(self) -> bool:
        return bool(self.entries) and self.entries[0].legacy

    def order(self, phase: Phase, below: int | None = None) -> list[tuple[int, str]]:
        """``(index, path)`` in run order for a phase (R23), before the is-a-file re-check.

        ``below`` limits freezeFail to indexes ``below-1 … 0`` (R26).
        """
        if phase == "freeze":
            idx = list(range(len(self.entries)))
        else:
            top = len(self.entries) if below is None else below
            idx = list(range(top - 1, -1, -1))
        return [(i, self.entries[i].path_for(phase)) for i in idx]


def discover_scripts(
    files: GuestFiles,
    layout: str,
    *,
    scripts_dir: str | None = None,
    install_path: str | None = WINDOWS_INSTALL_PATH,
) -> ScriptPlan:
    """Build the script list for ``files``'s guest under ``layout`` (R19-R22).

    ``scripts_dir`` overrides the directory (``""``: no directory, legacy files only; ``None``:
    the default for the OS and ``install_path``). Q2 says the Windows directory differs by
    Tools version, hence the override.
    """
    if layout not in LAYOUTS:
        raise InvalidInputError(what="script layout", expected=" | ".join(map(repr, LAYOUTS)), got=layout)
    os_family = files.os_family
    pre, post = legacy_paths(os_family)
    entries: list[ScriptEntry] = []
    if layout != "directory" and (is_file(files, pre) or is_file(files, post)):
        entries.append(ScriptEntry(pre, legacy=True, thaw_path=post))
    directory: str | None = None
    if layout in ("scripts.d", "directory"):
        directory = default_scripts_dir(os_family, install_path) if scripts_dir is None else scripts_dir
        if directory and files.is_dir(directory):
            names = [n for n in files.listdir(directory) if is_file(files, join(os_family, directory, n))]
            names.sort(key=lambda n: n.encode("utf-8"))
            entries.extend(ScriptEntry(join(os_family, directory, n)) for n in names)
    return ScriptPlan(os_family, layout, directory or None, tuple(entries))
