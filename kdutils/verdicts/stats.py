"""Paired confidence intervals for comparing two arms over the same seeds or folds.

Every verdict in the book compares arms that were run with the same seeds (or on the same folds), so the
unit of evidence is the per-seed difference: pairing removes what the two arms share (the data order and the
initial weights of that seed, the fold's split) and leaves the effect plus its own noise. The interval is the
Student t-interval of the mean difference, mean +- t_{n-1, 1-(1-c)/2} * sd / sqrt(n), which is exact for
normal differences and the usual choice for the 3-10 seeds a chapter can afford (a bootstrap needs more).

With fewer than two pairs there is no estimate of the noise: the interval is then (-inf, inf), so every rule
that asks "does the interval exclude x" answers no, and the verdict becomes "inconclusive", never a crash.
scipy (for the t quantile) is imported inside the function, because the GPU machine that runs
`python -m kdutils run` may not have it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Iterable, Mapping, Sequence, TypeVar

import numpy as np

METHOD = "paired t"


@dataclass(frozen=True)
class Interval:
    """Mean of `n` values (usually paired differences) with a two-sided `confidence` interval [low, high]."""

    mean: float
    low: float
    high: float
    n: int
    sd: float
    confidence: float = 0.95
    method: str = METHOD

    @property
    def estimable(self) -> bool:
        """True when the interval is finite (n >= 2 and finite values)."""
        return self.n >= 2 and math.isfinite(self.low) and math.isfinite(self.high)

    def above(self, value: float) -> bool:
        """The whole interval lies above `value` (so `value` is excluded from below)."""
        return self.estimable and self.low > value

    def below(self, value: float) -> bool:
        """The whole interval lies below `value`."""
        return self.estimable and self.high < value

    def contains(self, value: float) -> bool:
        return not (self.above(value) or self.below(value))

    def describe(self, unit: str = "", digits: int = 1, scale: float = 1.0, signed: bool = True) -> str:
        """E.g. "-17.3 errors [-25.1, -9.5], paired t 95%, n=3" (values multiplied by `scale`, e.g. 100 for %)."""
        sign = "+" if signed else ""
        pct = "%" if unit == "%" else ""  # a percent sign sticks to every number; other units follow the mean
        unit = f" {unit}" if unit and not pct else ""

        def fmt(v: float, s: str = "") -> str:
            return f"{v * scale:{s}.{digits}f}{pct}" if math.isfinite(v) else ("-inf" if v < 0 else "inf")
        level = f"{self.confidence:.0%}"
        if self.n == 0:
            return "no paired runs"
        if not self.estimable:
            return f"{fmt(self.mean, sign)}{unit} (no interval: n={self.n})"
        return f"{fmt(self.mean, sign)}{unit} [{fmt(self.low)}, {fmt(self.high)}], {self.method} {level}, n={self.n}"


def t_quantile(df: int, confidence: float = 0.95) -> float:
    """The two-sided Student t critical value t_{df, 1-(1-confidence)/2}."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df!r}")
    from scipy import stats  # lazy: kdutils' training path needs only torch and numpy

    return float(stats.t.ppf(0.5 + confidence / 2.0, df))


def t_interval(values: Iterable[float], confidence: float = 0.95, method: str = METHOD) -> Interval:
    """t-interval of the mean of `values` (NaN values are an error: score failed runs before calling)."""
    x = np.asarray(list(values), dtype=float)
    if x.ndim != 1:
        raise ValueError(f"values must be a flat sequence of numbers, got shape {x.shape}")
    if np.isnan(x).any():
        raise ValueError(f"values contain NaN ({x.tolist()}); give failed runs a score first "
                         "(kdutils.verdicts.verdict.scores_by_key) instead of dropping them")
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, -math.inf, math.inf, 0, math.nan, confidence, method)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, -math.inf, math.inf, 1, math.nan, confidence, method)
    sd = float(x.std(ddof=1))
    half = t_quantile(n - 1, confidence) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, sd, confidence, method)


K = TypeVar("K", bound=Hashable)  # a seed or fold id; both arms of a paired comparison use the same kind


def paired_values(a: Mapping[K, float], b: Mapping[K, float]) -> tuple[list[K], np.ndarray]:
    """The keys (seeds/folds) present in both arms, sorted, and the differences a[k] - b[k] on them."""
    keys = sorted(set(a) & set(b), key=repr)
    return keys, np.array([float(a[k]) - float(b[k]) for k in keys], dtype=float)


def paired_difference(a: Mapping[K, float], b: Mapping[K, float],
                      confidence: float = 0.95) -> Interval:
    """Interval of mean(a - b) over the seeds/folds both arms have (unpaired ones cannot enter a paired test)."""
    _, diffs = paired_values(a, b)
    return t_interval(diffs, confidence)


@dataclass(frozen=True)
class RankCorrelation:
    """A rank correlation with its two-sided p-value, the number of pairs, and how many values were tied.

    `method` is "spearman" (scipy's `spearmanr`, average ranks for ties) or "kendall" (scipy's `kendalltau`,
    tau-b, which corrects for ties in both variables: the choice for grouped or saturated values)."""

    value: float
    pvalue: float
    n: int
    method: str
    tied_share: float  # share of the first variable's values that equal another value (0 = no ties)


RANK_METHODS = ("spearman", "kendall")


def rank_correlation(x: Sequence[float], y: Sequence[float], method: str = "spearman") -> RankCorrelation:
    """Rank correlation of x and y from scipy.stats, ties handled (average ranks / tau-b). NaN with fewer than
    3 pairs or a constant variable (no ranking exists), never a crash."""
    if method not in RANK_METHODS:
        raise ValueError(f"method must be one of {RANK_METHODS}, got {method!r}")
    a, b = np.asarray(list(x), dtype=float), np.asarray(list(y), dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"x and y must be flat sequences of one length, got shapes {a.shape} and {b.shape}")
    n = int(a.size)
    tied = 0.0 if n == 0 else 1.0 - np.unique(a).size / n
    if n < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return RankCorrelation(math.nan, math.nan, n, method, tied)
    from scipy import stats  # lazy, as in t_quantile

    res = stats.spearmanr(a, b) if method == "spearman" else stats.kendalltau(a, b, variant="b")
    return RankCorrelation(float(res.statistic), float(res.pvalue), n, method, float(tied))


def one_sided_pvalues(values: Sequence[float], margin: float) -> tuple[float, float]:
    """p-values of the one-sided t-tests "mean < margin" and "mean > margin" (scipy's ttest_1samp), as an
    equivalence test (TOST) reports them; NaN with fewer than 2 values."""
    x = np.asarray(list(values), dtype=float)
    if x.size < 2:
        return math.nan, math.nan
    from scipy import stats

    if np.ptp(x) == 0:  # no spread: the test is exact
        m = float(x[0])
        return (0.0 if m < margin else 1.0), (0.0 if m > margin else 1.0)
    return (float(stats.ttest_1samp(x, margin, alternative="less").pvalue),
            float(stats.ttest_1samp(x, margin, alternative="greater").pvalue))


__all__ = ["Interval", "METHOD", "RANK_METHODS", "RankCorrelation", "one_sided_pvalues", "paired_difference",
           "paired_values", "rank_correlation", "t_interval", "t_quantile"]
