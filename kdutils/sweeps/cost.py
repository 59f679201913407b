"""Core-hour estimates for the run commands' dry runs, from the wall times of recorded runs.

Why one module: every chapter that splits its runs over processes prices them the same way (the median, per kind
of run, of recorded ``wall_time_s / (epochs x images)``; a forward pass as a third of a training step), deals them
to processes the same way (longest first onto the least-loaded share, so every process computes the same deal)
and prints the same summary lines. An estimate therefore inherits the recorded runs' machine and load, and a kind
without a record has no estimate (NaN or None): the dry run says so instead of guessing.
"""
from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Generic, Hashable, Iterable, Sequence, TypeVar

from kdutils.sweeps.shards import Shard

#: A forward pass (evaluation, a teacher's logits) costs about a third of a training step (forward + backward).
FORWARD_SHARE = 1.0 / 3.0

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def seconds_per_image_epoch(wall: float | None, epochs: float | None, images: float | None) -> float | None:
    """``wall / (epochs x images)`` of one record, or None where any of them is missing, zero or negative."""
    if not wall or not epochs or not images or float(images) <= 0:
        return None
    return float(wall) / (float(epochs) * float(images))


@dataclass(frozen=True)
class Rate:
    """A kind of run's measured seconds per image-epoch: the median over `runs` recorded runs."""

    seconds: float
    runs: int


class RateSamples(Generic[K]):
    """Per-image-epoch samples by kind of run. Fallback samples (short selection runs, whose evaluation weighs
    more per epoch) measure a kind only where it has no main sample."""

    def __init__(self) -> None:
        self._main: dict[K, list[float]] = defaultdict(list)
        self._fallback: dict[K, list[float]] = defaultdict(list)

    def add(self, kind: K, seconds: float | None, fallback: bool = False) -> None:
        if seconds is not None:
            (self._fallback if fallback else self._main)[kind].append(seconds)

    def count(self, kind: K) -> int:
        return len(self._main.get(kind, ())) or len(self._fallback.get(kind, ()))

    def medians(self) -> dict[K, Rate]:
        out = {k: Rate(statistics.median(v), len(v)) for k, v in self._fallback.items()}
        out.update({k: Rate(statistics.median(v), len(v)) for k, v in self._main.items()})
        return out


def run_seconds(rate: float, image_epochs: float, forward_images: float = 0) -> float:
    """One run: training (image-epochs x rate) plus forward-only passes (images x rate x `FORWARD_SHARE`)."""
    return image_epochs * rate + forward_images * rate * FORWARD_SHARE


def balance(items: Sequence[T], count: int, cost: Callable[[T], float | None], name: Callable[[T], str]
            ) -> list[list[T]]:
    """`count` shares of `items`: longest first, each onto the least-loaded share (ties: the lower share; equal
    costs in `name` order), so every process computes the same deal whatever the input order. An item of
    unknown cost (None) counts as the median known cost."""
    if not (isinstance(count, int) and count >= 1):
        raise ValueError(f"the number of shares must be a whole number >= 1, got {count!r}")
    costs = [cost(i) for i in items]
    known = [c for c in costs if c is not None]
    fill = statistics.median(known) if known else 1.0
    priced = [(fill if c is None else c, i) for c, i in zip(costs, items)]
    shares: list[list[T]] = [[] for _ in range(count)]
    loads = [0.0] * count
    for c, item in sorted(priced, key=lambda p: (-p[0], name(p[1]))):
        k = min(range(count), key=lambda j: (loads[j], j))
        shares[k].append(item)
        loads[k] += c
    return shares


# ---- the printed summary --------------------------------------------------------------------------------------
def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def per_shard(loads: Sequence[float]) -> str:
    """``shard 1/2 1.70 h, shard 2/2 1.64 h``: each process's estimated share."""
    return ", ".join(f"shard {sh} {hours(s)}" for sh, s in zip(Shard.every(len(loads)), loads))


def rate_line(kind: str, rate: Rate | None, digits: int = 3, missing: str = "NO RECORD: no estimate") -> str:
    """One measured rate, in ms per image-epoch, with how many runs measured it."""
    return f"  {kind}: " + (f"{1e3 * rate.seconds:.{digits}f} ms (median of {rate.runs} runs)" if rate else missing)


@dataclass(frozen=True)
class Work:
    """Runs still to do, as a dry run lists them: how many, what, their estimated seconds (NaN: a kind without a
    measured rate) and the shard position (0-based) that trains them."""

    runs: int
    what: str
    seconds: float
    position: int


def shard_blocks(works: Iterable[Work], count: int, width: int = 3) -> tuple[list[list[str]], float]:
    """Per shard, its line (runs and hours of one thread) and one line per group of runs; and the total seconds
    (NaN where a group has no estimate)."""
    works = list(works)
    blocks, total = [], 0.0
    for sh in Shard.every(count):
        mine = [w for w in works if w.position == sh.position]
        secs = sum(w.seconds for w in mine)
        total += secs
        blocks.append([f"shard {sh}: {sum(w.runs for w in mine)} runs, about {hours(secs)} of one thread"]
                      + [f"  {w.runs:{width}d} x {w.what}: {w.seconds / 60:.1f} min" for w in mine])
    return blocks, total


def total_line(seconds: float) -> str:
    return (f"total: about {seconds / 3600:.2f} core-hours" if math.isfinite(seconds) else
            "total: unknown (a model without a measured rate)")


__all__ = ["FORWARD_SHARE", "Rate", "RateSamples", "Work", "balance", "hours", "per_shard", "rate_line",
           "run_seconds", "seconds_per_image_epoch", "shard_blocks", "total_line"]
