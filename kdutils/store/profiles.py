"""Run scales. Every notebook takes `profile` as a papermill parameter.

- smoke: seconds per run, for tests (tiny subsets, one epoch);
- cpu: real data, minutes on a 2-core laptop: the book's default scale;
- full: each chapter's longest recipe, meant for a GPU. It is the paper's recipe only where the chapter says
  so (Hinton's MNIST recipe, for instance, is not fully given by the paper; its `full` is a longer run);
- paper: a chapter's own recipe at the paper's scale where that fits a CPU in core-hours (so far Hinton's
  MNIST section: long runs, 10 seeds, learning curves recorded). Chapters without it refuse the name.

`KDUTILS_PROFILE` in the environment overrides the notebooks' parameter (the test suite sets it to smoke).
"""
from __future__ import annotations

import os

PROFILES = ("smoke", "cpu", "full", "paper")


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}")
    return profile


def resolve_profile(profile: str) -> str:
    """The profile a notebook should use: $KDUTILS_PROFILE if set, else its parameter."""
    return check_profile(os.environ.get("KDUTILS_PROFILE") or profile)
