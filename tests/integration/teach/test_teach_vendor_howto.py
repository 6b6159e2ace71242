"""docs/vendor-howto.md: the example adapter it shows is real code that the kit accepts."""

from __future__ import annotations

import io
import re
import sys
import types
from pathlib import Path

import pytest

HOWTO = Path(__file__).resolve().parents[3] / "docs" / "vendor-howto.md"


def _toy_module() -> types.ModuleType:
    blocks = re.findall(r"```python\n(.*?)```", HOWTO.read_text(encoding="utf-8"), re.S)
    source = next(b for b in blocks if "class ToyBackup" in b)
    mod = types.ModuleType("vendor_howto_toy")
    sys.modules[mod.__name__] = mod
    try:
        exec(compile(source, str(HOWTO), "exec"), mod.__dict__)
    finally:
        del sys.modules[mod.__name__]
    return mod


def test_the_toy_adapter_passes_the_image_backup_scenario() -> None:
    from vcbsim.conformance import run

    toy = _toy_module()
    out = io.StringIO()
    result = run(toy.ToyBackup, profile="dev", seed=1, scenarios=["image-backup"], explore=False, out=out)
    assert result.ok, out.getvalue()
    assert "1 cases: 1 pass" in out.getvalue()


def test_the_toy_adapter_cleans_up_after_a_failed_commit() -> None:
    """The how-to's toy reports a failed commit as a failed job and removes the stale snapshot
    before its next job (recorded before that job's op.invoke): the scenario passes."""
    from vcbsim.conformance import run

    toy = _toy_module()
    out = io.StringIO()
    result = run(toy.ToyBackup, profile="dev", seed=1, scenarios=["commit-fails-then-next-run-cleans"],
                 explore=False, out=out)
    assert result.ok, out.getvalue()
    assert "1 cases: 1 pass" in out.getvalue()


def test_the_toy_adapter_is_caught_leaving_a_snapshot_behind() -> None:
    """The toy changed to ignore a failed commit (as the how-to's toy did before it was rewritten)
    reports success with its snapshot still on the VM, and the kit names it."""
    from vcbsim.conformance import ConformanceViolation, run

    toy = _toy_module()

    class IgnoresAFailedCommit(toy.ToyBackup):
        def _op(self, host, vm, step, op, call, **details):
            try:
                return super()._op(host, vm, step, op, call, **details)
            except Exception:
                if step != "WF-3b":
                    raise
                return None  # the removal failed (op.fail is recorded); carry on as if it had not

    with pytest.raises(ConformanceViolation) as info:
        run(IgnoresAFailedCommit, profile="dev", seed=1, scenarios=["commit-fails-then-next-run-cleans"],
            explore=False, out=io.StringIO())
    assert info.value.rule_id == "EV-OUTCOME-TRUE", info.value
    assert "'_VCB-BACKUP_'" in str(info.value) and "is still on the VM" in str(info.value)
