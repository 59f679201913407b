"""What a chapter trains, counted in epochs per architecture, and how many seeds fit a time budget.

Why counts and not a dry run of the chapter: the number of epochs a chapter trains follows from its recipe
alone (selection grids, teachers, arms, seeds), while what an epoch costs depends on the device. So each
chapter states its work (`ChapterWork`, from its `gpu` recipe), the GPU script times the first epoch of each
architecture on the device (`probe`), and `estimate` multiplies the two. Trimming cuts seeds only: the
recipe, and with it every run's config and record key, stays as it is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from kdutils.config import DataConfig


@dataclass(frozen=True)
class Work:
    """The training one chapter does with one architecture on one data set, in epochs of `data`'s training split.

    `fixed_epochs` do not depend on how many seeds run (learning-rate selection, teachers); `epochs_per_seed`
    are added for every seed (or fold) the chapter runs; likewise `runs_*` count evaluated runs (each pays
    one evaluation of the test split). `grouped` marks students that the chapter trains together
    (`group_runner`): their epochs are charged at the group share that `estimate` is given (a group of K
    costs share x K separate runs).
    """

    label: str
    model: str
    data: DataConfig
    batch_size: int
    fixed_epochs: float
    epochs_per_seed: float
    runs_fixed: int = 0
    runs_per_seed: int = 0
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    grouped: bool = False

    def __post_init__(self) -> None:
        for name in ("fixed_epochs", "epochs_per_seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"{self.label}: {name} must be >= 0, got {getattr(self, name)!r}")

    def epochs(self, seeds: int) -> float:
        return self.fixed_epochs + seeds * self.epochs_per_seed

    def runs(self, seeds: int) -> int:
        return self.runs_fixed + seeds * self.runs_per_seed


@dataclass(frozen=True)
class ChapterWork:
    """A chapter's work at its `gpu` recipe: `seeds` it would run, the fewest its verdicts can use, and the work."""

    chapter: str
    seeds: int
    min_seeds: int
    works: tuple[Work, ...]

    def __post_init__(self) -> None:
        if not 1 <= self.min_seeds <= self.seeds:
            raise ValueError(f"{self.chapter}: need 1 <= min_seeds <= seeds, got {self.min_seeds} and {self.seeds}")


@dataclass(frozen=True)
class Timing:
    """What the probe measured for one `Work`: seconds per epoch and per evaluated run."""

    epoch_s: float
    run_s: float


#: Before the benchmark has measured it: what a student trained in a group is charged, as a share of a
#: separate run (CPU: 1, students in a group run in sequence there).
DEFAULT_GROUP_SHARE = {"cuda": 0.5, "cpu": 1.0}


def estimate(work: ChapterWork, timings: Mapping[str, Timing], seeds: int, group_share: float = 1.0) -> float:
    """Seconds the chapter needs with `seeds` seeds, from the measured epoch and evaluation times; grouped
    students' epochs are charged at `group_share`."""
    if not 0 < group_share <= 1:
        raise ValueError(f"group_share must be in (0, 1], got {group_share!r}")
    total = 0.0
    for w in work.works:
        t = timings[w.label]
        total += (group_share if w.grouped else 1.0) * w.epochs(seeds) * t.epoch_s + w.runs(seeds) * t.run_s
    return total


@dataclass(frozen=True)
class Allocation:
    """How many seeds a chapter gets, what that is estimated to cost, and what was cut (for the record)."""

    chapter: str
    seeds: int
    planned_seeds: int
    estimate_s: float
    full_estimate_s: float
    allowance_s: float
    skipped: bool = False

    @property
    def trimmed(self) -> bool:
        return self.skipped or self.seeds < self.planned_seeds

    def describe(self) -> str:
        if self.skipped:
            return (f"{self.chapter}: skipped (its fewest seeds, {self.seeds}, need ~{self.estimate_s:.0f} s; "
                    f"{self.allowance_s:.0f} s left for it)")
        cut = f", trimmed from {self.planned_seeds}" if self.seeds < self.planned_seeds else ""
        return (f"{self.chapter}: {self.seeds} seeds{cut}, ~{self.estimate_s:.0f} s "
                f"(all seeds ~{self.full_estimate_s:.0f} s; allowance {self.allowance_s:.0f} s)")


def allocate(work: ChapterWork, timings: Mapping[str, Timing], budget_s: float,
             later: Sequence[tuple[ChapterWork, Mapping[str, Timing]]] = (), group_share: float = 1.0) -> Allocation:
    """Seeds for `work` inside `budget_s` seconds, leaving the chapters still to run (`later`) their share.

    Chapters run in priority order: this one always gets its minimum seeds if they fit the budget left
    (otherwise it is skipped). What remains after its minimum and every later chapter's minimum is split over
    the chapters' extra seeds in proportion to what those cost, and it gets the most seeds that fit its part.
    """
    def cost(w: ChapterWork, t: Mapping[str, Timing], n: int) -> float:
        return estimate(w, t, n, group_share)

    full = cost(work, timings, work.seeds)
    minimum = cost(work, timings, work.min_seeds)
    later_min = sum(cost(w, t, w.min_seeds) for w, t in later)
    spare = max(0.0, budget_s - minimum - later_min)
    extra_wanted = full - minimum
    total_extra = extra_wanted + sum(cost(w, t, w.seeds) - cost(w, t, w.min_seeds) for w, t in later)
    allowance = minimum + (spare * extra_wanted / total_extra if total_extra > 0 else 0.0)
    if minimum > budget_s:
        return Allocation(work.chapter, work.min_seeds, work.seeds, minimum, full, max(0.0, budget_s - later_min),
                          skipped=True)
    seeds = work.min_seeds
    for n in range(work.min_seeds, work.seeds + 1):
        if cost(work, timings, n) <= allowance + 1e-9:
            seeds = n
    return Allocation(work.chapter, seeds, work.seeds, cost(work, timings, seeds), full, allowance)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))


__all__ = ["DEFAULT_GROUP_SHARE", "Allocation", "ChapterWork", "Timing", "Work", "allocate", "estimate",
           "steps_per_epoch"]
