"""Shared fixtures for the unit tests."""
import pytest
import torch

from helpers import DATA_ROOT


@pytest.fixture
def one_thread():
    """Tiny nets: a second intra-op thread only fights other jobs on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def private(tmp_path, monkeypatch):
    """A results store and cache of this test's own, the tests' data root (read, never written), load-only
    mode off, and no teacher logits left in memory by another test. Yields the store."""
    from kdutils.store.store import ResultStore
    from kdutils.training import runner

    monkeypatch.setenv("KDUTILS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KDUTILS_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("KDUTILS_DATA", str(DATA_ROOT))
    monkeypatch.delenv("KDUTILS_LOAD_ONLY", raising=False)
    runner._LOGIT_CACHE.clear()
    yield ResultStore(tmp_path / "results")
    runner._LOGIT_CACHE.clear()


@pytest.fixture
def dkw_scratch(private, one_thread):
    """`private`, and the fidelity chapter's in-memory teachers emptied before and after (its runs reuse them)."""
    from kdutils.chapters.does_kd_work import run as frun

    frun._TEACHERS.clear()
    yield private
    frun._TEACHERS.clear()
