"""Gates: the conditions under which a claim can be tested at all, measured from the records.

Why: a verdict on "a better fusion ratio improves KD" means nothing where KD itself adds nothing, and a verdict
on "the student cannot match its teacher" means little when the teacher has not finished learning. Each claim
declares its gates; each gate is measured from recorded runs and carries its numbers, so the page shows them
before the verdict. A failed gate makes the claim "not testable at this scale" (with the gate's numbers),
never "not reproduced".

Gates here name no paper: teacher converged (`converged`), KD has room (`has_room`), a teacher clearly better
than the student alone (`teacher_better`), and any premise stated as an interval against a margin (`premise`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from kdutils.verdicts.stats import Interval

DIRECTIONS = ("greater", "less")
#: The book's teacher-convergence standard (`converged`): final training accuracy at least 90% and a rise of at
#: most 0.2 points per epoch over the last 5 epochs. Chapters that do not say otherwise use these.
MIN_TRAIN_ACCURACY = 0.90
MAX_TRAIN_SLOPE = 0.002


@dataclass(frozen=True)
class Gate:
    """One measured precondition: its name, whether it passed, the numbers it was measured from (name -> value,
    shown on the page) and a sentence saying why it passed or failed."""

    name: str
    passed: bool
    reason: str
    measured: Mapping[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        nums = ", ".join(f"{k} {_fmt(v)}" for k, v in self.measured.items())
        return f"{self.name}: {'passes' if self.passed else 'fails'} ({self.reason}{'; ' + nums if nums else ''})"


def _fmt(v: Any) -> str:
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, float) and not math.isfinite(v):
        return "n/a"
    return f"{float(v):.4g}"


def premise(name: str, interval: Interval, margin: float = 0.0, direction: str = "greater") -> Gate:
    """A premise stated as "the quantity is above `margin`" (or below, `direction="less"`): passes only when
    the whole 95% interval lies beyond the margin. E.g. "an ensemble beats its members"."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if not math.isfinite(margin):
        raise ValueError(f"margin must be a finite number, got {margin!r}")
    measured = {"mean": interval.mean, "low": interval.low, "high": interval.high, "n": interval.n,
                "margin": margin}
    if not interval.estimable:
        return Gate(name, False, f"no interval (n={interval.n})", measured)
    ok = interval.low > margin if direction == "greater" else interval.high < margin
    side = "above" if direction == "greater" else "below"
    if ok:
        return Gate(name, True, f"the whole interval lies {side} {margin:g}", measured)
    return Gate(name, False, f"the interval does not lie wholly {side} {margin:g}", measured)


def has_room(kd_minus_alone: Interval, margin: float) -> Gate:
    """KD has room: vanilla KD minus the student alone has an interval wholly above `margin` (a claim about a
    better KD cannot show anything where KD itself adds less than that)."""
    g = premise("KD has room", kd_minus_alone, margin, "greater")
    return Gate(g.name, g.passed, g.reason.replace("the whole interval", "vanilla KD minus alone")
                .replace("the interval", "vanilla KD minus alone"), g.measured)


def teacher_better(gap: Interval, min_gap: float) -> Gate:
    """The teacher is clearly better than the student alone: the gap's (teacher minus alone, larger = better
    teacher) interval excludes 0 and its mean is at least `min_gap` (e.g. two binomial standard errors of the
    student's test error, `verdict.min_testable_gap`)."""
    measured = {"gap": gap.mean, "low": gap.low, "high": gap.high, "n": gap.n, "min gap": min_gap}
    name = "teacher better than the student alone"
    if not gap.estimable:
        return Gate(name, False, f"no interval for the teacher-student gap (n={gap.n})", measured)
    if not gap.above(0.0):
        return Gate(name, False, "the gap's interval contains 0 or lies below it", measured)
    if gap.mean < min_gap:
        return Gate(name, False, f"the gap ({gap.mean:.3g}) is smaller than the minimum testable gap ({min_gap:.3g})",
                    measured)
    return Gate(name, True, "the gap's interval excludes 0 and its mean reaches the minimum testable gap", measured)


def last_epochs_slope(history: Sequence[Mapping[str, Any]], metric: str = "train_acc", last: int = 5) -> float:
    """Least-squares slope (per epoch) of `metric` over the last `last` epochs of a recorded history (scipy's
    linregress). NaN when fewer than 2 of those epochs carry the metric."""
    rows = [h for h in history if h.get(metric) is not None and math.isfinite(float(h[metric]))][-last:]
    if len(rows) < 2:
        return math.nan
    from scipy import stats

    x = np.array([float(h.get("epoch", i + 1)) for i, h in enumerate(rows)])
    y = np.array([float(h[metric]) for h in rows])
    return float(stats.linregress(x, y).slope) if np.ptp(x) > 0 else math.nan


