"""Power: how small an effect a comparison of n paired runs could have detected, and how many runs would do.

Why: "inconclusive" is only informative next to what the comparison could have seen. For a paired comparison
the decision rules call an effect "reproduced" when the two-sided 95% t-interval of the mean difference lies
wholly on the claimed side of 0, i.e. when the paired t statistic exceeds t_{n-1, 0.975}. With a true mean
difference delta and paired standard deviation sd, that statistic follows a noncentral t distribution with
n - 1 degrees of freedom and noncentrality delta * sqrt(n) / sd. The smallest detectable effect at n is the
delta for which P(t > t_{n-1, 0.975}) equals the power (0.8). It is computed exactly from scipy.stats.nct
(no normal approximation); the observed sd stands in for the true one, so it is itself an estimate, and the
pages say "from the observed paired SD".
"""
from __future__ import annotations

import math
from dataclasses import dataclass

ALPHA = 0.05
POWER = 0.8
MAX_SEEDS = 1000


def _check(alpha: float, power: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power!r}")


def detection_probability(delta: float, sd: float, n: int, alpha: float = ALPHA) -> float:
    """P(the two-sided (1 - alpha) t-interval of n paired differences lies wholly above 0) when their true mean
    is `delta` > 0 and their SD is `sd`: 1 - F_nct(t_{n-1, 1-alpha/2}; n-1, delta sqrt(n)/sd)."""
    from scipy import stats  # lazy: kdutils' training path needs only torch and numpy

    if n < 2:
        return 0.0
    if sd == 0:
        return 1.0 if delta > 0 else 0.0
    crit = stats.t.ppf(1.0 - alpha / 2.0, n - 1)
    return float(stats.nct.sf(crit, n - 1, delta * math.sqrt(n) / sd))


def detectable_effect(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true mean difference that n paired runs with paired SD `sd` detect with probability `power`
    (exact noncentral t). inf when n < 2 or sd is unknown; 0 when sd is 0."""
    _check(alpha, power)
    if n < 2 or sd is None or not math.isfinite(sd):
        return math.inf
    if sd < 0:
        raise ValueError(f"sd must be >= 0, got {sd!r}")
    if sd == 0:
        return 0.0
    from scipy import optimize

    scale = sd / math.sqrt(n)  # solve on the noncentrality, then convert back to the metric's units
    hi = 1.0
    while detection_probability(hi * scale, sd, n, alpha) < power:
        hi *= 2.0
    nc = optimize.brentq(lambda c: detection_probability(c * scale, sd, n, alpha) - power, 0.0, hi, xtol=1e-10)
    return float(nc * scale)


def seeds_needed(sd: float, min_effect: float, alpha: float = ALPHA, power: float = POWER,
                 max_n: int = MAX_SEEDS) -> int | None:
    """The smallest n >= 2 whose detectable effect is at most `min_effect` (None if above `max_n`, or if sd is
    unknown). Assumes the paired SD stays what it was."""
    _check(alpha, power)
    if not min_effect > 0:
        raise ValueError(f"min_effect must be > 0, got {min_effect!r}")
    if sd is None or not math.isfinite(sd):
        return None
    if detectable_effect(sd, max_n, alpha, power) > min_effect:
        return None
    lo, hi = 2, max_n  # detectable_effect falls with n: bisect for the first n that reaches min_effect
    while lo < hi:
        mid = (lo + hi) // 2
        if detectable_effect(sd, mid, alpha, power) <= min_effect:
            hi = mid
        else:
            lo = mid + 1
    return lo


@dataclass(frozen=True)
class Power:
    """What one comparison could detect: at its n and observed paired SD, against the claim's minimum effect."""

    n: int
    sd: float
    detectable: float
    min_effect: float | None
    needed: int | None  # seeds that would bring `detectable` to `min_effect` (None: unknown or > MAX_SEEDS)
    unit: str = ""  # the comparison's unit, used when `describe` is given none

    @property
    def enough(self) -> bool | None:
        """True when the comparison could detect the minimum effect (None when the claim names none)."""
        if self.min_effect is None:
            return None
        return self.detectable <= self.min_effect

    def describe(self, unit: str | None = None, scale: float = 1.0, digits: int = 2) -> str:
        """E.g. "smallest detectable effect 0.61 pts at n=5 (paired SD 0.49; alpha 0.05, power 0.8, noncentral
        t), above the minimum effect 0.50 pts: 8 seeds would reach it"."""
        unit = self.unit if unit is None else unit
        u = unit if unit == "%" else f" {unit}" if unit else ""
        if not math.isfinite(self.detectable):
            return f"no detectable effect can be computed at n={self.n}"
        def num(v: float) -> str:  # small values keep two significant digits: an SD of 0.003 is not "0.00"
            return f"{v:.2g}" if 0 < abs(v) < 0.1 else f"{v:.{digits}f}"
        text = (f"smallest detectable effect {num(self.detectable * scale)}{u} at n={self.n} (paired SD "
                f"{num(self.sd * scale)}{u}; alpha {ALPHA:g}, power {POWER:g}, noncentral t)")
        if self.min_effect is None:
            return text
        m = f"{num(self.min_effect * scale)}{u}"
        if self.enough:
            return f"{text}, at or below the minimum effect {m}"
        more = f"{self.needed} seeds would reach it" if self.needed else f"more than {MAX_SEEDS} seeds would be needed"
        return f"{text}, above the minimum effect {m}: {more}"


def power_of(sd: float, n: int, min_effect: float | None = None, unit: str = "") -> Power:
    """The `Power` of a comparison of n paired runs with observed paired SD `sd`."""
    det = detectable_effect(sd, n)
    needed = seeds_needed(sd, min_effect) if min_effect and min_effect > 0 else None
    return Power(n, sd, det, min_effect, needed, unit)


__all__ = ["ALPHA", "MAX_SEEDS", "POWER", "Power", "detectable_effect", "detection_probability", "power_of",
           "seeds_needed"]
