"""The chapter contract: every folder under kdutils/chapters exports a CHAPTER, the book's table of contents
lists every page of every chapter (and no chapter page that no chapter claims), and the CLI offers them all."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from kdutils.__main__ import main
from kdutils.paths import REPO_ROOT
from kdutils.report.chapter import Chapter, all_chapters, load, names

CHAPTERS_DIR = REPO_ROOT / "kdutils" / "chapters"


def _toc_files() -> list[str]:
    """Every `file:` of _toc.yml, in order."""
    out: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                out.append(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load((REPO_ROOT / "_toc.yml").read_text()))
    return out


def test_every_chapter_folder_is_registered_with_its_contract():
    folders = sorted(p.name for p in CHAPTERS_DIR.iterdir() if (p / "__init__.py").is_file())
    assert names() == folders
    chapters = all_chapters()
    assert [c.name for c in chapters] == sorted(folders, key=lambda n: load(n).order)
    for c in chapters:
        assert isinstance(c, Chapter) and c.claims and c.experiments
        assert callable(c.run_all) and callable(c.verdicts) and callable(c.recipe)
        assert c.page in c.pages


def test_unknown_chapter_names_the_known_ones():
    with pytest.raises(ValueError, match="choose one of: does_kd_work, hinton, invariance, ls_kd, tgeo"):
        load("hinten")


def test_toc_lists_every_chapter_page_in_the_book_order():
    toc = _toc_files()
    chapters = all_chapters()
    pages = [p for c in chapters for p in c.pages]
    missing = [p for p in pages if p not in toc]
    assert not missing, f"chapter pages missing from _toc.yml: {missing}"
    assert len(set(pages)) == len(pages), "a page belongs to two chapters"
    # the chapters' first pages appear in the registry's order
    firsts = [min(toc.index(p) for p in c.pages) for c in chapters]
    assert firsts == sorted(firsts)
    # every toc entry of a paper (book/<x>.md or notebooks/<x>_*.ipynb) belongs to a chapter
    shared = {"book/intro", "book/methods", "book/rerun", "book/references", "book/glossary", "notebooks/scorecard",
              "notebooks/findings", "notebooks/benchmarks"}
    orphans = [f for f in toc if f not in shared and f not in pages]
    assert not orphans, f"_toc.yml pages that no chapter lists: {orphans}"


def test_cli_run_rejects_an_unknown_chapter_with_the_list(capsys):
    with pytest.raises(SystemExit, match="unknown chapter 'nope'; choose one of: does_kd_work, hinton"):
        main(["run", "nope"])


def test_core_names_no_chapter():
    """The shared core imports no chapter: it finds them through the registry only."""
    offenders = []
    for path in (REPO_ROOT / "kdutils").rglob("*.py"):
        if CHAPTERS_DIR in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kdutils.chapters"):
                offenders.append(f"{path.relative_to(REPO_ROOT)}: {node.module}")
    assert not offenders, offenders


def test_chapters_import_no_other_chapter():
    offenders = []
    for folder in (p for p in CHAPTERS_DIR.iterdir() if p.is_dir() and p.name != "__pycache__"):
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                mod = node.module if isinstance(node, ast.ImportFrom) else None
                if mod and mod.startswith("kdutils.chapters.") and mod.split(".")[2] != folder.name:
                    offenders.append(f"{path.relative_to(REPO_ROOT)}: {mod}")
    assert not offenders, offenders


def test_points_of_a_chapter_without_point_notebooks_say_so():
    tgeo = load("tgeo")
    assert tgeo.point_configs is None
    with pytest.raises(ValueError, match="chapter 'tgeo' has no point notebook configs"):
        tgeo.points(profile="smoke")
    hinton = load("hinton")
    assert [c.role for c in hinton.points(profile="smoke", tau=4.0)] == [
        c.role for c in hinton.point_configs(profile="smoke", tau=4.0)]
