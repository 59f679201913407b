"""Where data, caches and recorded results live: parameter > environment variable > default."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Dataset root: explicit argument, else $KDUTILS_DATA, else ~/.cache/kdutils/data."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("KDUTILS_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "kdutils" / "data"


def cache_dir() -> Path:
    """Checkpoints and teacher-logit caches: outside git ($KDUTILS_CACHE, else ~/.cache/kdutils)."""
    env = os.environ.get("KDUTILS_CACHE")
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "kdutils"
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir() -> Path:
    """The committed results store ($KDUTILS_RESULTS, else <repo>/results)."""
    env = os.environ.get("KDUTILS_RESULTS")
    return Path(env).expanduser() if env else REPO_ROOT / "results"
