"""The results store: one JSON record per run, named by the run config's hash, written atomically.

Records live in `<results>/<experiment>/<key>.json` and are committed to git so the book renders numbers
recorded elsewhere (a GPU run shows up on a CPU-only build). A write goes to a temporary file in the same
folder and is renamed over the target, so a killed process leaves either the old record or the new one;
checkpoints and cached tensors are written the same way (`kdutils.store.io`).

A damaged record never takes the store down: `get` treats it as missing (so a run rewrites it),
`records`/`table` skip it, and each damaged file is warned about once with its path and what to do;
`damaged()` lists them, so a report can show them instead of crashing. Damaged means: truncated or not JSON,
not an object, missing a required field (`REQUIRED`), a `config` or `metrics` that is not an object, or a
`key` other than the file's name (a record copied or renamed over another's file would otherwise make one
run vanish and another count twice: the content is trusted, not the file name). Files named like a key
(16 hex digits, `RECORD_NAME`) are records, and so is any other JSON file that says it is one (an object with
a `key` or a `status`); other JSON files in the results folder (benchmarks, pictures) are neither records nor
damaged.

Before anything trains, `check_writable` makes sure the records and checkpoints can be written (a results
path that is a file, a read-only mount), and `lock_path` names the lock a process holds while it trains a run
(`kdutils.store.locks`).
"""
from __future__ import annotations

import errno
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, Iterator, Protocol

from kdutils.paths import cache_dir, results_dir
from kdutils.store.io import StorageError, atomic_write_json, check_writable

#: Statuses of a run that ended (kept, loaded and shown): trained fine, stopped by a non-finite or exploding
#: loss, or trained to the end but evaluated at chance level (see `runner.chance_status`). A failed run is
#: a result too: verdicts count it against its arm instead of dropping it.
FINISHED = ("ok", "diverged", "chance")

#: Fields every run record has (`put` writes them); a record without one is damaged.
REQUIRED = ("status", "key", "config")
#: A run record's file name: its key, 16 hex digits (`config.config_hash`).
RECORD_NAME = re.compile(r"[0-9a-f]{16}\.json")


