"""Shared fixtures for the unit tests."""
import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny nets: a second intra-op thread only fights other jobs on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

