"""Intervals for a two-level design: outer units (e.g. teachers trained with different seeds) each with several
inner units (e.g. student seeds distilled from that teacher).

Why a separate interval. Students of one teacher share that teacher's quirks, so their results are not
independent: a t-interval over all (teacher, student seed) values treats ``a * b`` correlated values as
independent and leaves out the teacher-to-teacher variance, which is what a claim about "an LS teacher" (not
"this LS teacher") must include. The interval here is the classical one for a nested (two-stage) design with
random outer units: average the inner values within each outer unit, then take the Student t-interval of the
mean of those ``a`` outer means (``a - 1`` degrees of freedom). For a balanced design its variance estimate,
``var(outer means) / a``, is unbiased for ``sigma_outer^2 / a + sigma_inner^2 / (a * b)``, the variance of the
grand mean; with unequal inner counts it weights every outer unit equally (the unit of replication).

The variance components (one-way ANOVA estimators, the between-unit one clipped at 0) say where the noise is:
if the outer one dominates, more teachers (not more student seeds) narrow the interval.
With fewer than two outer units there is no estimate of the outer variance, so the interval is (-inf, inf):
"inconclusive", never a crash, and never an interval that silently drops the teacher variance.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Mapping, TypeVar

import numpy as np

from kdutils.verdicts.stats import Interval, t_interval

METHOD = "two-level t over outer-unit means"


@dataclass(frozen=True)
class NestedInterval:
    """The interval of the grand mean (``interval``, n = number of outer units) and the design's variance
    components: ``between_var`` (outer units), ``within_var`` (inner units within an outer unit)."""

    interval: Interval
    outer_means: dict
    inner_counts: dict
    between_var: float
    within_var: float

    @property
    def n_outer(self) -> int:
        return len(self.outer_means)

    @property
    def n_values(self) -> int:
        return int(sum(self.inner_counts.values()))

    def describe(self, unit: str = "", digits: int = 2) -> str:
        """E.g. "+0.31 pts [-0.20, 0.82], two-level t ..., n=3 (3 teachers x 2 seeds; sd teachers 0.21, seeds 0.15)"."""
        base = self.interval.describe(unit, digits)
        counts = sorted(set(self.inner_counts.values())) or [0]  # no paired values yet: "0 outer x 0 inner"
        inner = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        comp = lambda v: f"{math.sqrt(v):.{digits}f}" if math.isfinite(v) else "n/a"  # noqa: E731
        return (f"{base} ({self.n_outer} outer x {inner} inner; sd between {comp(self.between_var)}, "
                f"within {comp(self.within_var)})")


Outer = TypeVar("Outer", bound=Hashable)  # the outer unit (e.g. a teacher seed)
Inner = TypeVar("Inner", bound=Hashable)  # the inner unit (e.g. a student seed)


def _check(values: Mapping) -> dict[Hashable, list[float]]:
    if not isinstance(values, Mapping):
        raise ValueError(f"values must be a mapping {{(outer, inner): value}}, got {type(values).__name__}")
    groups: dict[Hashable, list[float]] = {}
    for key, v in values.items():
        if not isinstance(key, tuple) or len(key) != 2:
            raise ValueError(f"every key must be an (outer, inner) pair, got {key!r}")
        x = float(v)
        if math.isnan(x):
            raise ValueError(f"value of {key!r} is NaN; score failed runs before calling")
        groups.setdefault(key[0], []).append(x)
    return groups


def nested_interval(values: Mapping[tuple[Outer, Inner], float], confidence: float = 0.95) -> NestedInterval:
    """The two-level interval of the mean of ``values`` ({(outer, inner): value}, e.g. {(teacher seed, student
    seed): paired difference}); see the module docstring."""
    groups = _check(values)
    keys = sorted(groups, key=repr)
    means = {k: float(np.mean(groups[k])) for k in keys}
    counts = {k: len(groups[k]) for k in keys}
    iv = t_interval([means[k] for k in keys], confidence, method=METHOD)
    a, n = len(keys), sum(counts.values())
    ss_within = sum(float(((np.asarray(groups[k]) - means[k]) ** 2).sum()) for k in keys)
    within = ss_within / (n - a) if n > a else math.nan
    if a >= 2:
        grand = float(np.average([means[k] for k in keys], weights=[counts[k] for k in keys]))
        ms_between = sum(counts[k] * (means[k] - grand) ** 2 for k in keys) / (a - 1)
        n0 = (n - sum(c * c for c in counts.values()) / n) / (a - 1)  # effective inner count (= b if balanced)
        between = max(0.0, (ms_between - (within if math.isfinite(within) else 0.0)) / n0)
    else:
        between = math.nan
    return NestedInterval(iv, means, counts, between, within)


def nested_paired_difference(a: Mapping[tuple[Outer, Inner], float], b: Mapping[tuple[Outer, Inner], float],
                             confidence: float = 0.95) -> NestedInterval:
    """Two-level interval of a - b over the (outer, inner) keys both arms have: the outer unit pairs a's unit
    with b's (e.g. LS teacher seed i with plain teacher seed i), the inner key pairs the students (same seed:
    same initial weights and data order)."""
    keys = set(a) & set(b)
    return nested_interval({k: float(a[k]) - float(b[k]) for k in keys}, confidence)


__all__ = ["METHOD", "NestedInterval", "nested_interval", "nested_paired_difference"]
