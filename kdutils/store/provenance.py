"""What produced a number: git commit, device, library versions. Recorded with every run."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from functools import lru_cache

import numpy as np
import torch

from kdutils.paths import REPO_ROOT


def git_commit() -> dict[str, object]:
    """HEAD of the checkout kdutils runs from, and whether the tree had uncommitted changes.

    `KDUTILS_GIT_COMMIT` / `KDUTILS_GIT_DIRTY` (1/0) override it: the Ray executor sets them on a worker
    once it has checked that the worker's kdutils source is byte-identical to the driver's, since an
    installed copy there has no .git to ask."""
    if os.environ.get("KDUTILS_GIT_COMMIT"):
        return {"commit": os.environ["KDUTILS_GIT_COMMIT"], "dirty": os.environ.get("KDUTILS_GIT_DIRTY") == "1"}
    return checkout_commit()


@lru_cache(maxsize=1)
def checkout_commit() -> dict[str, object]:
    """What git says about the checkout kdutils runs from (asked once per process)."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        return done.stdout.strip() if done.returncode == 0 else ""
    try:
        commit = git("rev-parse", "HEAD") or "unknown"
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "unknown", False
    return {"commit": commit, "dirty": dirty}


def device_description(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def provenance(device: torch.device | str) -> dict[str, object]:
    return {
        **git_commit(),
        "device": device_description(device),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
