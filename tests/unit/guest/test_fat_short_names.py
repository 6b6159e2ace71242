"""A short (8.3) entry name is displayed as code page 437 decodes it, whichever way
``_short_display`` takes (the ASCII path that a walk of many files takes, or the codec), and a
FAT date converts to the same Unix time when it is asked for again (``_unix_time`` remembers)."""

from __future__ import annotations

import calendar

from hypothesis import given
from hypothesis import strategies as st

from vcbsim.simulator.guest import _fatentry as _fat


def by_codec(short: bytes, nt_flags: int) -> str:
    raw = bytearray(short)
    if raw[0] == 0x05:  # 0x05 stands for a leading 0xE5 (FAT specification)
        raw[0] = 0xE5
    base = raw[:8].decode("cp437").rstrip(" ")
    ext = raw[8:].decode("cp437").rstrip(" ")
    if nt_flags & 0x08:
        base = base.lower()
    if nt_flags & 0x10:
        ext = ext.lower()
    return f"{base}.{ext}" if ext else base


ascii_names = st.binary(min_size=11, max_size=11).map(lambda b: bytes(0x20 + x % 0x5F for x in b))


@given(st.one_of(ascii_names, st.binary(min_size=11, max_size=11)), st.sampled_from([0, 0x08, 0x10, 0x18]))
def test_short_names_display_as_code_page_437_decodes_them(short: bytes, nt_flags: int) -> None:
    assert _fat._short_display(short, nt_flags) == by_codec(short, nt_flags)


def test_a_leading_0x05_is_shown_as_0xe5() -> None:
    assert _fat._short_display(b"\x05BC     TXT", 0) == by_codec(b"\x05BC     TXT", 0) == "\u03c3BC.TXT"


@given(st.integers(0, 127), st.integers(1, 12), st.integers(1, 28), st.integers(0, 23), st.integers(0, 59),
       st.integers(0, 29), st.integers(0, 199))
def test_fat_times_convert_the_same_every_time(year: int, month: int, day: int, hour: int, minute: int,
                                              half_seconds: int, tenths: int) -> None:
    d, tt = (year << 9) | (month << 5) | day, (hour << 11) | (minute << 5) | half_seconds
    want = calendar.timegm((1980 + year, month, day, hour, minute, half_seconds * 2, 0, 0, 0)) + tenths / 100
    assert _fat._unix_time(d, tt, tenths) == want
    assert _fat._unix_time(d, tt, tenths) == want
