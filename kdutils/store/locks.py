"""One writer per run: an exclusive lock file per run key, so two processes never train the same run.

Why: two sweeps (or `python -m kdutils run`s) of one chapter into one results folder used to train every run
twice, the last writer winning; on a GPU a teacher's record and checkpoint could then come from another
training than the students distilled from it. Now whoever trains a run holds `<results>/.locks/<experiment>/
<key>.lock`; a second writer waits, then finds the record and loads it.

The lock is `fcntl.flock` on that file: the kernel drops it when its holder exits in any way, SIGKILL and
power loss included, so a killed writer leaves no stale lock and nothing has to be cleaned up (the file stays:
removing a lock file under a waiting process would let two holders in). The holder writes its pid, host and
start time into the file, only so that a waiting process can say whom it waits for. Locks are re-entrant
within a process (a run that trains its teacher, a teacher rebuilt while a group holds it). Several locks are
taken in sorted path order, so two processes each wanting the same set cannot deadlock.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

#: Seconds between tries while another process holds a lock.
POLL_S = 0.2

_held: dict[str, list[int]] = {}  # resolved path -> [fd, depth] for locks this process holds
_guard = threading.Lock()
_unlockable: set[str] = set()  # folders whose filesystem refused flock (warned once each)


def holder(path: str | os.PathLike) -> dict | None:
    """What the lock file says about its last holder ({"pid", "host", "since"}), or None if unreadable."""
    try:
        info = json.loads(Path(path).read_text() or "null")
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _describe(path: Path) -> str:
    info = holder(path) or {}
    return (f"pid {info.get('pid', '?')} on host {info.get('host', '?')} since {info.get('since', '?')}"
            if info else "another process")


def _try_lock(path: Path) -> int | None:
    """An fd holding the flock of `path`, or None if another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)  # no O_TRUNC: it may be someone else's
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError as err:
        if err.errno not in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP):
            os.close(fd)
            raise
        if str(path.parent) not in _unlockable:  # a filesystem without flock: train anyway, but say so
            _unlockable.add(str(path.parent))
            warnings.warn(f"{path.parent}: this filesystem does not support file locks ({err.strerror}); two "
                          "processes writing this results folder at once may train the same run twice",
                          RuntimeWarning, stacklevel=4)
    except BaseException:
        os.close(fd)
        raise
    stamp = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                        "since": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    os.ftruncate(fd, 0)
    os.pwrite(fd, stamp.encode(), 0)
    return fd


def _acquire(path: Path, deadline: float | None) -> None:
    key = str(path.resolve())
    with _guard:
        if key in _held:
            _held[key][1] += 1
            return
    said = False
    while (fd := _try_lock(path)) is None:
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"{path} is held by {_describe(path)}")
        if not said:
            print(f"kdutils: waiting for {path.stem} (held by {_describe(path)}): it is being trained there; "
                  "its record is loaded once it is done", file=sys.stderr, flush=True)
            said = True
        time.sleep(POLL_S)
    with _guard:
        _held[key] = [fd, 1]


def _release(path: Path) -> None:
    key = str(path.resolve())
    with _guard:
        entry = _held[key]
        entry[1] -= 1
        if entry[1]:
            return
        del _held[key]
    os.close(entry[0])  # closing the fd drops the flock


def _room_for(n: int) -> None:
    """Each held lock is an open file: raise the soft open-file limit (to at most the hard one) when a large
    sweep holds many at once."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = len(_held) + n + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))


@contextmanager
def hold(paths: Iterable[str | os.PathLike], timeout: float | None = None) -> Iterator[None]:
    """Hold the locks of `paths` (in sorted order) for the block, waiting for other holders; `timeout`
    seconds at most (None: as long as it takes; a training run can take hours), else TimeoutError naming
    the holder."""
    ordered = sorted({Path(p) for p in paths}, key=str)
    _room_for(len(ordered))
    deadline = None if timeout is None else time.monotonic() + timeout
    taken: list[Path] = []
    try:
        for path in ordered:
            _acquire(path, deadline)
            taken.append(path)
        yield
    finally:
        for path in reversed(taken):
            _release(path)


__all__ = ["POLL_S", "hold", "holder"]
