"""``_parse_dir`` (unpacked by ``struct`` in C, issue 18) reads every directory as the plain
slot-by-slot reading does: random mixes of short entries, LFN runs (whole, cut, out of order,
with a wrong checksum), deleted slots, volume labels and the end marker."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from vcbsim.simulator.guest._fatentry import (
    _Entry,
    _lfn_checksum,
    _lfn_slots,
    _parse_dir,
    _short_display,
)

ATTR_LFN = 0x0F


def checksum_by_the_spec(short: bytes) -> int:
    """Microsoft's FAT specification, ChkSum, as written there."""
    s = 0
    for b in short:
        s = (((s & 1) << 7) + (s >> 1) + b) & 0xFF
    return s


def parse_slot_by_slot(data: bytes) -> list[_Entry]:
    """The reading ``_parse_dir`` replaced: one 32-byte slice and its fields at a time."""
    entries: list[_Entry] = []
    lfn: list[str] = []
    lfn_sum, lfn_expect, lfn_first = -1, 0, -1
    for i in range(len(data) // 32):
        raw = bytes(data[i * 32 : i * 32 + 32])
        first = raw[0]
        if first == 0x00:
            break
        if first == 0xE5:
            lfn, lfn_expect = [], 0
            continue
        attr = raw[11]
        if attr & 0x3F == ATTR_LFN:
            seq = first & 0x1F
            part = (raw[1:11] + raw[14:26] + raw[28:32]).decode("utf-16-le", "replace")
            if first & 0x40:
                lfn, lfn_expect, lfn_sum, lfn_first = [part], seq - 1, raw[13], i
            elif lfn and seq == lfn_expect and raw[13] == lfn_sum:
                lfn.append(part)
                lfn_expect -= 1
            else:
                lfn, lfn_expect = [], 0
            continue
        short = raw[0:11]
        name, first_slot = "", i
        if lfn and lfn_expect == 0 and checksum_by_the_spec(short) == lfn_sum:
            name = "".join(reversed(lfn)).split("\x00", 1)[0]
            first_slot = lfn_first
        lfn, lfn_expect = [], 0
        if attr & 0x08:
            continue
        if not name:
            name = _short_display(short, raw[12])
        if name in (".", ".."):
            continue
        hi, lo = struct.unpack_from("<H", raw, 20)[0], struct.unpack_from("<H", raw, 26)[0]
        size = struct.unpack_from("<I", raw, 28)[0]
        entries.append(_Entry(name, short, attr, (hi << 16) | lo, size, first_slot, i, raw))
    return entries


shorts = st.sampled_from([b"A       TXT", b"README  MD ", b"PROGRA~1   ", b".          ", b"\x05BC     DAT", b"caf\x82    LOG"])
names = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters='"*/:<>?\\|'), min_size=1, max_size=40)


@st.composite
def slots(draw: st.DrawFn) -> bytes:
    out = b""
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["short", "lfn", "cut", "shuffled", "badsum", "deleted", "label", "end", "noise"]))
        short = draw(shorts)
        attr = draw(st.sampled_from([0x20, 0x10, 0x01, 0x08]))
        entry = short + bytes([attr, draw(st.sampled_from([0, 0x08, 0x18]))]) + draw(st.binary(min_size=19, max_size=19))
        lfn = _lfn_slots(draw(names), short)
        if kind == "lfn":
            out += b"".join(lfn) + entry
        elif kind == "cut":
            out += b"".join(lfn[1:]) + entry
        elif kind == "shuffled":
            out += b"".join(reversed(lfn)) + entry
        elif kind == "badsum":
            out += b"".join(s[:13] + bytes([(s[13] + 1) & 0xFF]) + s[14:] for s in lfn) + entry
        elif kind == "deleted":
            out += b"\xe5" + entry[1:]
        elif kind == "end":
            out += bytes(32)
        elif kind == "noise":
            out += draw(st.binary(min_size=32, max_size=32))
        else:
            out += entry
    return out + draw(st.binary(max_size=31))  # a torn last slot is not a slot


@settings(max_examples=300, deadline=None)
@given(slots())
def test_parse_dir_reads_as_the_slot_by_slot_reading(data: bytes) -> None:
    assert _parse_dir(data) == parse_slot_by_slot(data)
    assert _parse_dir(bytearray(data)) == parse_slot_by_slot(data)


@given(st.binary(min_size=11, max_size=11))
def test_lfn_checksum_is_the_specifications(short: bytes) -> None:
    assert _lfn_checksum(short) == checksum_by_the_spec(short)
