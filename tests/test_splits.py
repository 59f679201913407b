"""Deterministic splits: same arguments -> same indices; parts disjoint and covering."""
from __future__ import annotations

import pytest
import torch

from kdutils.data.splits import kfold_indices, resolve_val_size, stratified_train_val_split, train_val_split


def test_train_val_split_properties():
    tr, va = train_val_split(1000, 100, seed=3)
    assert tr.dtype == va.dtype == torch.int64
    assert len(va) == 100 and len(tr) == 900
    assert torch.equal(torch.cat([tr, va]).sort().values, torch.arange(1000))  # disjoint + covering
    tr2, va2 = train_val_split(1000, 100, seed=3)
    assert torch.equal(tr, tr2) and torch.equal(va, va2)
    _, va3 = train_val_split(1000, 100, seed=4)
    assert not torch.equal(va, va3)
    # a random subset, not a block at either end
    assert va.min() < 100 and va.max() > 900


def test_train_val_split_matches_documented_generator():
    # the split is the first val_size entries of torch.randperm under Generator().manual_seed(seed)
    perm = torch.randperm(50, generator=torch.Generator().manual_seed(11))
    tr, va = train_val_split(50, 0.2, seed=11)
    assert torch.equal(va, perm[:10].sort().values)
    assert torch.equal(tr, perm[10:].sort().values)


def test_val_size_fraction_and_errors():
    assert resolve_val_size(60000, 0.1) == 6000
    assert resolve_val_size(10, 3) == 3
    for bad in (0, 10, -1, 0.0, 1.0, 1.5, True, "0.1", None):
        with pytest.raises(ValueError, match="val_size"):
            resolve_val_size(10, bad)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        train_val_split(0, 1)
    with pytest.raises(ValueError, match="seed must be an integer"):
        train_val_split(10, 2, seed=1.5)
    with pytest.raises(ValueError, match="both parts"):
        train_val_split(3, 0.01)


def test_kfold_partition():
    n, k = 103, 5
    tests = []
    for fold in range(k):
        tr, te = kfold_indices(n, k, fold, seed=0)
        assert torch.equal(torch.cat([tr, te]).sort().values, torch.arange(n))
        tests.append(te)
        tr2, te2 = kfold_indices(n, k, fold, seed=0)
        assert torch.equal(te, te2) and torch.equal(tr, tr2)
    assert torch.equal(torch.cat(tests).sort().values, torch.arange(n))  # test folds partition range(n)
    assert sorted(len(t) for t in tests) == [20, 20, 21, 21, 21]
    assert not torch.equal(kfold_indices(n, k, 0, seed=1)[1], tests[0])


def test_kfold_errors():
    with pytest.raises(ValueError, match="k must be"):
        kfold_indices(10, 1, 0)
    with pytest.raises(ValueError, match="k must be"):
        kfold_indices(3, 4, 0)
    with pytest.raises(ValueError, match="fold must be"):
        kfold_indices(10, 5, 5)
    with pytest.raises(ValueError, match="fold must be"):
        kfold_indices(10, 5, -1)


def test_stratified_split():
    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)[torch.randperm(100, generator=torch.Generator().manual_seed(0))]
    tr, va = stratified_train_val_split(y, 0.1, seed=5)
    assert torch.equal(torch.cat([tr, va]).sort().values, torch.arange(100))
    assert torch.bincount(y[va], minlength=3).tolist() == [5, 3, 2]
    tr2, va2 = stratified_train_val_split(y, 0.1, seed=5)
    assert torch.equal(va, va2)
    # counts that do not divide evenly still give exactly the requested total, largest remainders first
    _, va = stratified_train_val_split(y, 7, seed=0)  # exact shares 3.5, 2.1, 1.4 -> 3+1, 2, 1
    assert torch.bincount(y[va], minlength=3).tolist() == [4, 2, 1]
    with pytest.raises(ValueError, match="1-d integer label"):
        stratified_train_val_split(torch.rand(10), 2)
