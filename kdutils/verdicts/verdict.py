"""Verdicts: every headline claim in the book ends in one, computed from recorded runs by the rules below.

The labels, their badges and the `Verdict` a chapter returns live here. The declared claims, the symmetric
rules with minimum effects, `combine` and stability are in `kdutils.rules`, the gates in `kdutils.gates`, power
in `kdutils.power`. The older single-interval rules below stay for the chapters that call them:

- **A beats B** (`beats`): over the seeds/folds both arms ran, the paired mean difference A - B and its 95%
  t-interval (`kdutils.verdicts.stats`). The claim holds ("reproduced") only if the interval excludes 0 in the claimed
  direction; it fails ("not reproduced") if the interval excludes 0 in the other direction; otherwise the
  label is "inconclusive at this scale". A positive mean inside the noise is therefore never "reproduced".
- **A threshold** (`meets_threshold`, e.g. "closes >= 75% of the gap"): "reproduced" if the whole interval
  clears the threshold, "not reproduced" if the whole interval misses it, "inconclusive at this scale" when
  the threshold lies inside the interval.
- **Testable** (`testable`): a claim about what a teacher passes on needs a teacher clearly better than the
  student alone: the teacher-student gap's interval must exclude 0 *and* its mean must be at least
  `min_testable_gap`, two binomial standard errors of the student's test error rate. A smaller gap is within
  what drawing another test set of the same size would move the student's own score by, so any "fraction of
  the gap closed" would be mostly noise: the verdict is then "not testable at this scale".
- **Failed runs count** (`scores_by_key`): a run whose status is "diverged" or "chance" is scored at chance
  level (error rate 1 - 1/classes) in its arm, never dropped. One failed seed thus widens the interval (and
  usually makes the verdict inconclusive or negative), which is what a reader who reran the recipe would see.
- **Too few pairs** (n < 2): no interval exists, so every rule returns "inconclusive at this scale".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Hashable, Mapping, TypeVar

from kdutils.verdicts.stats import Interval

REPRODUCED = "reproduced"
PARTLY = "partly reproduced"
MIXED = "mixed"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive at this scale"
NOT_TESTABLE = "not testable at this scale"
NOT_YET_RUN = "not yet run"
LABELS = (REPRODUCED, PARTLY, MIXED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE, NOT_YET_RUN)
BADGES = {REPRODUCED: "✅", PARTLY: "🟡", MIXED: "🔀", NOT_REPRODUCED: "❌", INCONCLUSIVE: "❔",
          NOT_TESTABLE: "⛔", NOT_YET_RUN: "⏳"}
"""One symbol per verdict label: the chapters' verdicts, the scorecard and the intro's legend all use these."""
#: Record statuses that mean the run failed (`runner.final_status` writes them); they are scored, not dropped.
FAILED_STATUSES = ("diverged", "chance")
DIRECTIONS = ("greater", "less")


@dataclass(frozen=True)
class Verdict:
    """One claim's verdict. `effect` is the headline interval, e.g. "-17 errors [-25, -9], paired t 95%, n=3".
    `gates`, `parts` and `stability` (from `kdutils.rules`) are shown before and beside the label when given;
    `reason` is the rule's one-line account of the label."""

    claim: str
    label: str
    evidence: str
    scale: str
    effect: str = ""
    parts: tuple[Any, ...] = ()
    gates: tuple[Any, ...] = ()
    stability: Any = None
    reason: str = ""
    scored: bool = True  # False for a chapter's own check that is not one of the paper's claims
    code: str = ""  # whether the records it rests on were made from committed code (`provenance.code_status_sentence`)

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ValueError(f"unknown verdict label {self.label!r}; choose one of: {', '.join(LABELS)}")

    @property
    def badge(self) -> str:
        return BADGES[self.label]

    def to_markdown(self) -> str:
        gates = ("**Gates.** " + "; ".join(g.describe() for g in self.gates) + "\n\n") if self.gates else ""
        effect = f"**Effect.** {self.effect}\n\n" if self.effect else ""
        parts = ""
        if self.parts:
            parts = "**Parts.**\n\n" + "\n".join(
                f"- {BADGES.get(p.label, '')} {p.describe()}" + (" *(core)*" if p.core else "")
                + (f"; {p.power.describe()}" if getattr(p, "power", None) else "") for p in self.parts) + "\n\n"
        why = f" ({self.reason})" if self.reason else ""
        stab = f"**Stability.** {self.stability.describe()}\n\n" if self.stability is not None else ""
        stab += f"**Code.** {self.code}.\n\n" if self.code else ""
        own = "" if self.scored else " *(the chapter's own check, not one of the paper's claims)*"
        return (f"**Claim.** {self.claim}{own}\n\n{gates}**Verdict: {self.badge} {self.label}**{why} at scale: "
                f"{self.scale}.\n\n{effect}{parts}{stab}**Evidence.** {self.evidence}")

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


@dataclass(frozen=True)
class Decision:
    """What a rule concluded (`label` is one of LABELS) and a sentence saying why, for the evidence text."""

    label: str
    reason: str


def _check_direction(claimed: str) -> str:
    if claimed not in DIRECTIONS:
        raise ValueError(f"claimed direction must be one of {DIRECTIONS}, got {claimed!r}")
    return claimed


def beats(diff: Interval, claimed: str = "greater") -> Decision:
    """Judge "A beats B" from the paired interval of A - B; `claimed` is the direction the claim predicts
    ("less" for error counts, where beating means fewer)."""
    _check_direction(claimed)
    if not diff.estimable:
        return Decision(INCONCLUSIVE, f"too few paired runs for an interval (n={diff.n})")
    good = diff.above(0.0) if claimed == "greater" else diff.below(0.0)
    bad = diff.below(0.0) if claimed == "greater" else diff.above(0.0)
    if good:
        return Decision(REPRODUCED, "the interval excludes 0 in the claimed direction")
    if bad:
        return Decision(NOT_REPRODUCED, "the interval excludes 0 in the opposite direction")
    return Decision(INCONCLUSIVE, "the interval contains 0")


