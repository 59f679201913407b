"""What produced a number: git commit, the kdutils source it ran, device, library versions. Recorded with every run.

`dirty` (kept for every record) says whether any tracked file differed from the commit: a notebook's outputs or
a record make it true, so it says nothing about the code. Records made since the source hash came in also carry
`kdutils_sha256` (SHA-256 over kdutils' *.py files: relative path and bytes, sorted) and `kdutils_dirty`
(whether that source differs from the same hash over the commit's blobs). `code_in_commit` reads either kind of
record; `not_in_commit` lists the records a verdict rests on whose code is not provably in a commit.
"""
from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, TypedDict

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


PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the kdutils package (this file is kdutils/store/provenance.py)


def _digest(files: Iterable[tuple[str, bytes]]) -> str:
    """SHA-256 over (relative path, bytes) pairs in path order: equal iff the same files hold the same bytes."""
    digest = hashlib.sha256()
    for rel, data in sorted(files):
        digest.update(rel.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()


def source_sha256(root: Path = PACKAGE_DIR) -> str:
    """The hash of the kdutils source on disk (every *.py below `root`, caches excluded)."""
    return _digest((p.relative_to(root).as_posix(), p.read_bytes()) for p in root.rglob("*.py")
                   if "__pycache__" not in p.parts)


def committed_source_sha256(commit: str = "HEAD", root: Path = PACKAGE_DIR) -> str | None:
    """The same hash over the blobs `commit` holds for `root` (git ls-tree + cat-file); None without git."""
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True,
                             timeout=10)
        if top.returncode:
            return None
        top_dir = Path(top.stdout.strip()).resolve()
        prefix = root.resolve().relative_to(top_dir).as_posix()
        tree = subprocess.run(["git", "ls-tree", "-r", "-z", commit, "--", prefix], cwd=top_dir, capture_output=True,
                              timeout=30)
        if tree.returncode:
            return None
        entries = []
        for item in tree.stdout.decode().split("\0"):
            if not item:
                continue
            meta, path = item.split("\t", 1)
            _, kind, sha = meta.split()
            if kind == "blob" and path.endswith(".py"):
                entries.append((path[len(prefix) + 1:], sha))
        batch = subprocess.run(["git", "cat-file", "--batch"], cwd=top_dir, capture_output=True, timeout=60,
                               input="".join(f"{sha}\n" for _, sha in entries).encode())
        if batch.returncode:
            return None
        out, pos, files = batch.stdout, 0, []
        for rel, _ in entries:  # each answer: "<sha> blob <size>\n<bytes>\n"
            nl = out.index(b"\n", pos)
            size = int(out[pos:nl].split()[2])
            files.append((rel, out[nl + 1:nl + 1 + size]))
            pos = nl + 1 + size + 1
        return _digest(files)
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


class SourceState(TypedDict):
    """`source_state`'s answer, as recorded in a run's provenance."""

    kdutils_sha256: str
    kdutils_dirty: bool | None


def source_state() -> SourceState:
    """This process's kdutils source hash and whether it differs from HEAD's (None when unknown). The Ray
    executor passes the driver's answer in `KDUTILS_SOURCE_DIRTY` to workers that have no .git."""
    sha, dirty = _local_source_state()
    env = os.environ.get("KDUTILS_SOURCE_DIRTY")
    if env in ("0", "1"):
        dirty = env == "1"
    return {"kdutils_sha256": sha, "kdutils_dirty": dirty}


@lru_cache(maxsize=1)
def _local_source_state() -> tuple[str, bool | None]:
    """Hashed once per process, like `checkout_commit`."""
    sha = source_sha256()
    committed = committed_source_sha256()
    return sha, None if committed is None else committed != sha


def code_in_commit(record: Mapping[str, Any]) -> bool | None:
    """Was the record's kdutils source exactly the commit it names? From `kdutils_dirty` when recorded; for
    older records from `dirty` (a clean tree means yes; a dirty one cannot tell: None)."""
    prov = record.get("provenance") or {}
    if prov.get("kdutils_dirty") is not None:
        return not prov["kdutils_dirty"]
    if prov.get("commit") in (None, "unknown"):
        return None
    return True if prov.get("dirty") is False else None


def not_in_commit(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records whose code is not provably in a commit (source differed, or an old record from a dirty tree)."""
    return [r for r in records if code_in_commit(r) is not True]


def code_status_sentence(records: Iterable[Mapping[str, Any]]) -> str:
    """E.g. "139 of 140 records: code not provably in a commit (139 made from a dirty tree before the source hash
    was recorded)", or "all 84 records: code in the commit named"."""
    recs = list(records)
    if not recs:
        return "no records"
    bad = not_in_commit(recs)
    if not bad:
        return f"all {len(recs)} records: code in the commit named"
    prov = [r.get("provenance") or {} for r in bad]
    differed = sum(1 for p in prov if p.get("kdutils_dirty") is True)
    no_commit = sum(1 for p in prov if p.get("kdutils_dirty") is None and p.get("commit") in (None, "unknown"))
    dirty = len(bad) - differed - no_commit
    why = [f"{n} {text}" for n, text in ((dirty, "made from a dirty tree before the source hash was recorded"),
                                         (differed, "with source that differed from the commit"),
                                         (no_commit, "with no commit recorded")) if n]
    return f"{len(bad)} of {len(recs)} records: code not provably in a commit ({', '.join(why)})"


def device_description(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def provenance(device: torch.device | str) -> dict[str, object]:
    return {
        **git_commit(),
        **source_state(),
        "device": device_description(device),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
