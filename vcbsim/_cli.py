"""The ``vcbsim`` command (placeholder until the verbs land)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("vcbsim: no verbs yet", file=sys.stderr)
    return 2
