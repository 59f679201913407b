"""_ext/records_download.py: each chapter's records as one zip (the JSON files and a runs.csv)."""
import csv
import io
import json
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))
import records_download as rd  # noqa: E402


def _record(folder: Path, key: str, status: str = "ok", acc: float = 0.9) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{key}.json").write_text(json.dumps({
        "key": key, "status": status, "wall_time_s": 1.5, "provenance": {"device": "cpu: x86_64, 1 threads"},
        "config": {"experiment": folder.name, "seed": 0, "train": {"lr": 0.1}, "data": {"options": {}}},
        "metrics": {"accuracy": acc, "per_class": [0.1, 0.2]}, "history": [{"epoch": 1}]}))


def test_a_chapter_owns_the_folders_its_contract_names():
    from kdutils.report.chapter import load
    folders = rd.chapter_folders(ROOT / "results", "ls_kd")
    assert [p.name for p in folders] == [e for e in load("ls_kd").experiments if (ROOT / "results" / e).is_dir()]
    assert folders and all(p.parent == ROOT / "results" for p in folders)


def test_the_zip_holds_every_record_and_a_flat_csv(tmp_path):
    _record(tmp_path / "x_a", "k1", acc=0.5)
    _record(tmp_path / "x_b", "k2", status="diverged", acc=0.1)
    _record(tmp_path / "y", "k3")
    n = rd.write_zip([tmp_path / "x_a", tmp_path / "x_b"], "x", tmp_path / "out" / "x.zip")
    assert n == 2
    with zipfile.ZipFile(tmp_path / "out" / "x.zip") as z:
        assert sorted(z.namelist()) == ["x/runs.csv", "x/x_a/k1.json", "x/x_b/k2.json"]
        rows = list(csv.DictReader(io.StringIO(z.read("x/runs.csv").decode())))
        assert json.loads(z.read("x/x_a/k1.json"))["metrics"]["accuracy"] == 0.5  # the record as it is
    assert [(r["key"], r["folder"], r["status"], r["metrics.accuracy"]) for r in rows] == [
        ("k1", "x_a", "ok", "0.5"), ("k2", "x_b", "diverged", "0.1")]
    assert rows[0]["config.train.lr"] == "0.1" and rows[0]["device"] == "cpu: x86_64, 1 threads"
    assert "metrics.per_class" not in rows[0] and "history" not in rows[0]  # scalars only


def test_every_chapter_of_the_scorecard_has_records_to_download():
    from kdutils.report.chapter import all_chapters
    for ch in all_chapters():
        assert rd.chapter_folders(ROOT / "results", ch.name), f"no results/ folder of chapter {ch.name!r}"
