"""Hinton et al.: the main claim declared with the shared rules (`kdutils.verdicts.rules`) and judged from the
recorded runs only, at the quick profiles (`cpu`, `gpu`, `full`, `smoke`). The paper-scale claims, the chapter's
main result, are in `paper_claims`; they reuse `main_claim` and `judge_main` from here.

The main claim, declared before its runs (paper: 146 errors alone, 74 distilled at T=20, teacher 67):

- part "fewer errors than alone" (core): T=20 minus alone, test errors, direction "less", minimum effect
  `MIN_GAIN` = 15 errors, a fifth of the paper's 72-error gain: an interval wholly above -15 errors is a gain
  smaller than the smallest that counts (not reproduced);
- part "closes >= 75% of the gap": per seed, the share of the alone-teacher gap that T=20 closes (in %), against
  the threshold 75% (the paper closes 91%). Not core: a clear gain that closes surely less than 75% is "mixed"
  (distillation helps, but not most of the way);
- gate "teacher better than the student alone": the gap's interval excludes 0 and its mean reaches two binomial
  standard errors of the student's test error (`verdict.min_testable_gap`);
- stability: the label recomputed on each half of the seeds (`rules.stability`), shown beside the verdict.

A failed run (diverged, at chance) is scored as a guessing classifier (9,000 errors), never dropped.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Hashable, Mapping, Sequence

from kdutils.chapters.hinton.plan import GAP_THRESHOLD, NUM_CLASSES, VERDICT_TAU, arm_name, recipe, results_table
if TYPE_CHECKING:  # the type checker reads pandas' own names; at run time pandas is imported on first use
    import pandas as pd
else:
    from kdutils.lazy import pandas as pd
from kdutils.store.profiles import check_profile
from kdutils.store.store import ResultStore
from kdutils.verdicts import gates as shared_gates, stats
from kdutils.verdicts.gates import Gate
from kdutils.verdicts.rules import Claim, Judgement, Stability, find, judge, stability, subset, to_verdict
from kdutils.verdicts.verdict import (NOT_TESTABLE, NOT_YET_RUN, Verdict, chance_error_rate, gap_fractions,
                                      min_testable_gap, scores_by_key)

#: errors: the smallest gain of T=20 over alone that counts, a fifth of the paper's 72-error gain (146 -> 74)
MIN_GAIN = 15.0
PAPER_GAIN = -72.0
PAPER_SHARE = 91.0  # % of the gap the paper closes: (146 - 74) / (146 - 67)
BEATS, CLOSES = "fewer errors than alone", "closes >= 75% of the gap"
TEACHER_BETTER = "teacher better than the student alone"


def main_claim(text: str, gates: Sequence[str] = (TEACHER_BETTER,), scored: bool = True) -> Claim:
    """The main claim's declaration (the same parts at every scale; `text` names the scale's wording)."""
    return Claim(text, parts=(
        Claim("T=20 minus alone, test errors (paper -72)", "less", MIN_GAIN, "errors", key=BEATS,
              source="15 errors: a fifth of the paper's 72-error gain"),
        Claim("Share of the alone-teacher gap that T=20 closes, per seed (paper 91%)", "greater", 0.0, "%",
              threshold=100 * GAP_THRESHOLD, key=CLOSES, source="'most of the way': 75%, below the paper's 91%")),
        core=(BEATS,), gates=tuple(gates), scored=scored,
        source="the paper's MNIST numbers: 146 errors alone, 74 at T=20, teacher 67")


CLAIM_TEXT = ("Distilling a large regularised MLP at a high temperature (T=20) brings a small MLP most of the way "
              "(at least 75% of the gap) to the teacher's test error (paper: 146 -> 74 errors, teacher 67).")
QUICK_TEXT = ("The chapter's quick check of the main claim (a short recipe for readers to rerun, not the paper's "
              "scale; the paper-scale verdict is the chapter's result): at T=20 the 2x800 MLP makes fewer test "
              "errors than alone and closes at least 75% of the gap to the teacher.")
CLAIM = CLAIM_TEXT  # the paper-scale claim's text (kept under its old name for the pages that quote it)
QUICK = main_claim(QUICK_TEXT, scored=False)


# ---- the judge, on plain per-seed numbers -------------------------------------------------------------------------

def teacher_gate(alone: Mapping[Hashable, float], teacher: float, n_test: int) -> Gate:
    """The shared `teacher_better` gate on (alone - teacher) errors, with the minimum testable gap: two binomial
    standard errors of the student's mean error rate."""
    gap = stats.paired_difference(alone, {s: teacher for s in alone})
    rate = min(max((gap.mean + teacher) / n_test, 0.0), 1.0) if gap.n else 0.5
    return shared_gates.teacher_better(gap, min_testable_gap(rate, n_test) * n_test)


