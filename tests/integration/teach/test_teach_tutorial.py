"""docs/tutorial.md: every example in it runs, with the output it shows."""

from __future__ import annotations

import doctest
import os
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[3] / "docs" / "tutorial.md"


def test_tutorial_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = doctest.testfile(
        os.fspath(TUTORIAL),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        raise_on_error=False,
        report=True,
        verbose=False,
    )
    assert result.attempted >= 20
    assert result.failed == 0, f"{result.failed} of {result.attempted} tutorial examples failed (see the output above)"


def test_the_repl_module_docstring() -> None:
    from vcbsim import _repl

    result = doctest.testmod(_repl, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 2 and result.failed == 0
