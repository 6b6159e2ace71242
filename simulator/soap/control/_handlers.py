"""The control API of ``vcbsim serve`` (moto's ``/moto-api/``): reset, seed, inventory, guest
files, fault rules, the trace and the state, as JSON over the same HTTP(S) port as ``/sdk``.

========================================  =========================================================
request                                   does
========================================  =========================================================
``POST /vcbsim-api/reset``                rebuild the host: ``{"seed"?, "profile"?, "demo"?}``
``POST /vcbsim-api/seed``                 reseed the host's randomness in place: ``{"seed": N}``
``POST /vcbsim-api/clock``                advance virtual time: ``{"advance": seconds}``
``GET  /vcbsim-api/vms``                  every VM's summary
``POST /vcbsim-api/vms``                  add a VM (disks, OS, Tools, volumes, files; ``VM_FIELDS``)
``GET  /vcbsim-api/guests/<vm>/files``    ``?path=``: a file (base64) or a directory listing
``POST /vcbsim-api/guests/<vm>/files``    write guest files: ``{"files": {path: text}}`` or
                                          ``{"files": [{"path", "text" | "base64"}]}``
``DELETE /vcbsim-api/guests/<vm>/files``  ``?path=``: delete a guest file
``GET  /vcbsim-api/faults``               armed fault rules, with how often each fired
``POST /vcbsim-api/faults``               arm a rule (``FaultRule``'s fields) or a list of rules
``DELETE /vcbsim-api/faults``             disarm every rule
``GET  /vcbsim-api/trace``                the trace as JSON Lines (``?since=SEQ``)
``POST /vcbsim-api/trace``                append proxy events (a product's ``op.*``/``mount``)
``GET  /vcbsim-api/state``                ``Host.dump()``
========================================  =========================================================

Every request needs the SOAP session cookie (``vmware_soap_session``) or HTTP Basic with the
server's user and password (``401`` otherwise). Bodies and answers are JSON; a malformed body
is a ``400`` whose ``message`` says what was expected and what came (``expected``/``got``
fields too), an unknown VM a ``404``, an operation the state forbids a ``409``.
Each request holds the endpoint's lock, so it is ordered with the SOAP calls around it.

``ControlClient(url, user, password)`` is the small Python client of it (tests, the kit's
command adapter). See ``docs/control-api.md``.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qs, unquote, urlsplit

from ..._errors import InvalidInputError, NotFoundError, StateError
from ..._faultrules import FaultRule
from ..._trace import KINDS

if TYPE_CHECKING:
    from ..._host import Host
    from ..._vm import VM
    from .._endpoint import Endpoint

log = logging.getLogger("vcbsim.soap.control")

__all__ = ["MAX_BODY_BYTES", "PREFIX", "ControlResponse", "handle_control", "VM_FIELDS"]

PREFIX = "/vcbsim-api"
#: largest request body accepted (guest files travel in it, base64-encoded)
MAX_BODY_BYTES = 64 * 1024 * 1024
#: fields of ``POST /vcbsim-api/vms``
VM_FIELDS: dict[str, str] = {
    "name": "display name (required)",
    "os": "'windows' or 'linux' (default windows)",
    "disks": "disk capacities: bytes or '96MiB'/'8GiB' strings (default ['8GiB'])",
    "power": "'poweredOn', 'poweredOff' or 'suspended' (default poweredOn)",
    "tools": "'running', 'not-running' or 'not-installed' (default running)",
    "providers": "quiesce providers, e.g. ['vss'] or ['sync'] (default: the OS's)",
    "ip": "guest IP address (default none)",
    "hostname": "guest host name (default <name>.vcbsim.test)",
    "memory_mb": "memory in MiB (default 1024)",
    "change_tracking": "enable changed block tracking (default false)",
    "volumes": "{disk index: [[size | null, letter | mount point | null, label], ...]}",
    "files": "guest files to write after the volumes exist: {path: text}",
    # the era cases (docs/architecture.md "Host profiles"): what Host.add_vm takes per disk
    "guest_os": "a guestId, e.g. winXPProGuest or windows2019srv_64Guest (default: the OS's)",
    "disk_modes": "per disk: persistent | independent_persistent | independent_nonpersistent",
    "disk_rdms": "per disk: null (a virtual disk) | physicalMode | virtualMode (a raw device mapping)",
    "disk_datastores": "per disk: null (the VM's datastore) or a datastore name",
    "disk_controllers": "per disk: scsi | ide",
    "working_dir": "a datastore name: redo logs and .vmsn files go there (workingDir)",
    "extra_config": "{key: value} .vmx settings, e.g. {\"disk.EnableUUID\": \"TRUE\"}",
}
_PER_DISK = ("disk_modes", "disk_rdms", "disk_datastores", "disk_controllers")
_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024**2, "MB": 1024**2, "MIB": 1024**2,
          "G": 1024**3, "GB": 1024**3, "GIB": 1024**3, "T": 1024**4, "TB": 1024**4, "TIB": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_FAULT_FIELDS = tuple(FaultRule.__dataclass_fields__)


@dataclass
class ControlResponse:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class _Refused(Exception):
    def __init__(self, status: int, error: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.error, self.extra = status, error, extra


def _json(status: int, data: Any, **headers: str) -> ControlResponse:
    body = (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode()
    return ControlResponse(status, body, "application/json", dict(headers))


def _bad(what: str, expected: str, got: Any, hint: str = "") -> NoReturn:
    """Refuse the request: 400, saying what was expected and what came."""
    msg = f"{what}: expected {expected}, got {got!r}" + (f"; {hint}" if hint else "")
    raise _Refused(400, "InvalidInput", msg, expected=expected, got=got)


# -- request parsing ------------------------------------------------------------------------


def _body(raw: bytes, *, required: bool = True) -> dict[str, Any]:
    if not raw.strip():
        if required:
            _bad("request body", "a JSON object", "")
        return {}
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        _bad("request body", "a JSON object", raw[:80].decode("utf-8", "replace"),
                   f"invalid JSON: {exc}")
    if not isinstance(data, dict):
        _bad("request body", "a JSON object", type(data).__name__)
    return data


def _only(data: Mapping[str, Any], what: str, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    extra = sorted(set(data) - set(allowed))
    if extra:
        _bad(what, "fields " + ", ".join(allowed), extra[0], f"unknown field {extra[0]!r}")


def _int(data: Mapping[str, Any], key: str, what: str, *, minimum: int | None = None) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        more = f" >= {minimum}" if minimum is not None else ""
        _bad(f"{what}.{key}", f"an integer{more}", value)
    return value


def parse_size(value: Any, what: str = "size") -> int:
    """Bytes from ``1048576``, ``"96MiB"``, ``"8 GiB"`` (binary units)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m and m.group(2).upper() in _UNITS:
            return int(float(m.group(1)) * _UNITS[m.group(2).upper()])
    _bad(what, "a number of bytes or a string such as '96MiB' or '8GiB'", value)


