"""docs/pytest-fixtures.md: the CI developer's route, followed literally.

The page's complete example test file is extracted from the page as it is and run by pytest in
a child process (the plugin comes from the installed ``pytest11`` entry point, as in a user's
project), from a folder outside the checkout.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[3] / "docs" / "pytest-fixtures.md"
README = Path(__file__).resolve().parents[3] / "README.md"


def _example() -> str:
    text = PAGE.read_text(encoding="utf-8")
    section = text.split("## A complete example", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert blocks, "docs/pytest-fixtures.md has no python block under 'A complete example'"
    return blocks[0]


def _pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONSAFEPATH"] = "1"  # the checkout's vcbsim/ folder must not shadow the installed package
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


def test_the_example_test_file_passes_as_written(tmp_path: Path) -> None:
    example = tmp_path / "test_with_vcbsim.py"
    example.write_text(_example(), encoding="utf-8")
    done = _pytest(tmp_path, example.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b8 passed\b", done.stdout), done.stdout


def test_the_example_runs_on_another_profile(tmp_path: Path) -> None:
    example = tmp_path / "test_with_vcbsim.py"
    example.write_text(_example(), encoding="utf-8")
    done = _pytest(tmp_path, example.name, "--kit-host-profile", "esxi-7.0", "-k", "served or snapshot")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_example_runs_with_small_disks(tmp_path: Path) -> None:
    example = tmp_path / "test_with_vcbsim.py"
    example.write_text(_example(), encoding="utf-8")
    done = _pytest(tmp_path, example.name, "--kit-small-disks")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_broken_product_fails_the_example(tmp_path: Path) -> None:
    """The example's assertions can fail: a test that expects a third demo VM does."""
    example = tmp_path / "test_with_vcbsim.py"
    example.write_text(_example().replace('["rhel5-web", "win2003-sql"]', '["rhel5-web", "win2003-sql", "x"]', 1),
                       encoding="utf-8")
    done = _pytest(tmp_path, example.name, "-k", "two_vms")
    assert done.returncode == 1, done.stdout + done.stderr


def test_the_readme_ci_row_links_the_page() -> None:
    readme = README.read_text(encoding="utf-8")
    ci_row = next(line for line in readme.splitlines() if line.startswith("| testing backup software in CI"))
    assert "docs/pytest-fixtures.md" in ci_row and "vsphere_server" in ci_row and "esx_host" in ci_row
