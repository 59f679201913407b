"""Pack what a GPU run recorded into a few files that travel back, and unpack them into `results/`.

Why: from the device machine at most 8 files of at most 16 MiB come back. The run's new and changed files
under the results folder (records, benchmark records, the run's own report) go into one tar.gz, split into
numbered parts when it is larger than a part may be. Unpacking refuses to overwrite a record whose content
differs (a record is evidence: a second run of the same config must not silently replace the first) and
writes nothing at all if any record would be refused; benchmark figures are measurements that a newer run
replaces, and are listed as replaced.
"""
from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path, PurePosixPath
from typing import Iterable

from kdutils.store.io import atomic_write_bytes

ARCHIVE = "kdutils-gpu-results.tar.gz"
MAX_FILES = 8
MAX_PART_BYTES = 16 * 2**20


def snapshot(root: Path) -> dict[str, str]:
    """{path relative to root: sha256} of every file under `root` (what was there before a run)."""
    if not root.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def changed_since(root: Path, before: dict[str, str]) -> list[str]:
    """Files under `root` that are new or whose content changed since `before` (sorted)."""
    return [rel for rel, digest in snapshot(root).items() if before.get(rel) != digest]


def pack(root: Path, files: Iterable[str], out_dir: Path, *, max_part_bytes: int = MAX_PART_BYTES,
         max_parts: int = MAX_FILES - 2) -> list[Path]:
    """Write `files` (relative to `root`) as ARCHIVE in `out_dir`, split into ARCHIVE.partNN when larger than
    `max_part_bytes`; returns the files written. Earlier parts of the archive in `out_dir` are removed first,
    so packing again after each chapter leaves one consistent set."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob(ARCHIVE + "*"):
        old.unlink()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for rel in sorted(set(files)):
            info = tarfile.TarInfo(rel)
            data = (root / rel).read_bytes()
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    blob = buf.getvalue()
    parts = [blob[i:i + max_part_bytes] for i in range(0, len(blob), max_part_bytes)] or [blob]
    if len(parts) > max_parts:
        raise ValueError(f"the packed results are {len(blob) / 2**20:.1f} MiB, more than {max_parts} parts of "
                         f"{max_part_bytes / 2**20:.0f} MiB may carry")
    if len(parts) == 1:
        (out_dir / ARCHIVE).write_bytes(blob)
        return [out_dir / ARCHIVE]
    written = []
    for i, part in enumerate(parts):
        path = out_dir / f"{ARCHIVE}.part{i:02d}"
        path.write_bytes(part)
        written.append(path)
    return written


def _safe(name: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"refusing archive member {name!r}: only relative paths inside the results folder")
    return path.as_posix()


def read_archive(files: Iterable[Path]) -> dict[str, bytes]:
    """{relative path: content} from ARCHIVE or its parts (given in any order; parts are joined by number)."""
    files = sorted(Path(f) for f in files)
    archives = [f for f in files if f.name.startswith(ARCHIVE)]
    if not archives:
        raise ValueError(f"no {ARCHIVE} (or {ARCHIVE}.partNN) among {', '.join(str(f) for f in files) or 'no files'}")
    blob = b"".join(f.read_bytes() for f in archives)
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                raise ValueError(f"refusing archive member {member.name!r}: not a plain file")
            reader = tar.extractfile(member)
            if reader is None:  # a plain file always has a reader; kept so a broken archive fails by name
                raise ValueError(f"cannot read archive member {member.name!r}")
            out[_safe(member.name)] = reader.read()
    return out


#: Folders of measurements that a newer run replaces (benchmark figures, like `kdutils bench --record`); every
#: other file is a run's record, which is never replaced.
REPLACEABLE = ("bench/",)


def unpack(files: Iterable[Path], root: Path) -> dict[str, list[str]]:
    """Write the archive's files under `root`: new files are written, identical ones left alone, differing
    benchmark figures (`REPLACEABLE`) replaced; if any other existing file differs, nothing is written and
    ValueError lists them. Returns {"written", "identical", "replaced"}."""
    contents = read_archive(files)
    differing = [rel for rel, data in contents.items() if (root / rel).is_file() and (root / rel).read_bytes() != data]
    refused = [rel for rel in differing if not rel.startswith(REPLACEABLE)]
    if refused:
        raise ValueError(f"refusing to overwrite {len(refused)} differing record(s) under {root}: "
                         + ", ".join(refused[:10]) + (" ..." if len(refused) > 10 else "")
                         + "; nothing was written")
    report: dict[str, list[str]] = {"written": [], "identical": [], "replaced": []}
    for rel, data in sorted(contents.items()):
        target = root / rel
        if target.is_file() and rel not in differing:
            report["identical"].append(rel)
            continue
        report["replaced" if rel in differing else "written"].append(rel)
        atomic_write_bytes(target, data)
    return report


__all__ = ["ARCHIVE", "MAX_FILES", "MAX_PART_BYTES", "REPLACEABLE", "changed_since", "pack", "read_archive", "snapshot", "unpack"]