# -- the handler ------------------------------------------------------------------------------


def handle_control(ep: Endpoint, method: str, raw_path: str, body: bytes, *, authorized: bool) -> ControlResponse:
    """Answer one control API request (``raw_path`` starts with ``PREFIX``)."""
    if not authorized:
        return _json(401, {"error": "NotAuthenticated",
                           "message": "the control API needs the vmware_soap_session cookie of a SOAP "
                                      "login, or HTTP Basic with the server's user and password"},
                     **{"WWW-Authenticate": 'Basic realm="vcbsim control API"'})
    parts = urlsplit(raw_path)
    route = unquote(parts.path[len(PREFIX):]).strip("/")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    host = ep.host
    try:
        with ep.lock:
            ep.begin_call()
            try:
                return _route(ep, host, method, route, query, body)
            finally:
                ep.changed.notify_all()  # property filters see what changed
    except _Refused as exc:
        return _json(exc.status, {"error": exc.error, "message": str(exc), **exc.extra})
    except InvalidInputError as exc:
        return _json(400, {"error": "InvalidInput", "message": str(exc), "expected": exc.expected, "got": exc.got})
    except NotFoundError as exc:
        return _json(404, {"error": "NotFound", "message": str(exc)})
    except StateError as exc:
        return _json(409, {"error": "InvalidState", "message": str(exc)})
    except (ValueError, TypeError) as exc:
        return _json(400, {"error": "InvalidInput", "message": str(exc)})
    except Exception as exc:  # every request is answered; the server keeps serving
        log.warning("control API %s %s failed", method, raw_path, exc_info=True)
        return _json(500, {"error": "SystemError", "message": f"{type(exc).__name__}: {exc}"})


