"""All of kdutils, every chapter included, type-checks: mypy, with the project's settings ([tool.mypy] in
pyproject.toml), finds no error.

Why a test: a value that may be None used as if it were there, or an annotation that says one thing while the
code does another, is found by mypy before a run hits it, but only if every change is checked. requirements.txt
installs mypy; where
it is missing the test is skipped, not passed. Its cache (.cache/mypy, git-ignored) makes a rerun take seconds.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def all_modules() -> list[Path]:
    """Every module of kdutils, the chapters' included."""
    return list((ROOT / "kdutils").rglob("*.py"))


def test_mypy_finds_no_error_in_kdutils():
    pytest.importorskip("mypy", reason="mypy is not installed (requirements.txt installs it): kdutils was not "
                                       "type-checked in this run")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "pyproject.toml"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mypy found errors:\n{out[-6000:]}"
    checked = re.search(r"no issues found in (\d+) source files", out)
    assert checked, out
    # the settings name the whole package: a narrowed `files` (or an `exclude`) would pass by checking less
    assert int(checked.group(1)) == len(all_modules()), (checked.group(1), len(all_modules()))
