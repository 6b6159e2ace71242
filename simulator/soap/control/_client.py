"""``ControlClient``: the control API of ``vcbsim serve`` from Python (tests, the kit's command
adapter); the server side is ``_handlers.py``. See ``docs/control-api.md``.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from ..._errors import InvalidInputError, VcbsimError
from ..._trace import Event
from ._handlers import PREFIX

__all__ = ["ControlClient", "ControlError"]


class ControlError(VcbsimError):
    """A control API request was refused: ``status``, ``error`` and the server's ``message``."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status, self.error, self.message = status, error, message


class ControlClient:
    """The control API from Python: ``ControlClient("https://127.0.0.1:8989/sdk", "user", "pass")``.

    ``url`` is the SDK URL or the server's base URL. HTTPS certificates are not checked unless
    ``verify=True`` (the server is on loopback with a self-signed certificate). Refusals raise
    ``ControlError``.
    """

    def __init__(self, url: str, user: str = "user", password: str = "pass", *,
                 verify: bool = False, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInputError("control API url", expected="http(s)://HOST:PORT[/sdk]", got=url)
        self.base = f"{parts.scheme}://{parts.netloc}{PREFIX}"
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._auth = f"Basic {token}"
        self._timeout = timeout
        self._ctx: ssl.SSLContext | None = None
        if parts.scheme == "https" and not verify:
            self._ctx = ssl.create_default_context()
            self._ctx.check_hostname = False
            self._ctx.verify_mode = ssl.CERT_NONE

    def request(self, method: str, route: str, data: Any = None, *, raw: bytes | None = None) -> tuple[int, bytes, Any]:
        """One request; returns (status, body, headers). Raises ``ControlError`` on 4xx/5xx."""
        body = raw if raw is not None else (None if data is None else json.dumps(data).encode())
        req = urllib.request.Request(f"{self.base}/{route.lstrip('/')}", data=body, method=method)
        req.add_header("Authorization", self._auth)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self._timeout, context=self._ctx) as resp:  # noqa: S310
                return resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            try:
                doc = json.loads(payload)
                error, message = doc.get("error", ""), doc.get("message", "")
            except (json.JSONDecodeError, AttributeError):
                error, message = exc.reason, payload.decode("utf-8", "replace")
            raise ControlError(exc.code, str(error), str(message)) from None

    def _json(self, method: str, route: str, data: Any = None) -> Any:
        return json.loads(self.request(method, route, data)[1])

    def reset(
        self, *, seed: int | None = None, profile: str | None = None, demo: bool | None = None,
        inventory: str | None = None,
    ) -> dict[str, Any]:
        pairs = (("seed", seed), ("profile", profile), ("demo", demo), ("inventory", inventory))
        data = {k: v for k, v in pairs if v is not None}
        return self._json("POST", "reset", data)  # type: ignore[no-any-return]

    def seed(self, seed: int) -> None:
        self._json("POST", "seed", {"seed": seed})

    def advance(self, seconds: float) -> float:
        return float(self._json("POST", "clock", {"advance": seconds})["time"])

    def vms(self) -> list[dict[str, Any]]:
        return self._json("GET", "vms")  # type: ignore[no-any-return]

    def add_vm(self, name: str, **spec: Any) -> dict[str, Any]:
        """``add_vm("w1", os="windows", disks=["96MiB"], volumes={0: [[None, "C", "SYS"]]})``."""
        if "volumes" in spec and isinstance(spec["volumes"], dict):
            spec["volumes"] = {str(k): v for k, v in spec["volumes"].items()}
        return self._json("POST", "vms", {"name": name, **spec})  # type: ignore[no-any-return]

    def write_guest_files(self, vm: str, files: Mapping[str, str | bytes]) -> list[dict[str, Any]]:
        entries = [{"path": p, "base64": base64.b64encode(d).decode()} if isinstance(d, bytes)
                   else {"path": p, "text": d} for p, d in files.items()]
        return self._json("POST", f"guests/{quote(vm, safe='')}/files", {"files": entries})["written"]  # type: ignore[no-any-return]

    def read_guest_file(self, vm: str, path: str) -> bytes:
        doc = self._json("GET", f"guests/{quote(vm, safe='')}/files?path={quote(path, safe='')}")
        if "base64" not in doc:
            raise ControlError(409, "IsADirectory", f"{path} is a directory: {doc.get('entries')}")
        return base64.b64decode(doc["base64"])

    def delete_guest_file(self, vm: str, path: str) -> None:
        self._json("DELETE", f"guests/{quote(vm, safe='')}/files?path={quote(path, safe='')}")

    def add_fault(self, operation: str, **fields: Any) -> dict[str, Any]:
        return self._json("POST", "faults", {"operation": operation, **fields})  # type: ignore[no-any-return]

    def faults(self) -> list[dict[str, Any]]:
        return self._json("GET", "faults")  # type: ignore[no-any-return]

    def clear_faults(self) -> int:
        return int(self._json("DELETE", "faults")["cleared"])

    def trace(self, since: int = 0) -> list[Event]:
        _status, body, _headers = self.request("GET", f"trace?since={int(since)}")
        return [Event.from_dict(json.loads(line)) for line in body.decode().splitlines() if line.strip()]

    def post_events(self, events: Iterable[Mapping[str, Any]]) -> list[int]:
        return self._json("POST", "trace", list(events))["seq"]  # type: ignore[no-any-return]

    def vm(self, name: str) -> dict[str, Any]:
        """The host's facts about one VM: summary, ``vmx``, ``vmsd``, ``disks`` with digests."""
        return self._json("GET", f"vms/{quote(name, safe='')}")  # type: ignore[no-any-return]

    def capture(self, vm: str) -> None:
        """Record ``vm``'s disks and configuration at its next snapshot (``captures()``)."""
        self._json("POST", "captures", {"vm": vm})

    def captures(self) -> dict[str, dict[str, Any]]:
        return self._json("GET", "captures")  # type: ignore[no-any-return]

    def state(self) -> dict[str, Any]:
        return self._json("GET", "state")  # type: ignore[no-any-return]