_ROUTES = {
    "reset": ("POST",), "seed": ("POST",), "clock": ("POST",), "vms": ("GET", "POST"),
    "faults": ("GET", "POST", "DELETE"), "trace": ("GET", "POST"), "state": ("GET",),
    "captures": ("GET", "POST", "DELETE"), "": ("GET",),
}


def _route(ep: Endpoint, host: Host, method: str, route: str, query: dict[str, str], body: bytes) -> ControlResponse:
    guest = re.fullmatch(r"guests/([^/]+)/files", route)
    one_vm = re.fullmatch(r"vms/([^/]+)", route)
    allowed = ("GET", "POST", "PUT", "DELETE") if guest else ("GET",) if one_vm else _ROUTES.get(route)
    if allowed is None:
        raise _Refused(404, "NotFound", f"no control API resource {PREFIX}/{route}; known: "
                       + ", ".join(f"{PREFIX}/{r}" for r in [*_ROUTES, "guests/<vm>/files", "vms/<vm>"] if r))
    if method == "HEAD":
        method = "GET"
    if method not in allowed:
        raise _Refused(405, "MethodNotAllowed", f"{PREFIX}/{route} accepts {', '.join(allowed)}, not {method}")
    if guest:
        vm = host.find_vm(guest.group(1))
        if method == "GET":
            return _read_guest(host, vm, query)
        if method == "DELETE":
            return _delete_guest(host, vm, query)
        return _json(200, {"vm": vm.name, "written": _write_guest(host, vm, _body(body).get("files"), "files")})
    if one_vm:
        from ._facts import vm_facts

        return _json(200, vm_facts(host, host.find_vm(one_vm.group(1))))
    if route == "captures":
        return _captures(host, method, body)
    if route == "":
        return _json(200, {"resources": sorted(f"{PREFIX}/{r}" for r in [*_ROUTES, "guests/<vm>/files", "vms/<vm>"] if r)})
    if route == "state":
        return _json(200, _state(host))
    if route == "reset":
        return _json(200, _reset(ep, host, _body(body, required=False)))
    if route == "seed":
        data = _body(body)
        _only(data, "seed", ("seed",))
        seed = _int(data, "seed", "seed")
        if seed is None:
            _bad("seed.seed", "an integer", None)
        host.seed = seed
        host.random.seed(seed)
        host.random.seed_value = seed
        if host.store is not None:
            host.store.save_host()
        return _json(200, {"seed": seed})
    if route == "clock":
        data = _body(body)
        _only(data, "clock", ("advance",))
        advance = data.get("advance")
        if isinstance(advance, bool) or not isinstance(advance, int | float) or advance < 0:
            _bad("clock.advance", "virtual seconds >= 0", advance)
        host.advance(float(advance))  # guests catch up with work that ended meanwhile
        return _json(200, {"time": host.clock.now})
    if route == "vms":
        if method == "GET":
            return _json(200, [vm.summary() for vm in host.vms.values()])
        return _json(201, _add_vm(host, _body(body)))
    if route == "faults":
        return _faults(host, method, body)
    return _trace(host, method, query, body)


