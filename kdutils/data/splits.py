"""Deterministic index splits (train/val, k-fold), so every run and every machine sees the same partition.

All randomness comes from a CPU torch.Generator seeded by `seed`; the returned index tensors are int64 and sorted
(the loader shuffles anyway, and sorted indices are easy to compare and store).
"""
from __future__ import annotations

import numbers

import torch


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive integer (the number of samples), got {n!r}")
    return int(n)


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return int(seed)


def _perm(n: int, seed: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def resolve_val_size(n: int, val_size: int | float) -> int:
    """Number of validation samples: an int is a count in [1, n-1], a float a fraction in (0, 1) (rounded)."""
    n = _check_n(n)
    if isinstance(val_size, bool):
        raise ValueError(f"val_size must be an int count or a float fraction, got {val_size!r}")
    if isinstance(val_size, numbers.Integral):
        count = int(val_size)
        if not 1 <= count <= n - 1:
            raise ValueError(f"val_size={count} must be between 1 and n-1={n - 1} so both parts are non-empty")
        return count
    if isinstance(val_size, numbers.Real):
        frac = float(val_size)
        if not 0.0 < frac < 1.0:
            raise ValueError(f"val_size={frac} as a fraction must be in the open interval (0, 1)")
        count = int(round(frac * n))
        if not 1 <= count <= n - 1:
            raise ValueError(f"val_size={frac} of n={n} gives {count} samples; both parts must be non-empty")
        return count
    raise ValueError(f"val_size must be an int count or a float fraction, got {val_size!r}")


def train_val_split(n: int, val_size: int | float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Split range(n) into disjoint, covering (train_idx, val_idx); the same (n, val_size, seed) gives the same split."""
    n_val = resolve_val_size(n, val_size)
    perm = _perm(n, _check_seed(seed))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def kfold_indices(n: int, k: int, fold: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(train_idx, test_idx) of fold `fold` of a shuffled k-fold partition of range(n).

    The k test parts are disjoint, cover range(n) and differ in size by at most one.
    """
    n = _check_n(n)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 2 <= k <= n:
        raise ValueError(f"k must be an integer between 2 and n={n}, got {k!r}")
    if isinstance(fold, bool) or not isinstance(fold, numbers.Integral) or not 0 <= fold < k:
        raise ValueError(f"fold must be an integer between 0 and k-1={int(k) - 1}, got {fold!r}")
    parts = torch.tensor_split(_perm(n, _check_seed(seed)), int(k))
    test = parts[int(fold)]
    train = torch.cat([p for i, p in enumerate(parts) if i != int(fold)])
    return train.sort().values, test.sort().values


def stratified_train_val_split(y: torch.Tensor, val_size: int | float, seed: int = 0
                               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Like train_val_split, but each class gets (as nearly as possible) the same share in validation.

    Per-class counts are val_size * n_c rounded down, the leftover going to the classes with the largest
    remainders (ties: lower class first), so the total is exactly the requested size.
    """
    y = torch.as_tensor(y)
    if y.ndim != 1 or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"y must be a 1-d integer label tensor, got dtype {y.dtype} and shape {tuple(y.shape)}")
    n = _check_n(y.numel())
    n_val = resolve_val_size(n, val_size)
    gen = torch.Generator().manual_seed(_check_seed(seed))
    classes, counts = torch.unique(y.cpu(), return_counts=True)
    exact = counts.double() * n_val / n
    take = exact.floor().long()
    leftover = n_val - int(take.sum())
    if leftover:
        # stable sort on -remainder: largest remainder first, lower class first among ties
        order = torch.sort(-(exact - take), stable=True).indices
        take[order[:leftover]] += 1
    y_cpu = y.cpu()
    val_parts = []
    for c, t in zip(classes.tolist(), take.tolist()):
        members = torch.nonzero(y_cpu == c).flatten()
        val_parts.append(members[torch.randperm(members.numel(), generator=gen)[:t]])
    val = torch.cat(val_parts).sort().values
    mask = torch.ones(n, dtype=torch.bool)
    mask[val] = False
    return torch.nonzero(mask).flatten(), val
