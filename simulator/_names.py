"""Names a host can hold: checked once where they enter, escaped wherever they are written.

A VM name becomes a folder and file names on the datastore, text in every SOAP answer (XML
1.0), a ``displayName = "..."`` line of the ``.vmx``, a path in ``/folder`` URLs and a line
of the server's banner. One check at the entry (``Host.add_vm``, ``Host.create_snapshot``,
the state loader) keeps out what any of those cannot carry:

- characters XML 1.0 cannot carry at all (section 2.2 ``Char``: C0 controls other than tab,
  newline and carriage return, lone surrogates, U+FFFE and U+FFFF); a client's parser
  rejects the whole inventory listing otherwise;
- for names (not descriptions) every control character (C0, DEL, C1) and the Unicode
  noncharacters (U+FDD0-U+FDEF, U+xFFFE/U+xFFFF of every plane): a newline in a name would
  start a new ``.vmx`` line, and no real UI lets one be typed;
- for VM names, what a datastore folder cannot hold: ``/`` and ``\\`` (path separators; the
  vSphere client escapes them as ``%2f``/``%5c``, which this simulator does not emulate),
  ``"`` (the quoting of descriptor and ``.vmx`` values), ``.`` and ``..``, leading or trailing
  spaces, more than 80 characters (the vSphere limit for inventory names) or more than 200
  bytes of UTF-8 (file names such as ``<name>-000001-sesparse.vmdk`` must stay under 255).

Writers still escape: :func:`vmx_escape` uses the ``|XX`` escapes of VMware's dictionary
files (``"`` is written ``|22``, ``|`` is ``|7C``), and URLs are percent-encoded by their
builders.
"""

from __future__ import annotations

import re

from ._errors import InvalidInputError

__all__ = [
    "check_vm_name",
    "check_name",
    "check_text",
    "xml_unsafe",
    "vmx_escape",
    "MAX_NAME_CHARS",
]

MAX_NAME_CHARS = 80
_MAX_NAME_BYTES = 200

#: what XML 1.0 cannot carry (the complement of production [2] Char)
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: what a name must not hold besides: every control character and every noncharacter
_NAME_BAD = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
    "\U0001fffe\U0001ffff\U0002fffe\U0002ffff\U0003fffe\U0003ffff\U0004fffe\U0004ffff"
    "\U0005fffe\U0005ffff\U0006fffe\U0006ffff\U0007fffe\U0007ffff\U0008fffe\U0008ffff"
    "\U0009fffe\U0009ffff\U000afffe\U000affff\U000bfffe\U000bffff\U000cfffe\U000cffff"
    "\U000dfffe\U000dffff\U000efffe\U000effff\U000ffffe\U000fffff\U0010fffe\U0010ffff]"
)
_VM_NAME_BAD = re.compile(r'[/\\"]')


def xml_unsafe(text: str) -> str | None:
    """The first character of ``text`` XML 1.0 cannot carry, or None."""
    m = _XML_BAD.search(text)
    return None if m is None else m.group()


def _describe(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def check_name(what: str, name: object, *, max_chars: int = MAX_NAME_CHARS) -> str:
    """A name of an inventory object (a snapshot, a VM): printable, XML-safe, bounded."""
    if not isinstance(name, str) or not name:
        raise InvalidInputError(what, expected="a non-empty string", got=name)
    bad = _NAME_BAD.search(name)
    if bad is not None:
        raise InvalidInputError(
            what,
            expected="a name without control characters, noncharacters or lone surrogates",
            got=name,
            hint=f"remove {_describe(bad.group())} at position {bad.start()}",
        )
    if len(name) > max_chars:
        raise InvalidInputError(
            what, expected=f"at most {max_chars} characters", got=f"{len(name)} characters"
        )
    return name


def check_vm_name(name: object) -> str:
    """A VM name: :func:`check_name` plus what a datastore folder can hold."""
    name = check_name("VM name", name)
    bad = _VM_NAME_BAD.search(name)
    if bad is not None:
        raise InvalidInputError(
            "VM name",
            expected="a name usable as a datastore folder (no '/', '\\' or '\"')",
            got=name,
            hint=f"remove {bad.group()!r} at position {bad.start()}",
        )
    if name in (".", "..") or name != name.strip():
        raise InvalidInputError(
            "VM name",
            expected="a name usable as a datastore folder (not '.' or '..', no leading or "
            "trailing spaces)",
            got=name,
        )
    if len(name.encode()) > _MAX_NAME_BYTES:
        raise InvalidInputError(
            "VM name",
            expected=f"at most {_MAX_NAME_BYTES} bytes of UTF-8 (its file names must fit)",
            got=f"{len(name.encode())} bytes",
        )
    return name


def check_text(what: str, text: object, *, max_chars: int = 65535) -> str:
    """Free text (a snapshot description): anything XML 1.0 can carry, bounded."""
    if not isinstance(text, str):
        raise InvalidInputError(what, expected="a string", got=text)
    bad = xml_unsafe(text)
    if bad is not None:
        raise InvalidInputError(
            what,
            expected="text XML can carry (no control characters other than tab and newline, "
            "no lone surrogates, no U+FFFE/U+FFFF)",
            got=text,
            hint=f"remove {_describe(bad)}",
        )
    if len(text) > max_chars:
        raise InvalidInputError(
            what, expected=f"at most {max_chars} characters", got=f"{len(text)} characters"
        )
    return text


def vmx_escape(value: str) -> str:
    """A value for a ``key = "value"`` line of a ``.vmx``/``.vmsd``: ``|``, ``"`` and control
    characters as VMware's ``|XX`` escapes, so a value never ends the quote or the line."""
    out = []
    for ch in value:
        if ch in '|"' or ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"|{ord(ch):02X}")
        else:
            out.append(ch)
    return "".join(out)
