"""Atomic file writes (JSON, bytes, torch) and a checked tensor loader: the small io layer under the results
store, the dataset caches and the checkpoints (it imports nothing from kdutils).

Writes fail with one line naming the path (`StorageError`): a folder that cannot be written is found before
any work that would write there (`check_writable`), and a full disk is named as such (torch's own message for
it is "unexpected pos 1088 vs 982")."""
from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any



#: Below this many free bytes a failed write is reported as a full disk.
FULL_DISK_BYTES = 1 << 20


class StorageError(OSError):
    """A file kdutils must write cannot be written (folder read-only or a file, disk full); names the path."""

    def __str__(self) -> str:  # one line, without the "[Errno 28]" prefix
        return str(self.strerror)


def _free_bytes(folder: Path) -> int | None:
    """Free bytes on the disk holding `folder` (None if it cannot be asked)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _disk_full(err: BaseException, free: int | None) -> bool:
    """Did this write fail because the disk is full? ENOSPC/EDQUOT anywhere in the chain, or any failure with
    (almost) no space left (torch's zip writer reports a full disk as "unexpected pos ...")."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__ or seen.__context__
    return free is not None and free < FULL_DISK_BYTES


def _full_disk_error(path: Path, free: int | None, code: int = errno.ENOSPC) -> StorageError:
    where = f" ({free} bytes free)" if free is not None else ""
    return StorageError(code, f"no space left on the disk holding {path}{where} while writing it: free space "
                              "there, or set KDUTILS_CACHE / KDUTILS_RESULTS to a folder on another disk")


_WRITABLE: set[str] = set()  # folders found writable in this process


def check_writable(folder: Path, what: str) -> Path:
    """Make sure files can be created in `folder` (made if missing) before work that will write there;
    StorageError naming it otherwise. Creating a file is the only test that sees a read-only mount as root."""
    folder = Path(folder)
    if str(folder) in _WRITABLE:
        return folder
    if folder.exists() and not folder.is_dir():
        raise StorageError(errno.ENOTDIR, f"the {what} {folder} is a file, not a folder: move it, or point the "
                                          "variable elsewhere")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise StorageError(err.errno or errno.EACCES, f"the {what} {folder} cannot be written "
                           f"({err.strerror or err}): nothing was trained; make it writable or point the variable "
                           "at a writable folder") from None
    _WRITABLE.add(str(folder))
    return folder


def _default_mode() -> int:
    """0o666 minus the process umask: what `open()` would give (mkstemp's files are 0600)."""
    try:  # Linux shows the umask without changing it (os.umask would, for a moment, for every thread)
        with open("/proc/self/status") as fh:
            umask = next(int(line.split()[1], 8) for line in fh if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: Path, blob: bytes) -> None:
    """Write bytes atomically (checkpoints and notebooks a Ray worker sends back), with normal file modes."""
    _atomic_write(path, lambda fh: fh.write(blob))


def _atomic_write(path: Path, write) -> None:
    """Call `write(binary_file)` on a temporary file next to `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _full_disk_error(path, _free_bytes(path.parent), err.errno) from err
        raise
    try:
        os.fchmod(fd, _default_mode())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        free = _free_bytes(path.parent) if isinstance(err, Exception) else None  # before the partial file goes
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, Exception) and not isinstance(err, StorageError) and _disk_full(err, free):
            raise _full_disk_error(path, free) from err
        raise


def atomic_write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON so that readers never see a half-written file, even if this process is killed."""
    _atomic_write(path, lambda fh: fh.write(json.dumps(payload, indent=1, sort_keys=True).encode()))


def atomic_torch_save(obj: Any, path: Path) -> None:
    """`torch.save` with the same guarantee: a killed process leaves the old file or the new one."""
    import torch

    _atomic_write(path, lambda fh: torch.save(obj, fh))


class DamagedFileError(ValueError):
    """A file kdutils wrote is unreadable (truncated, not the format expected); the message names it."""


def load_tensors(path: Path) -> Any:
    """`torch.load(path, weights_only=True)`, with a damaged file reported as DamagedFileError naming it."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # zip reader errors, EOFError, OSError(22), unpickling errors...
        raise DamagedFileError(f"{path}: damaged file ({type(err).__name__}: {err})") from err
