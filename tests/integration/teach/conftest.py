"""Fixtures of the teaching tests: an interpreter on a fresh demo host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vcbsim._repl import Interpreter
from vcbsim._teach_core import TeachSession


@pytest.fixture
def repl(tmp_path: Path) -> Iterator[Interpreter]:
    interp = Interpreter(TeachSession(tmp_path / "work"), width=160)
    yield interp
    interp.close()
