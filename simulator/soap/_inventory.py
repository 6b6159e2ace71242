"""``vcbsim serve --inventory FILE``: start the host from a file instead of the demo inventory.

The file holds, in one JSON or TOML document (by its suffix: ``.toml`` is TOML, anything
else JSON), what a test would otherwise send through the control API (docs/control-api.md)::

    {"profile": "esxi-7.0", "seed": 7, "demo": false,
     "vms": [{"name": "win-small", "os": "windows", "disks": ["96MiB"],
              "volumes": {"0": [[null, "C", "SYSTEM"]]},
              "files": {"C:\\\\scripts\\\\10-flush.bat": "exit 0"}}],
     "faults": [{"operation": "script", "target": "*10-flush.bat", "exit_code": 3}]}

Every field is optional: ``demo: true`` starts from the demo VMs and adds these; ``vms`` are
``POST /vcbsim-api/vms`` bodies, ``faults`` ``POST /vcbsim-api/faults`` rules.

Why the control API's shapes: a VM is described one way whether it comes over the wire or in
a file, checked by one parser with one set of messages. A control API ``reset`` rebuilds
this inventory, as it rebuilds the demo's.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import InvalidInputError

if TYPE_CHECKING:
    from .._host import Host

__all__ = ["Inventory", "read_inventory"]

FIELDS = ("profile", "seed", "demo", "vms", "faults")


@dataclass(frozen=True)
class Inventory:
    """A host described by a file: its profile and seed (``None``: the caller's), whether it
    starts from the demo VMs, its VMs and fault rules (control API bodies)."""

    source: str
    profile: str | None = None
    seed: int | None = None
    demo: bool = False
    vms: tuple[dict[str, Any], ...] = ()
    faults: tuple[dict[str, Any], ...] = ()

    def populate(self, host: Host) -> None:
        """Add this inventory to ``host`` (an empty one: just built or reset); give it as
        ``Host(populate=...)`` so that ``Host.reset`` rebuilds it. ``InvalidInputError`` names
        the entry at fault."""
        from .._demo import populate_demo
        from .control._handlers import _add_vm, _Refused, _rule

        if self.demo:
            populate_demo(host)
        for i, vm in enumerate(self.vms):
            try:
                _add_vm(host, dict(vm))
            except _Refused as exc:
                msg = f"{self.source}: vms[{i}]"
                raise InvalidInputError(msg, expected=str(exc.extra.get("expected", "")),
                                        got=exc.extra.get("got"), hint=str(exc)) from None
            except InvalidInputError as exc:
                what = exc.fields.get("what", "")
                raise InvalidInputError(f"{self.source}: vms[{i}]" + (f".{what}" if what else ""),
                                        expected=exc.expected, got=exc.got, hint=exc.hint) from None
        for i, data in enumerate(self.faults):
            try:
                host.faults.add(_rule(dict(data), f"faults[{i}]"))
            except _Refused as exc:
                msg = f"{self.source}: faults[{i}]"
                raise InvalidInputError(msg, expected=str(exc.extra.get("expected", "")),
                                        got=exc.extra.get("got"), hint=str(exc)) from None


def read_inventory(path: str | Path) -> Inventory:
    """Read and check an inventory file's shape (``InvalidInputError`` says what is wrong and
    where; the VMs themselves are checked when they are built)."""
    p = Path(path)
    source = f"inventory {p}"
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InvalidInputError(source, expected="a readable JSON or TOML file", got=str(p),
                                hint=exc.strerror or str(exc)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8")) if p.suffix.lower() == ".toml" else json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        kind = "TOML" if p.suffix.lower() == ".toml" else "JSON"
        raise InvalidInputError(source, expected=f"a {kind} document", got=raw[:60].decode("utf-8", "replace"),
                                hint=str(exc)) from None
    if not isinstance(data, dict):
        raise InvalidInputError(source, expected="an object with fields " + ", ".join(FIELDS),
                                got=type(data).__name__)
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        msg = f"{source}: {unknown[0]}"
        raise InvalidInputError(msg, expected="one of the fields " + ", ".join(FIELDS),
                                got=unknown[0])
    profile, seed, demo = data.get("profile"), data.get("seed"), data.get("demo", False)
    if profile is not None:
        from .._profiles import PROFILES

        if profile not in PROFILES:
            msg = f"{source}: profile"
            raise InvalidInputError(msg, expected="one of " + ", ".join(sorted(PROFILES)),
                                    got=profile)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        msg = f"{source}: seed"
        raise InvalidInputError(msg, expected="an integer", got=seed)
    if not isinstance(demo, bool):
        msg = f"{source}: demo"
        raise InvalidInputError(msg, expected="true or false", got=demo)
    lists: dict[str, tuple[dict[str, Any], ...]] = {}
    for key in ("vms", "faults"):
        items = data.get(key, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            msg = f"{source}: {key}"
            raise InvalidInputError(msg, expected="a list of objects", got=items)
        lists[key] = tuple(items)
    return Inventory(source, profile, seed, demo, lists["vms"], lists["faults"])
