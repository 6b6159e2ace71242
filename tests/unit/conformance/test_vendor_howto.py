"""docs/vendor-howto.md runs as written: every ``python`` block in order in one namespace (a
block starting ``# file: NAME`` is written to that file instead), every ``$`` line of every
``console`` block (with the lines its trailing backslash continues, as a shell joins them) as a
command that must exit 0, all in one scratch folder. The toy adapter it contains is a vendor
adapter written only from the page; the page's blocks run it through the kit."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

HOWTO = Path(__file__).resolve().parents[3] / "docs" / "vendor-howto.md"
_BLOCK = re.compile(r"^```(python|console)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks() -> list[tuple[str, str]]:
    return [(m[1], m[2]) for m in _BLOCK.finditer(HOWTO.read_text(encoding="utf-8"))]


def test_the_howto_has_code_to_run() -> None:
    kinds = [k for k, _ in _blocks()]
    assert kinds.count("python") >= 5 and kinds.count("console") >= 4


def test_every_code_block_of_the_vendor_howto_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONSAFEPATH": "1",
           "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}
    namespace: dict[str, object] = {"__name__": "vendor_howto"}
    for n, (kind, body) in enumerate(_blocks()):
        if kind == "python":
            first = body.splitlines()[0]
            if first.startswith("# file: "):
                (tmp_path / first.removeprefix("# file: ").strip()).write_text(body, encoding="utf-8")
                continue
            exec(compile(body, f"vendor-howto block {n}", "exec"), namespace)  # noqa: S102 - the page's own code
            continue
        for line in body.replace("\\\n", " ").splitlines():  # a shell joins a line ending in \\
            if not line.startswith("$ "):
                continue
            argv = shlex.split(line[2:])
            if argv[0] == "vcbsim":
                argv = [sys.executable, "-m", "vcbsim", *argv[1:]]
            elif argv[0] == "python":
                argv = [sys.executable, *argv[1:]]
            done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,  # noqa: S603
                                  check=False)
            assert done.returncode == 0, f"{line}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert (tmp_path / "results" / "results.json").is_file()
