"""Atomic file writes (JSON, bytes, torch) and a checked tensor loader: the small io layer under the results
store, the dataset caches and the checkpoints (it imports nothing from kdutils)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any



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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _default_mode())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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