def _captures(host: Host, method: str, body: bytes) -> ControlResponse:
    """``/vcbsim-api/captures`` (``_facts.py``)."""
    from ._facts import captures_of

    found = captures_of(host)
    if method == "POST":
        data = _body(body)
        _only(data, "captures", ("vm",))
        if not isinstance(data.get("vm"), str):
            _bad("captures.vm", "a VM's name or moref", data.get("vm"))
        found.arm(host.find_vm(data["vm"]))
        return _json(201, {"armed": sorted(found.armed)})
    if method == "DELETE":
        n = len(found.taken)
        found.clear()
        return _json(200, {"cleared": n})
    return _json(200, found.taken)


def _state(host: Host) -> dict[str, Any]:
    data = host.dump()
    data["fault_hits"] = host.faults.hits()
    data["trace"] = {"next_seq": len(host.trace), "dropped": host.trace.dropped, "limit": host.trace.limit}
    return data


def _reset(ep: Endpoint, host: Host, data: dict[str, Any]) -> dict[str, Any]:
    _only(data, "reset", ("seed", "profile", "demo", "inventory"))
    seed = _int(data, "seed", "reset")
    demo = data.get("demo")
    if demo is not None and not isinstance(demo, bool):
        _bad("reset.demo", "true (the demo inventory) or false (no VMs)", demo)
    from ..._demo import INVENTORIES

    inventory = data.get("inventory")  # a named demo inventory: "demo" or "era" (issue 17)
    if inventory is not None and (inventory not in INVENTORIES or demo is False):
        _bad("reset.inventory", "one of " + ", ".join(INVENTORIES) + " (without demo: false)", inventory)
    profile = data.get("profile")
    if profile is not None:
        from ..._profiles import PROFILES, get_profile

        if profile not in PROFILES:
            _bad("reset.profile", "one of " + ", ".join(sorted(PROFILES)), profile)
        host.profile = get_profile(profile)
    if inventory is not None:
        host.populate = INVENTORIES[inventory]
    elif demo is not None:  # says what to rebuild: the demo, or nothing (not the inventory file's)
        from ..._demo import populate_demo

        host.populate = populate_demo if demo else None
    # the trace's memory bound and JSON Lines sink are the server's settings: keep them
    limit, sink = host.trace.limit, host.trace.sink
    from ._facts import forget

    forget(host)
    host.reset(seed=seed)
    trace = host.trace
    if sink is not None:  # the rebuild's own events (host.reset, the demo's VMs) go to the sink too
        for ev in trace.events:
            sink.write(json.dumps(ev.to_dict(), default=str, sort_keys=True) + "\n")
        sink.flush()
    trace.limit, trace.sink = limit, sink
    if limit is not None and len(trace.events) > limit:
        cut = len(trace.events) - limit
        del trace.events[:cut]
        trace.dropped += cut
    # what the endpoint remembers about the old inventory
    ep.inventory.forget_all()
    ep.sessions.transfers.clear()
    ep.files.uploads.clear()
    ep.guest.processes.clear()
    return {"profile": host.profile.name, "seed": host.seed, "vms": [vm.name for vm in host.vms.values()],
            "next_seq": len(host.trace)}


def _layout(index: Any, entries: Any) -> tuple[int, list[tuple[int | None, str | None, str]]]:
    try:
        idx = int(index)
    except (TypeError, ValueError):
        _bad("vms.volumes key", "a disk index such as \"0\"", index)
    if not isinstance(entries, list) or not entries:
        _bad(f"vms.volumes[{index}]", "a non-empty list of [size | null, letter | mount | null, label]",
                   entries)
    out: list[tuple[int | None, str | None, str]] = []
    for e in entries:
        if isinstance(e, dict):
            _only(e, f"vms.volumes[{index}] entry", ("size", "where", "letter", "mount", "label"))
            size, where, label = e.get("size"), e.get("where", e.get("letter", e.get("mount"))), e.get("label", "")
        elif isinstance(e, list) and len(e) == 3:
            size, where, label = e
        else:
            _bad(f"vms.volumes[{index}] entry", "[size | null, letter | mount point | null, label]", e)
        if where is not None and not isinstance(where, str):
            _bad(f"vms.volumes[{index}] where", "a drive letter, a mount point or null", where)
        if not isinstance(label, str):
            _bad(f"vms.volumes[{index}] label", "a string", label)
        out.append((None if size is None else parse_size(size, f"vms.volumes[{index}] size"), where, label))
    return idx, out


