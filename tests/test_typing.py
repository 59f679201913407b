"""The shared core (and each chapter in CLEAN_CHAPTERS) type-checks: mypy, with the project's settings ([tool.mypy] in pyproject.toml), finds no error.

Why a test: a value that may be None used as if it were there, or an annotation that says one thing while the
code does another, is found by mypy before a run hits it, but only if every change is checked. The chapters
are not covered yet (`mypy kdutils/chapters` lists what is left there). requirements.txt installs mypy; where
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


#: Chapters that type-check as cleanly as the core (the others are listed by `mypy kdutils/chapters`).
CLEAN_CHAPTERS = ("hinton", "ls_kd", "invariance", "tgeo", "does_kd_work")


def core_modules() -> list[Path]:
    """Every module of kdutils except the chapters', plus the chapters in CLEAN_CHAPTERS."""
    def checked(p: Path) -> bool:
        parts = p.relative_to(ROOT / "kdutils").parts
        return parts[0] != "chapters" or (len(parts) > 2 and parts[1] in CLEAN_CHAPTERS)
    return [p for p in (ROOT / "kdutils").rglob("*.py") if checked(p)]


def test_mypy_finds_no_error_in_the_core():
    pytest.importorskip("mypy", reason="mypy is not installed (requirements.txt installs it): the core was not "
                                       "type-checked in this run")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "pyproject.toml"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mypy found errors in the core:\n{out[-6000:]}"
    checked = re.search(r"no issues found in (\d+) source files", out)
    assert checked, out
    # the settings name the whole core: a narrowed `files` (or a wider `exclude`) would pass by checking less
    assert int(checked.group(1)) == len(core_modules()), (checked.group(1), len(core_modules()))