def meets_threshold(interval: Interval, threshold: float, claimed: str = "greater") -> Decision:
    """Judge "the quantity is >= threshold" (`claimed="greater"`) or "<= threshold" (`"less"`)."""
    _check_direction(claimed)
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    if not interval.estimable:
        return Decision(INCONCLUSIVE, f"too few paired runs for an interval (n={interval.n})")
    clears = interval.low >= threshold if claimed == "greater" else interval.high <= threshold
    misses = interval.high < threshold if claimed == "greater" else interval.low > threshold
    if clears:
        return Decision(REPRODUCED, f"the whole interval clears the threshold {threshold:g}")
    if misses:
        return Decision(NOT_REPRODUCED, f"the whole interval misses the threshold {threshold:g}")
    return Decision(INCONCLUSIVE, f"the threshold {threshold:g} lies inside the interval")


def min_testable_gap(student_error_rate: float, n_test: int, k: float = 2.0) -> float:
    """`k` binomial standard errors of the student's error rate on `n_test` examples: k * sqrt(p (1-p) / n).

    Why this size: the teacher-student gap is the ruler against which distillation is measured; a gap
    within two standard errors of the student's own test score is as small as the change that drawing a new
    test set of the same size would make, so no fraction of it can be read."""
    if not 0.0 <= student_error_rate <= 1.0:
        raise ValueError(f"student_error_rate must be in [0, 1], got {student_error_rate!r}")
    if n_test < 1:
        raise ValueError(f"n_test must be >= 1, got {n_test!r}")
    return k * math.sqrt(student_error_rate * (1.0 - student_error_rate) / n_test)


def testable(gap: Interval, min_gap: float) -> Decision:
    """Gate for claims about a teacher: `gap` is the paired interval of (student alone - teacher) in the
    metric where larger means a better teacher (e.g. student errors - teacher errors). Returns label
    NOT_TESTABLE, or REPRODUCED meaning "testable" (the caller goes on to the claim's own rule)."""
    if not gap.estimable:
        return Decision(NOT_TESTABLE, f"no interval for the teacher-student gap (n={gap.n})")
    if not gap.above(0.0):
        return Decision(NOT_TESTABLE, "the teacher is not clearly better than the student alone "
                                      "(the gap's interval contains 0 or lies below it)")
    if gap.mean < min_gap:
        return Decision(NOT_TESTABLE, f"the teacher-student gap ({gap.mean:.3g}) is smaller than the minimum "
                                      f"testable gap ({min_gap:.3g}, two binomial standard errors of the "
                                      "student's test error)")
    return Decision(REPRODUCED, f"the teacher is clearly better than the student alone (gap {gap.mean:.3g} >= "
                                f"{min_gap:.3g}, interval excludes 0)")


def chance_error_rate(num_classes: int) -> float:
    """Error rate of a classifier that guesses: 1 - 1/classes (0.9 on MNIST)."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes!r}")
    return 1.0 - 1.0 / num_classes


K = TypeVar("K", bound=Hashable)  # a seed or fold id


def scores_by_key(rows: Any, key: str, value: str, failed_value: float,
                  status: str = "status") -> tuple[dict[Any, float], int]:
    """Per-seed (or per-fold) scores of one arm from its table rows, failed runs scored at `failed_value`.

    `rows` is a pandas DataFrame (or a list of dicts) with columns `key`, `value` and `status`. Returns the
    scores and how many runs failed. A row with status "ok" but no value is a broken record: an error."""
    records = rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows)
    scores: dict[Any, float] = {}  # keyed by the table's `key` values (seeds or folds), of whatever type they have
    failed = 0
    for row in records:
        k = row[key]
        if k in scores:
            raise ValueError(f"two runs share {key}={k!r} in one arm; pass one arm (one config per seed) at a time")
        if row.get(status) in FAILED_STATUSES:
            scores[k] = float(failed_value)
            failed += 1
            continue
        if row.get(status) != "ok":
            raise ValueError(f"unknown run status {row.get(status)!r} for {key}={k!r}; "
                             f"expected 'ok' or one of {FAILED_STATUSES}")
        v = row.get(value)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            raise ValueError(f"run {key}={k!r} has status 'ok' but no {value!r} value")
        scores[k] = float(v)
    return scores, failed


def gap_fractions(alone: Mapping[K, float], treated: Mapping[K, float],
                  reference: Mapping[K, float] | float) -> dict[K, float]:
    """Per key, the fraction of the (alone - reference) gap that the treated arm closes:
    (alone - treated) / (alone - reference). `reference` is the teacher (one value, or one per key). Keys
    where the gap is not positive are left out: the `testable` gate must have rejected such data first."""
    out: dict[K, float] = {}
    for k in sorted(set(alone) & set(treated), key=repr):
        if isinstance(reference, Mapping) and k not in reference:
            continue
        ref = reference[k] if isinstance(reference, Mapping) else reference
        gap = float(alone[k]) - float(ref)
        if gap > 0:
            out[k] = (float(alone[k]) - float(treated[k])) / gap
    return out


__all__ = ["BADGES", "DIRECTIONS", "Decision", "FAILED_STATUSES", "INCONCLUSIVE", "LABELS", "MIXED", "NOT_REPRODUCED",
           "NOT_TESTABLE", "NOT_YET_RUN", "PARTLY", "REPRODUCED", "Verdict", "beats", "chance_error_rate",
           "gap_fractions", "meets_threshold", "min_testable_gap", "scores_by_key", "testable"]
