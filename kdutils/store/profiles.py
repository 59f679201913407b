"""Run scales. Every notebook takes `profile` as a papermill parameter.

- smoke: seconds per run, for tests (tiny subsets, one epoch);
- cpu: real data, minutes on a 2-core laptop: the book's default scale;
- gpu: all of MNIST / Fashion-MNIST, ResNet-20 or deeper teachers where a chapter uses ResNets, more seeds than
  `cpu`, the same claims; sized for minutes of one GPU (`python -m kdutils gpu` runs the whole book at this
  profile, trimming seeds, never the recipe, to its time budget: see `seed_cap`);
- full: each chapter's longest recipe, meant for a GPU. It is the paper's recipe only where the chapter says
  so (Hinton's MNIST recipe, for instance, is not fully given by the paper; its `full` is a longer run);
- paper: a chapter's own recipe at the paper's scale where that fits a CPU in core-hours (so far Hinton's
  MNIST section: long runs, 10 seeds, learning curves recorded). Chapters without it refuse the name.

`KDUTILS_PROFILE` in the environment overrides the notebooks' parameter (the test suite sets it to smoke).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator, Sequence, TypeVar

PROFILES = ("smoke", "cpu", "gpu", "full", "paper")

_T = TypeVar("_T")
_SEED_CAP: list[int] = []  # a stack: the innermost `seed_cap` applies


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}")
    return profile


def env_profile() -> str | None:
    """$KDUTILS_PROFILE if set (checked: a bad value is named with the variable), else None."""
    value = os.environ.get("KDUTILS_PROFILE")
    if not value:
        return None
    if value not in PROFILES:
        raise ValueError(f"KDUTILS_PROFILE={value!r} is not a profile; set it to one of: {', '.join(PROFILES)} "
                         "(or unset it)")
    return value


def resolve_profile(profile: str) -> str:
    """The profile a notebook should use: $KDUTILS_PROFILE if set, else its parameter. (`kdutils sweep` and
    `kdutils run` set the variable to their --profile while they run, so an explicit --profile wins.)"""
    return env_profile() or check_profile(profile)


@contextmanager
def pinned_profile(profile: str) -> Iterator[str]:
    """$KDUTILS_PROFILE set to `profile` for the block, then restored: what a sweep's notebook kernels (and its
    `point_configs`) read, so the sweep's own profile wins over a variable set for something else."""
    saved = os.environ.get("KDUTILS_PROFILE")
    os.environ["KDUTILS_PROFILE"] = check_profile(profile)
    try:
        yield profile
    finally:
        if saved is None:
            os.environ.pop("KDUTILS_PROFILE", None)
        else:
            os.environ["KDUTILS_PROFILE"] = saved


@contextmanager
def seed_cap(n: int | None) -> Iterator[None]:
    """Run only the first `n` seeds (or folds) of every recipe inside the block (None: all of them).

    A time budget may cut how many seeds a chapter runs, never what one run is: each chapter passes its
    recipe's seeds through `capped`, so a capped run has exactly the config (and record key) it has uncapped.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"seed cap must be a positive integer or None, got {n!r}")
    if n is None:
        yield
        return
    _SEED_CAP.append(n)
    try:
        yield
    finally:
        _SEED_CAP.pop()


def capped(seeds: Sequence[_T]) -> tuple[_T, ...]:
    """`seeds` cut to the active `seed_cap` (all of them outside one)."""
    return tuple(seeds) if not _SEED_CAP else tuple(seeds)[:_SEED_CAP[-1]]