def _add_vm(host: Host, data: dict[str, Any]) -> dict[str, Any]:
    _only(data, "vms", VM_FIELDS)
    name = data.get("name")
    if not isinstance(name, str) or not name:
        _bad("vms.name", "a VM name", name)
    disks_in = data.get("disks", ["8GiB"])
    if not isinstance(disks_in, list) or not disks_in:
        _bad("vms.disks", "a non-empty list of capacities", disks_in)
    disks = [parse_size(d, f"vms.disks[{i}]") for i, d in enumerate(disks_in)]
    os_family = data.get("os", "windows")
    providers = data.get("providers")
    if providers is not None and (not isinstance(providers, list) or not all(isinstance(p, str) for p in providers)):
        _bad("vms.providers", "a list of provider names such as ['vss']", providers)
    for key in ("ip", "hostname", "power", "tools", "guest_os", "working_dir"):
        if key in data and not isinstance(data[key], str):
            _bad(f"vms.{key}", "a string", data[key])
    per_disk: dict[str, Any] = {}
    for key in _PER_DISK:
        value = data.get(key)
        if value is not None and (not isinstance(value, list) or not all(x is None or isinstance(x, str) for x in value)):
            _bad(f"vms.{key}", f"a list of strings or nulls, one per disk ({len(disks)})", value)
        per_disk[key] = value
    extra = data.get("extra_config")
    if extra is not None and (
        not isinstance(extra, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items())
    ):
        _bad("vms.extra_config", "an object of .vmx keys to string values", extra)
    memory = _int(data, "memory_mb", "vms", minimum=4)
    volumes = data.get("volumes")
    if volumes is not None and not isinstance(volumes, dict):
        _bad("vms.volumes", "{disk index: [[size | null, letter | mount | null, label], ...]}", volumes)
    layouts = dict(_layout(k, v) for k, v in (volumes or {}).items())
    files = data.get("files")
    if files is not None and not volumes and os_family == "windows" and data.get("tools") == "not-installed":
        _bad("vms.files", "volumes or VMware Tools to hold the files", files)
    cbt = data.get("change_tracking")
    if cbt is not None and not isinstance(cbt, bool):
        _bad("vms.change_tracking", "true or false", cbt)
    for i in layouts:
        if not 0 <= i < len(disks):
            _bad("vms.volumes key", f"a disk index 0..{len(disks) - 1}", i)
    vm = host.add_vm(
        name,
        os_family=os_family,
        disks=disks,
        power_state=data.get("power", "poweredOn"),
        tools=data.get("tools", "running"),
        providers=tuple(providers) if providers is not None else None,
        ip_address=data.get("ip"),
        hostname=data.get("hostname"),
        memory_mb=1024 if memory is None else memory,
        guest_os=data.get("guest_os"),
        working_dir=data.get("working_dir"),
        **per_disk,
    )
    try:
        if extra:
            vm.extra_config.update(extra)
            if host.store is not None:
                host.store.save_vm(vm)
        if layouts:
            host.add_guest_volumes(vm, layouts)
        if files is not None:
            _write_guest(host, vm, files, "vms.files")
        if cbt:
            host.reconfigure(vm, change_tracking=True)
    except Exception:
        # half a VM is worse than none: the caller fixes the request and sends it again
        _forget_vm(host, vm)
        raise
    return vm.summary()


def _forget_vm(host: Host, vm: VM) -> None:
    host.vms.pop(vm.moref, None)
    host.faults.aliases.pop(vm.moref, None)
    if host.store is not None:
        import shutil

        for d in vm.disks:
            close = getattr(d.disk, "close", None)
            if close is not None:
                close()
        shutil.rmtree(host.store.vm_dir(vm), ignore_errors=True)
        host.store.save_host()


