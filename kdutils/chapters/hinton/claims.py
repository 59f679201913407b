"""Hinton et al.: the chapter's claim and its verdict rule, judged from the recorded runs only."""
from __future__ import annotations

from kdutils.chapters.hinton.plan import GAP_THRESHOLD, NUM_CLASSES, VERDICT_TAU, arm_name, recipe, results_table
from kdutils.lazy import pandas as pd
from kdutils.store.profiles import check_profile
from kdutils.store.store import ResultStore
from kdutils.verdicts import stats
from kdutils.verdicts.verdict import (INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, NOT_YET_RUN, PARTLY, REPRODUCED,
                                      Verdict, beats, chance_error_rate, gap_fractions, meets_threshold,
                                      min_testable_gap, scores_by_key, testable)


# ---- verdict -----------------------------------------------------------------------------------------------------

CLAIM = ("Distilling a large regularised MLP at a high temperature (T=20) brings a small MLP most of the way "
         "(at least 75% of the gap) to the teacher's test error (paper: 146 -> 74 errors, teacher 67).")


def _scale(profile: str, table: pd.DataFrame) -> str:
    n_test = int(table["n_test"].dropna().iloc[0]) if "n_test" in table and table["n_test"].notna().any() else None
    from kdutils.report.present import short_device

    devices = ", ".join(sorted({short_device(d) for d in table["device"].dropna()})) if "device" in table else ""
    r = recipe(profile)
    train = "all 60,000" if r.n_train is None else f"{r.n_train:,}"
    return (f"profile `{profile}`, MNIST ({train} training images, {f'{n_test:,}' if n_test else '?'} test images), "
            f"{devices or 'device unknown'}")


def verdict(table: pd.DataFrame, profile: str) -> Verdict:
    """The chapter's verdict from `results_table(profile)` (see the module docstring for the rule)."""
    if table.empty or not {"teacher", "alone", arm_name(VERDICT_TAU)} <= set(table.arm):
        return Verdict(CLAIM, NOT_YET_RUN, "The teacher, the student alone and the T=20 student are not all recorded "
                                           "for this profile", f"profile `{profile}`")
    n_test = int(table["n_test"].dropna().iloc[0])
    chance = chance_error_rate(NUM_CLASSES) * n_test  # a failed run is scored as a guessing classifier
    t_rows = table[table.arm == "teacher"]
    teacher_scores, t_failed = scores_by_key(t_rows, "seed", "test errors", chance)
    teacher = float(sum(teacher_scores.values()) / len(teacher_scores))
    alone, a_failed = scores_by_key(table[table.arm == "alone"], "seed", "test errors", chance)
    kd, k_failed = scores_by_key(table[table.arm == arm_name(VERDICT_TAU)], "seed", "test errors", chance)
    scale = _scale(profile, table)

    gap = stats.paired_difference(alone, {s: teacher for s in alone})
    min_gap = min_testable_gap(gap.mean / n_test + teacher / n_test, n_test) * n_test if gap.n else 0.0
    effect = stats.paired_difference(kd, alone)
    fraction = stats.t_interval(list(gap_fractions(alone, kd, teacher).values()))
    failed = (f" Failed runs (diverged or at chance), scored at chance level ({chance:.0f} errors): "
              f"{a_failed} alone, {k_failed} at T=20, {t_failed} teacher." if a_failed + k_failed + t_failed else
              " No run failed.")
    evidence = (f"Teacher {teacher:.0f} test errors (one seed; paper 67). Student alone {gap.mean + teacher:.1f} "
                f"(mean of {len(alone)} seeds; paper 146). Distilled at T=20: {sum(kd.values()) / max(len(kd), 1):.1f} "
                f"(mean of {len(kd)} seeds; paper 74). Gap teacher vs alone: {gap.describe('errors')} "
                f"(minimum testable gap {min_gap:.0f} errors). T=20 minus alone: {effect.describe('errors')}. "
                f"Fraction of the gap closed: {fraction.describe('%', digits=0, scale=100, signed=False)} "
                f"(threshold 75%; paper 91%).{failed}")
    effect_text = f"T=20 minus alone: {effect.describe('errors')}"

    gate = testable(gap, min_gap)
    if gate.label == NOT_TESTABLE:
        return Verdict(CLAIM, NOT_TESTABLE, f"{gate.reason[0].upper()}{gate.reason[1:]}. {evidence}", scale,
                       effect_text)
    better = beats(effect, "less")
    closes = meets_threshold(fraction, GAP_THRESHOLD, "greater")
    if better.label != REPRODUCED:
        return Verdict(CLAIM, better.label, f"T=20 vs alone: {better.reason}; fraction of the gap closed: "
                                            f"{closes.reason}. {evidence}", scale, effect_text)
    label = {REPRODUCED: REPRODUCED, INCONCLUSIVE: INCONCLUSIVE, NOT_REPRODUCED: PARTLY}[closes.label]
    why = f"T=20 beats alone ({better.reason}); fraction of the gap closed: {closes.reason}"
    if label == PARTLY:
        why += " (distillation helps clearly, but closes less than 75% of the gap)"
    return Verdict(CLAIM, label, f"{why}. {evidence}", scale, effect_text)


def chapter_verdicts(profile: str, store: ResultStore | None = None) -> list[Verdict]:
    """Every verdict of the chapter, from the records only (nothing is trained): used by the scorecard."""
    profile = check_profile(profile)
    return [verdict(results_table(profile, store), profile)]