def converged(history: Sequence[Mapping[str, Any]] | None, min_train_accuracy: float = MIN_TRAIN_ACCURACY,
              max_slope: float = MAX_TRAIN_SLOPE,
              metric: str = "train_acc", last: int = 5, name: str = "teacher converged") -> Gate:
    """The teacher finished learning: its final training accuracy (the history's last `metric`) is at least
    `min_train_accuracy`, and the slope of `metric` over the last `last` epochs is at most `max_slope` per
    epoch. A teacher still improving (slope above `max_slope`) is not converged, whatever its accuracy.
    A run without a recorded history fails: convergence cannot be shown."""
    if not 0.0 <= min_train_accuracy <= 1.0:
        raise ValueError(f"min_train_accuracy must be in [0, 1], got {min_train_accuracy!r}")
    if last < 2:
        raise ValueError(f"last must be >= 2 epochs, got {last!r}")
    vals = [float(h[metric]) for h in (history or []) if h.get(metric) is not None]
    if not vals:
        return Gate(name, False, f"no recorded {metric} history", {})
    final = vals[-1]
    slope = last_epochs_slope(history or [], metric, last)
    measured = {f"final {metric}": final, f"slope of the last {min(last, len(vals))} epochs": slope,
                "min accuracy": min_train_accuracy, "max slope": max_slope, "epochs": len(vals)}
    if final < min_train_accuracy:
        return Gate(name, False, f"final {metric} {final:.4g} is below {min_train_accuracy:g}", measured)
    if not math.isfinite(slope):
        return Gate(name, False, f"fewer than 2 recorded epochs: no slope", measured)
    if slope > max_slope:
        return Gate(name, False, f"still improving: {metric} rises {slope:.3g} per epoch over the last "
                                 f"epochs (more than {max_slope:g})", measured)
    return Gate(name, True, f"{metric} {final:.4g} >= {min_train_accuracy:g} and its slope {slope:.3g} per epoch "
                            f"<= {max_slope:g}", measured)


def same_setting(name: str, values: Mapping[str, Iterable[Any]], what: str = "learning rate") -> Gate:
    """A control: every arm of a comparison ran with one and the same `what` (e.g. learning rate). Arms trained
    at different rates differ in more than the factor under test, so the comparison cannot isolate it."""
    seen = {arm: sorted({float(v) for v in vs}) for arm, vs in values.items()}
    distinct = sorted({v for vs in seen.values() for v in vs})
    if len(distinct) == 1:  # one number says it all (a page repeats the gate under every claim)
        return Gate(name, True, f"every arm at {what} {distinct[0]:g}", {what: distinct[0], "arms": len(seen)})
    measured = {f"{what} ({arm})": (vs[0] if len(vs) == 1 else math.nan) for arm, vs in seen.items()}
    listed = "; ".join(f"{arm} {', '.join(f'{v:g}' for v in vs)}" for arm, vs in seen.items())
    return Gate(name, False, f"the arms ran at different {what}s ({listed})", measured)


def at_least(name: str, counts: Mapping[str, int], minimum: int, what: str = "runs") -> Gate:
    """A design condition counted from the records: every condition has at least `minimum` `what` (e.g. 3
    teachers per label-smoothing value, so that an interval over teachers carries teacher-to-teacher variance)."""
    if minimum < 1:
        raise ValueError(f"minimum must be >= 1, got {minimum!r}")
    measured = {f"{what} ({k})": int(v) for k, v in counts.items()}
    short = [k for k, v in counts.items() if v < minimum]
    if counts and not short:
        return Gate(name, True, f"at least {minimum} {what} per condition", measured)
    listed = ", ".join(f"{k}: {counts[k]}" for k in short) or "no condition recorded"
    return Gate(name, False, f"fewer than {minimum} {what} per condition ({listed})", measured)


def all_passed(gates: Sequence[Gate]) -> bool:
    return all(g.passed for g in gates)


def failed(gates: Sequence[Gate]) -> list[Gate]:
    return [g for g in gates if not g.passed]


__all__ = ["Gate", "all_passed", "converged", "failed", "has_room", "last_epochs_slope", "premise",
           "same_setting", "teacher_better", "at_least"]
