"""Sphinx extension: every chapter's run records as one download, linked from the chapter's page.

A page writes {records}`hinton`; the role becomes a link "the chapter's N run records (zip: JSON + CSV)" to
`_static/records/hinton.zip`, and at the end of the HTML build that zip is written from the committed records:
every `results/<experiment>/*.json` of the experiments the chapter's contract names (`CHAPTER.experiments`, e.g.
ls_kd -> ls_kd_fashion, ls_kd_fashion_analysis), as they are, plus `runs.csv`, one row per run (key, folder,
status, the configuration and the scalar metrics flattened into columns), for a reader who wants a table, not
1,000 files.

Why a build step and not committed zips: the download is always the records this build read, never a stale copy.
"""
from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)
TARGET = "records"  # folder under _static


def results_root(app: Sphinx) -> Path:
    return Path(app.srcdir) / "results"


def chapter_folders(root: Path, name: str) -> list[Path]:
    """The results folders of chapter `name`, as its contract lists them (those that exist)."""
    from kdutils.report.chapter import load

    return [root / e for e in load(name).experiments if (root / e).is_dir()]


def _flat(prefix: str, value, out: dict) -> None:
    """Nested dicts -> "config.train.lr" columns; lists and other non-scalars are kept as JSON text."""
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif value is None or isinstance(value, (str, int, float, bool)):
        out[prefix] = value
    else:
        out[prefix] = json.dumps(value)


def runs_csv(files: list[Path]) -> str:
    """One row per record: key, folder, status, wall time, device, config.* and metrics.* (scalars only)."""
    rows = []
    for f in files:
        rec = json.loads(f.read_text())
        row: dict = {"key": rec.get("key", f.stem), "folder": f.parent.name, "status": rec.get("status", ""),
                     "wall_time_s": rec.get("wall_time_s"),
                     "device": (rec.get("provenance") or {}).get("device", "")}
        _flat("config", rec.get("config", {}), row)
        for name, v in (rec.get("metrics") or {}).items():
            if v is None or isinstance(v, (int, float, str, bool)):
                row[f"metrics.{name}"] = v
        rows.append(row)
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_zip(folders: list[Path], key: str, dest: Path) -> int:
    """Write the records of `folders` and their runs.csv to `dest` (under `key/`); returns how many records."""
    files = [f for d in folders for f in sorted(d.glob("*.json"))]
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            z.write(f, f"{key}/{f.parent.name}/{f.name}")
        z.writestr(f"{key}/runs.csv", runs_csv(files))
    return len(files)


def records_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """{records}`<chapter key>`: a link to the chapter's records zip, naming how many records it holds."""
    env = inliner.document.settings.env
    key = text.strip()
    root = results_root(env.app)
    try:
        folders = chapter_folders(root, key)
    except ValueError as err:  # not a chapter: the registry's one-line error names the chapters there are
        folders, why = [], str(err)
    else:
        why = f"no results/ folder of chapter {key!r} exists"
    if not folders:
        msg = inliner.reporter.error(f"records: {why}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    n = sum(len(list(d.glob("*.json"))) for d in folders)
    env.records_keys = getattr(env, "records_keys", {})
    env.records_keys.setdefault(env.docname, set()).add(key)
    up = "../" * env.docname.count("/")
    ref = nodes.reference(rawtext, f"the chapter's {n} run records (zip: one JSON file per run, and runs.csv)",
                          refuri=f"{up}_static/{TARGET}/{key}.zip")
    return [ref], []


def _purge(app: Sphinx, env, docname: str) -> None:
    getattr(env, "records_keys", {}).pop(docname, None)


def _merge(app: Sphinx, env, docnames, other) -> None:
    env.records_keys = getattr(env, "records_keys", {})
    env.records_keys.update(getattr(other, "records_keys", {}))


def _build_finished(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    keys = sorted(set().union(*getattr(app.env, "records_keys", {}).values()))
    for key in keys:
        n = write_zip(chapter_folders(results_root(app), key), key, Path(app.outdir) / "_static" / TARGET / f"{key}.zip")
        logger.info(f"records: {key}.zip holds {n} records")


def setup(app: Sphinx) -> dict:
    app.add_role("records", records_role)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