class Recordable(Protocol):
    """What the store reads of a run's config: its experiment (the folder), its key (the file name) and its
    dict (stored in the record). `kdutils.config.RunConfig` is one; a chapter's own run description (the
    fidelity chapter's `DistillSpec`) is another."""

    @property
    def experiment(self) -> str: ...

    def key(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


class ResultStore:
    """Run records on disk, keyed by `RunConfig.key()`."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else results_dir()
        self._damaged: dict[Path, str] = {}

    def path(self, cfg: Recordable) -> Path:
        return self.root / cfg.experiment / f"{cfg.key()}.json"

    def lock_path(self, cfg: Recordable) -> Path:
        """The lock file a process holds while it trains `cfg` (see `kdutils.store.locks`); next to the
        records, so every writer into this results folder sees it, whatever its cache."""
        return self.root / ".locks" / cfg.experiment / f"{cfg.key()}.lock"

    def check_writable(self) -> None:
        """StorageError now, naming the folder, if the records or the checkpoints could not be written later."""
        check_writable(self.root, "results folder ($KDUTILS_RESULTS)")
        try:
            cache = cache_dir()
        except OSError as err:
            raise StorageError(err.errno or errno.EACCES, f"the cache folder ($KDUTILS_CACHE) cannot be made "
                               f"({err.strerror or err}: {err.filename})") from None
        check_writable(cache, "cache folder ($KDUTILS_CACHE)")

    def checkpoint_path(self, cfg: Recordable) -> Path:
        """Model weights stay outside git, in the cache folder."""
        return cache_dir() / "checkpoints" / cfg.experiment / f"{cfg.key()}.pt"

    def get(self, cfg: Recordable) -> dict[str, Any] | None:
        """The finished record of this exact config, or None."""
        path = self.path(cfg)
        if not path.exists():
            return None
        record = self._read(path)
        return record if record is not None and record.get("status") in FINISHED else None

    def _read(self, path: Path) -> dict[str, Any] | None:
        """A record, or None (with a warning naming the file, once) when the file is damaged."""
        try:
            record = json.loads(path.read_text())
            problem = _record_problem(record, path)
            if problem:
                raise ValueError(problem)
        except (ValueError, UnicodeDecodeError) as err:
            if path not in self._damaged:
                self._damaged[path] = f"{type(err).__name__}: {err}"
                warnings.warn(f"damaged run record {path} ({type(err).__name__}: {err}); it is skipped (treated "
                              "as not yet run). Move it aside (e.g. `mv` it out of the results folder) or rerun "
                              "its config, which rewrites it.", RuntimeWarning, stacklevel=3)
            return None
        self._damaged.pop(path, None)
        return record

    def damaged(self, experiment: str | None = None) -> dict[Path, str]:
        """Damaged record files seen (all of `experiment`'s after scanning them) -> what is wrong with each."""
        for _ in self.records(experiment):
            pass
        prefix = self.root / experiment if experiment else self.root
        return {p: why for p, why in self._damaged.items() if prefix in p.parents}

    def put(self, cfg: Recordable, record: dict[str, Any]) -> dict[str, Any]:
        record = {**record, "key": cfg.key(), "config": cfg.to_dict()}
        record = json.loads(json.dumps(record))  # return exactly what a later `get` will read back
        atomic_write_json(self.path(cfg), record)
        return record

    def records(self, experiment: str | None = None) -> Iterator[dict[str, Any]]:
        """Every finished record (optionally of one experiment); temporary files are skipped."""
        folders = [self.root / experiment] if experiment else sorted(p for p in self.root.glob("*") if p.is_dir())
        for folder in folders:
            for path in sorted(p for p in folder.glob("*.json") if RECORD_NAME.fullmatch(p.name) or _claims(p)):
                record = self._read(path)
                if record is not None and record.get("status") in FINISHED:
                    yield record

    def table(self, experiment: str | None = None, **where: Any):
        """Records as a pandas DataFrame: flattened config columns (`config.tau`, ...) and metric columns."""
        import pandas as pd

        rows = []
        for rec in self.records(experiment):
            row = _flatten({"config": rec["config"]})
            row.update({k: v for k, v in rec.get("metrics", {}).items()})
            row.update({"status": rec["status"], "key": rec["key"], "device": rec.get("provenance", {}).get("device"),
                        "commit": rec.get("provenance", {}).get("commit"), "wall_time_s": rec.get("wall_time_s"),
                        "n_train": rec.get("n_train"), "n_test": rec.get("n_test")})
            if all(row.get(f"config.{k}") == v for k, v in where.items()):
                rows.append(row)
        return pd.DataFrame(rows)


def _claims(path: Path) -> bool:
    """Does a file not named like a key still say it is a run record (an object with a key or a status)?"""
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(content, dict) and ("key" in content or "status" in content)


def _record_problem(record: Any, path: Path) -> str:
    """What makes `record` (read from `path`) not a usable run record; "" if nothing."""
    if not isinstance(record, dict):
        return f"a record is a JSON object, this file holds a {type(record).__name__}"
    missing = [name for name in REQUIRED if name not in record]
    if missing:
        return f"missing required field(s) {', '.join(map(repr, missing))}"
    if record["key"] != path.stem:
        return (f"its content is the record of key {record['key']!r}, not of {path.stem!r} (its file name): "
                "a record copied or renamed over another's file")
    for name in ("config", "metrics"):
        if name in record and not isinstance(record[name], dict):
            return f"{name!r} is a {type(record[name]).__name__}, not an object"
    return ""


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and k != "options" and k != "model_kwargs":
            out.update(_flatten(v, name + "."))
        else:
            out[name] = v if not isinstance(v, (dict, list)) else json.dumps(v, sort_keys=True)
    return out