def _guest_files(vm: VM) -> Any:
    if vm.guest is not None:
        return vm.guest
    if vm.tools is not None and getattr(vm.tools, "guest", None) is not None:
        return vm.tools.guest
    msg = f"VM {vm.name!r} has no guest file system (give it volumes, or VMware Tools)"
    raise StateError(msg)


def _write_guest(host: Host, vm: VM, files: Any, what: str) -> list[dict[str, Any]]:
    items: list[tuple[str, bytes]] = []
    if isinstance(files, dict):
        for path, text in files.items():
            if not isinstance(text, str):
                _bad(f"{what}[{path!r}]", "the file's text (use the list form with base64 for bytes)", text)
            items.append((path, text.encode()))
    elif isinstance(files, list) and files:
        for i, entry in enumerate(files):
            if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
                _bad(f"{what}[{i}]", '{"path": ..., "text": ...} or {"path": ..., "base64": ...}', entry)
            _only(entry, f"{what}[{i}]", ("path", "text", "base64"))
            if isinstance(entry.get("text"), str) and "base64" not in entry:
                items.append((entry["path"], entry["text"].encode()))
            elif isinstance(entry.get("base64"), str) and "text" not in entry:
                try:
                    items.append((entry["path"], base64.b64decode(entry["base64"], validate=True)))
                except ValueError:
                    _bad(f"{what}[{i}].base64", "base64 data", entry["base64"][:40])
            else:
                _bad(f"{what}[{i}]", 'exactly one of "text" and "base64"', sorted(entry))
    else:
        _bad(what, '{path: text} or [{"path", "text" | "base64"}, ...]', files)
    fs = _guest_files(vm)
    written = []
    for path, data in items:
        if not isinstance(path, str) or not path:
            _bad(f"{what} path", "an absolute guest path", path)
        sep = "\\" if vm.os_family == "windows" else "/"
        parent = path.replace("/", "\\").rsplit("\\", 1)[0] if sep == "\\" else path.rsplit("/", 1)[0]
        if parent and not (sep == "\\" and len(parent) == 2) and not fs.exists(parent):
            fs.mkdir(parent, parents=True)
        fs.write_bytes(path, data)
        written.append({"path": path, "size": len(data)})
    if host.store is not None:
        host.store.save_vm(vm)
    return written


def _read_guest(host: Host, vm: VM, query: dict[str, str]) -> ControlResponse:
    path = query.get("path")
    if not path:
        _bad("path query parameter", "an absolute guest path (?path=C:\\\\f.txt)", path)
    fs = _guest_files(vm)
    if fs.is_dir(path):
        return _json(200, {"vm": vm.name, "path": path, "entries": sorted(fs.listdir(path))})
    if not fs.exists(path):
        raise NotFoundError("guest file", path)
    data = fs.read_bytes(path)
    return _json(200, {"vm": vm.name, "path": path, "size": len(data),
                       "base64": base64.b64encode(data).decode()})


def _delete_guest(host: Host, vm: VM, query: dict[str, str]) -> ControlResponse:
    path = query.get("path")
    if not path:
        _bad("path query parameter", "an absolute guest path (?path=C:\\\\f.txt)", path)
    fs = _guest_files(vm)
    if not fs.exists(path):
        raise NotFoundError("guest file", path)
    if fs.is_dir(path):
        _bad("path", "a file (directories are not deleted through the control API)", path)
    fs.delete(path)
    if host.store is not None:
        host.store.save_vm(vm)
    return _json(200, {"vm": vm.name, "deleted": path})


def _rule(data: Any, what: str) -> FaultRule:
    if not isinstance(data, dict):
        _bad(what, "a JSON object with FaultRule's fields", data)
    _only(data, what, _FAULT_FIELDS)
    if "operation" not in data:
        _bad(f"{what}.operation", "one of vcbsim.simulator.OPERATIONS", None)
    types = {"operation": str, "target": str, "fault": (str, type(None)), "message": (str, type(None)),
             "delay": (int, float), "exit_code": (int, type(None)), "after": int,
             "times": (int, type(None)), "probability": (int, float), "label": str}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, types[key]):  # type: ignore[arg-type]
            _bad(f"{what}.{key}", f"a value of type {types[key]}".replace("<class '", "").replace("'>", ""),
                       value)
    return FaultRule(**data)


