"""The results store: one JSON record per run, named by the run config's hash, written atomically.

Records live in `<results>/<experiment>/<key>.json` and are committed to git so the book renders numbers
recorded elsewhere (a GPU run shows up on a CPU-only build). A write goes to a temporary file in the same
folder and is renamed over the target, so a killed process leaves either the old record or the new one.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .config import RunConfig
from .paths import cache_dir, results_dir

FINISHED = ("ok", "diverged")


def atomic_write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON so that readers never see a half-written file, even if this process is killed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ResultStore:
    """Run records on disk, keyed by `RunConfig.key()`."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else results_dir()

    def path(self, cfg: RunConfig) -> Path:
        return self.root / cfg.experiment / f"{cfg.key()}.json"

    def checkpoint_path(self, cfg: RunConfig) -> Path:
        """Model weights stay outside git, in the cache folder."""
        return cache_dir() / "checkpoints" / cfg.experiment / f"{cfg.key()}.pt"

    def get(self, cfg: RunConfig) -> dict[str, Any] | None:
        """The finished record of this exact config, or None."""
        path = self.path(cfg)
        if not path.exists():
            return None
        record = json.loads(path.read_text())
        return record if record.get("status") in FINISHED else None

    def put(self, cfg: RunConfig, record: dict[str, Any]) -> dict[str, Any]:
        record = {**record, "key": cfg.key(), "config": cfg.to_dict()}
        record = json.loads(json.dumps(record))  # return exactly what a later `get` will read back
        atomic_write_json(self.path(cfg), record)
        return record

    def records(self, experiment: str | None = None) -> Iterator[dict[str, Any]]:
        """Every finished record (optionally of one experiment); temporary files are skipped."""
        folders = [self.root / experiment] if experiment else sorted(p for p in self.root.glob("*") if p.is_dir())
        for folder in folders:
            for path in sorted(folder.glob("*.json")):
                record = json.loads(path.read_text())
                if record.get("status") in FINISHED:
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


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and k != "options" and k != "model_kwargs":
            out.update(_flatten(v, name + "."))
        else:
            out[name] = v if not isinstance(v, (dict, list)) else json.dumps(v, sort_keys=True)
    return out
