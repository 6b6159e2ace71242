"""Mutant modules import each other by plain name (pytest runs in importlib mode)."""

import sys
from pathlib import Path

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


def pytest_configure(config) -> None:  # noqa: ANN001 - pytest's hook signature
    config.addinivalue_line("markers", "slow: a certify run (minutes); runs only with KIT_SLOW=1 (tests/mutants)")


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ANN001 - pytest's hook signature
    """``slow`` tests here (certify runs: minutes each) run only with ``KIT_SLOW=1``; the normal
    run keeps a few quick-sized seeds and one quick run per variant."""
    import os

    import pytest

    if os.environ.get("KIT_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="a certify run: set KIT_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords and str(item.path).startswith(_HERE):
            item.add_marker(skip)