def _faults(host: Host, method: str, body: bytes) -> ControlResponse:
    if method == "DELETE":
        n = len(host.faults.rules)
        host.faults.clear()
        return _json(200, {"cleared": n})
    if method == "POST":
        raw = body.strip()
        try:
            data = json.loads(raw) if raw else None
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            _bad("request body", "a fault rule object or a list of them", raw[:80].decode("utf-8", "replace"),
                       f"invalid JSON: {exc}")
        rules = [_rule(r, f"faults[{i}]") for i, r in enumerate(data)] if isinstance(data, list) \
            else [_rule(data, "fault")]
        added = [host.add_fault(r).to_dict() for r in rules]
        return _json(201, added if isinstance(data, list) else added[0])
    hits = host.faults.hits()
    return _json(200, [{**r.to_dict(), "fired": hits.get(r.label or f"{r.operation}:{r.target}", 0)}
                       for r in host.faults.rules])


def _trace(host: Host, method: str, query: dict[str, str], body: bytes) -> ControlResponse:
    if method == "POST":
        return _json(201, {"seq": [_append(host, e, f"events[{i}]") for i, e in enumerate(_events_in(body))],
                           "next_seq": len(host.trace)})
    since_raw = query.get("since", "0")
    try:
        since = int(since_raw)
    except ValueError:
        _bad("since", "a sequence number (an integer >= 0)", since_raw)
    if since < 0:
        _bad("since", "a sequence number (an integer >= 0)", since)
    events = host.trace.since(since)
    text = "".join(json.dumps(e.to_dict(), default=str, sort_keys=True) + "\n" for e in events)
    return ControlResponse(200, text.encode(), "application/x-ndjson",
                           {"X-Vcbsim-Next-Seq": str(len(host.trace)),
                            "X-Vcbsim-Dropped": str(host.trace.dropped)})


def _events_in(body: bytes) -> list[Any]:
    text = body.decode("utf-8", "replace").strip()
    if not text:
        _bad("request body", "proxy events: a JSON object, a list, or JSON Lines", "")
    try:
        data = json.loads(text)
        return data if isinstance(data, list) else [data]
    except json.JSONDecodeError:
        pass
    except RecursionError:
        _bad("request body", "proxy events: a JSON object, a list, or JSON Lines", text[:80], "nested too deeply")
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except (json.JSONDecodeError, RecursionError) as exc:
                _bad(f"events line {n}", "one JSON object per line", line[:80], str(exc))
    return out


def _append(host: Host, ev: Any, what: str) -> int:
    """Append one proxy event, stamped with the host's sequence and virtual time."""
    if not isinstance(ev, dict):
        _bad(what, "an event object {kind, vm?, step?, details?}", ev)
    _only(ev, what, ("actor", "kind", "vm", "step", "details", "seq", "time"))
    if ev.get("actor", "proxy") != "proxy":
        _bad(f"{what}.actor", "'proxy' (host and guest events come from the simulator)", ev.get("actor"))
    kind = ev.get("kind")
    if kind not in KINDS or str(kind).startswith(("host.", "vm.", "snapshot.", "quiesce.", "script.", "task.")):
        proxy_kinds = ["op.invoke", "op.ok", "op.fail", "op.info", "mount", "unmount", "disk.export", "note"]
        _bad(f"{what}.kind", "one of " + ", ".join(proxy_kinds), kind)
    details = ev.get("details") or {}
    if not isinstance(details, dict):
        _bad(f"{what}.details", "an object", details)
    step = ev.get("step")
    if step is not None and not isinstance(step, str):
        _bad(f"{what}.step", "a step name such as 'WF-1c', or null", step)
    vm = ev.get("vm")
    moref = host.find_vm(vm).moref if vm is not None else None
    return host.trace.emit("proxy", kind, vm=moref, step=step, **details).seq
