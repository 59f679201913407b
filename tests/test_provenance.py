"""Provenance of the code: the kdutils source hash, whether it differs from the commit, and old records."""
import subprocess

import pytest

from kdutils.store import provenance


def _git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    (tmp_path / "notes.md").write_text("not code\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return tmp_path, pkg


def test_source_hash_equals_the_committed_hash_until_the_code_changes(repo):
    root, pkg = repo
    assert provenance.source_sha256(pkg) == provenance.committed_source_sha256("HEAD", pkg)
    (root / "notes.md").write_text("a record or a notebook changed: the tree is dirty, the code is not\n")
    assert provenance.source_sha256(pkg) == provenance.committed_source_sha256("HEAD", pkg)
    (pkg / "sub" / "b.py").write_text("y = 3\n")
    assert provenance.source_sha256(pkg) != provenance.committed_source_sha256("HEAD", pkg)
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    (pkg / "new.py").write_text("")  # an untracked module is code the commit does not hold
    assert provenance.source_sha256(pkg) != provenance.committed_source_sha256("HEAD", pkg)


def test_hash_covers_paths_and_bytes(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    h1 = provenance.source_sha256(tmp_path)
    (tmp_path / "a.py").rename(tmp_path / "b.py")
    assert provenance.source_sha256(tmp_path) != h1
    assert provenance.committed_source_sha256("HEAD", tmp_path / "nowhere") is None  # no git: unknown


def test_code_in_commit_reads_new_and_old_records():
    new_clean = {"provenance": {"commit": "c", "dirty": True, "kdutils_sha256": "h", "kdutils_dirty": False}}
    new_dirty = {"provenance": {"commit": "c", "dirty": True, "kdutils_sha256": "h", "kdutils_dirty": True}}
    old_clean = {"provenance": {"commit": "c", "dirty": False}}
    old_dirty = {"provenance": {"commit": "c", "dirty": True}}
    unknown = {"provenance": {"commit": "unknown", "dirty": False}}
    assert [provenance.code_in_commit(r) for r in (new_clean, new_dirty, old_clean, old_dirty, unknown)] == \
        [True, False, True, None, None]
    bad = provenance.not_in_commit([new_clean, new_dirty, old_clean, old_dirty])
    assert bad == [new_dirty, old_dirty]
    text = provenance.code_status_sentence([new_clean, new_dirty, old_clean, old_dirty])
    assert text == ("2 of 4 records: code not provably in a commit (1 made from a dirty tree before the source hash "
                    "was recorded, 1 with source that differed from the commit)")
    assert "1 with no commit recorded" in provenance.code_status_sentence([unknown])
    assert provenance.code_status_sentence([old_clean]) == "all 1 records: code in the commit named"


def test_this_checkouts_state_is_recorded():
    state = provenance.source_state()
    assert state["kdutils_sha256"] == provenance.source_sha256()
    committed = provenance.committed_source_sha256()
    assert committed is not None and state["kdutils_dirty"] == (committed != state["kdutils_sha256"])
