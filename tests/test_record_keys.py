"""Every committed run record keeps its name: the key recomputed by today's code from the record's own config
equals the file name (and the record's `key` field). A renamed module, a moved dataclass or a changed default
that altered a key would orphan the record, and the book would show the run as missing."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kdutils.chapters.does_kd_work.plan import DistillSpec
from kdutils.config import run_config_from_dict
from kdutils.paths import REPO_ROOT

RESULTS = REPO_ROOT / "results"
#: Folders under results/ that hold no run records: benchmark figures and the data page's picture inputs.
NOT_RUN_RECORDS = ("bench", "pictures")


def _spec_from_dict(cfg: dict[str, Any]) -> DistillSpec:
    """A Stanton et al. student (its own record format: a DistillSpec, keyed by `DistillSpec.key`)."""
    cfg = dict(cfg)
    cfg["teachers"] = tuple(run_config_from_dict(t) for t in cfg["teachers"])
    for name in ("lr_candidates", "widths"):
        if cfg.get(name) is not None:
            cfg[name] = tuple(cfg[name])
    return DistillSpec(**cfg)


def recomputed_key(cfg: dict[str, Any]) -> str:
    """The key today's code gives the config a record was written under."""
    if "teachers" in cfg:
        return _spec_from_dict(cfg).key()
    return run_config_from_dict(cfg).key()


def _record_files() -> list[Path]:
    return sorted(p for p in RESULTS.glob("*/*.json") if p.parent.name not in NOT_RUN_RECORDS)


def test_results_folders_are_known():
    """A new folder under results/ must either hold run records (checked below) or be listed as not holding
    them, so that no records escape the key check."""
    folders = {p.name for p in RESULTS.iterdir() if p.is_dir()}
    assert folders, "no results/ folder: the committed records are missing"
    for name in folders - set(NOT_RUN_RECORDS):
        files = list((RESULTS / name).glob("*.json"))
        assert files and all("config" in json.loads(f.read_text()) for f in files[:5]), name


@pytest.mark.parametrize("folder", sorted({p.parent.name for p in _record_files()}))
def test_every_record_key_is_recomputed_from_its_config(folder):
    files = [p for p in _record_files() if p.parent.name == folder]
    wrong = []
    for path in files:
        record = json.loads(path.read_text())
        key = recomputed_key(record["config"])
        if key != path.stem or record.get("key", key) != path.stem:
            wrong.append(f"{path.name}: recomputed {key}, recorded {record.get('key')}")
    assert not wrong, f"{len(wrong)} of {len(files)} records in results/{folder} changed key: {wrong[:5]}"


def test_the_check_notices_a_changed_config():
    """The comparison above can fail: one changed field gives another key."""
    path = next(p for p in _record_files() if p.parent.name == "hinton_mnist")
    cfg = json.loads(path.read_text())["config"]
    assert recomputed_key(cfg) == path.stem
    assert recomputed_key({**cfg, "seed": cfg["seed"] + 1}) != path.stem