def judge_main(claim: Claim, alone: Mapping[Any, float], kd: Mapping[Any, float], teacher: float,
               n_test: int, extra_gates: Sequence[Gate] = ()) -> Judgement:
    """`claim` (a `main_claim`) on per-seed test errors of the student alone and at T=20 and the teacher's errors;
    `extra_gates` (e.g. convergence) come first."""
    effect = stats.paired_difference(kd, alone)
    shares = stats.t_interval([100 * f for f in gap_fractions(alone, kd, teacher).values()])
    fs = [find(claim.part(BEATS), effect, effect=f"{effect.describe('errors')} (paper {PAPER_GAIN:+.0f})"),
          find(claim.part(CLOSES), shares,
               effect=f"{shares.describe('%', digits=0, signed=False)} (threshold 75%; paper {PAPER_SHARE:.0f}%)")]
    return judge(claim, fs, [*extra_gates, teacher_gate(alone, teacher, n_test)])


def main_stability(claim: Claim, j: Judgement, alone: Mapping, kd: Mapping, teacher: float, n_test: int,
                   extra_gates: Sequence[Gate] = ()) -> Stability | None:
    """The label on each half of the seeds both arms ran (None when there is no verdict to check)."""
    if j.label in (NOT_TESTABLE, NOT_YET_RUN):
        return None
    return stability(set(alone) & set(kd), lambda ks: judge_main(claim, subset(alone, ks), subset(kd, ks), teacher,
                                                                 n_test, extra_gates).label, j.label)


# ---- from the records (the quick profiles) -------------------------------------------------------------------------

def _scale(profile: str, table: pd.DataFrame) -> str:
    n_test = int(table["n_test"].dropna().iloc[0]) if "n_test" in table and table["n_test"].notna().any() else None
    from kdutils.report.present import short_device

    devices = ", ".join(sorted({short_device(d) for d in table["device"].dropna()})) if "device" in table else ""
    r = recipe(profile)
    train = "all 60,000" if r.n_train is None else f"{r.n_train:,}"
    return (f"profile `{profile}`, MNIST ({train} training images, {f'{n_test:,}' if n_test else '?'} test images), "
            f"{devices or 'device unknown'}")


def verdict(table: pd.DataFrame, profile: str, claim: Claim = QUICK) -> Verdict:
    """The main claim's verdict from `results_table(profile)` (see the module docstring for the rule)."""
    if table.empty or not {"teacher", "alone", arm_name(VERDICT_TAU)} <= set(table.arm):
        return Verdict(claim.text, NOT_YET_RUN, "The teacher, the student alone and the T=20 student are not all "
                       "recorded for this profile", f"profile `{profile}`", scored=claim.scored)
    n_test = int(table["n_test"].dropna().iloc[0])
    chance = chance_error_rate(NUM_CLASSES) * n_test  # a failed run is scored as a guessing classifier
    teacher_scores, t_failed = scores_by_key(table[table.arm == "teacher"], "seed", "test errors", chance)
    teacher = float(sum(teacher_scores.values()) / len(teacher_scores))
    alone, a_failed = scores_by_key(table[table.arm == "alone"], "seed", "test errors", chance)
    kd, k_failed = scores_by_key(table[table.arm == arm_name(VERDICT_TAU)], "seed", "test errors", chance)
    j = judge_main(claim, alone, kd, teacher, n_test)
    failed = (f" Failed runs (diverged or at chance), scored at chance level ({chance:.0f} errors): "
              f"{a_failed} alone, {k_failed} at T=20, {t_failed} teacher." if a_failed + k_failed + t_failed else
              " No run failed.")
    mean = lambda d: sum(d.values()) / max(len(d), 1)  # noqa: E731
    evidence = (f"Teacher {teacher:.0f} test errors (one seed; paper 67). Student alone {mean(alone):.1f} (mean of "
                f"{len(alone)} seeds; paper 146). Distilled at T=20: {mean(kd):.1f} (mean of {len(kd)} seeds; paper "
                f"74). " + "; ".join(f.describe() for f in j.parts) + "." + failed)
    return to_verdict(j, evidence, _scale(profile, table), f"T=20 minus alone: {j.parts[0].effect}",
                      main_stability(claim, j, alone, kd, teacher, n_test))


def chapter_verdicts(profile: str, store: ResultStore | None = None) -> list[Verdict]:
    """The quick recipe's verdict at `profile`, from the records only (nothing is trained)."""
    profile = check_profile(profile)
    return [verdict(results_table(profile, store), profile)]


__all__ = ["BEATS", "CLAIM", "CLAIM_TEXT", "CLOSES", "MIN_GAIN", "QUICK", "QUICK_TEXT", "TEACHER_BETTER",
           "chapter_verdicts", "judge_main", "main_claim", "main_stability", "teacher_gate", "verdict"]
