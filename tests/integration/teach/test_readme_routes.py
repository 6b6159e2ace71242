"""README.md, followed literally: its Python session runs as written, every page it links
exists, and each newcomer's route (teacher, CI developer) points at a page a test runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_python_session_runs_as_written(capsys) -> None:
    block = re.search(r"## In a Python session\n\n```python\n(.*?)```", README, flags=re.DOTALL)
    assert block, "README has no Python session block"
    exec(compile(block.group(1), "README.md", "exec"), {})  # noqa: S102 - the README's own example
    printed = capsys.readouterr().out
    assert "snapshot.create" in printed and "[WF-1c]" in printed


def test_every_linked_page_exists() -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    assert links
    missing = [link for link in links if not link.startswith("http") and not (ROOT / link).exists()]
    assert missing == []


def test_each_route_names_a_page_that_a_test_runs() -> None:
    rows = {line.split("|")[1].strip(): line for line in README.splitlines() if line.startswith("| ")}
    teacher = next(v for k, v in rows.items() if k.startswith("learning or teaching"))
    assert "vcbsim demo" in teacher and "docs/tutorial.md" in teacher  # test_teach_tutorial, test_teach_demo
    ci = next(v for k, v in rows.items() if k.startswith("testing backup software in CI"))
    assert "docs/pytest-fixtures.md" in ci  # test_pytest_fixtures_doc runs its example file
    tests = {p.name for p in (ROOT / "tests" / "integration" / "teach").glob("test_*.py")}
    assert {"test_teach_tutorial.py", "test_teach_demo.py", "test_pytest_fixtures_doc.py"} <= tests
