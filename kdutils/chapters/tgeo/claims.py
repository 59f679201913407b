"""Hu, Wu et al. (TGeo-KD): the chapter's claims and their verdict rules, judged from the recorded runs only."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from kdutils.chapters.tgeo.plan import (ARMS, ARM_LABELS, BASELINE_ARMS, CHANCE_ACCURACY, METHOD_ARM, Plan,
                                        motivation_cells, plan, recipe, results_table, tgeo_alpha_records)
from kdutils.store.profiles import check_profile
from kdutils.store.store import ResultStore
from kdutils.verdicts import stats
from kdutils.verdicts.verdict import (INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, NOT_YET_RUN, PARTLY, REPRODUCED,
                                      Verdict, beats, scores_by_key, testable, min_testable_gap)


# ---- verdicts -------------------------------------------------------------------------------------------------

CLAIMS = (
    "Motivation experiment: where the teacher is right, a larger student-teacher distance favours a larger KD "
    "weight; where it is wrong, a smaller KD weight is better.",
    "TGeo-KD beats vanilla KD and every sample-wise baseline (ANL-, ADA-, WLS-, RW-KD) in student accuracy.",
    "The learned weight is lower where the teacher is wrong and rises with the student-teacher distance where "
    "it is right.",
)


def scale(profile: str, table: pd.DataFrame | None = None) -> str:
    from kdutils.report.present import short_device

    r = recipe(profile)
    devices = ""
    if table is not None and "device" in table and table["device"].notna().any():
        devices = ", ".join(sorted({short_device(d) for d in table["device"].dropna()}))
    n_test = None
    if table is not None and "n_test" in table and table["n_test"].notna().any():
        n_test = int(table["n_test"].dropna().iloc[0])
    train = "all" if r.n_train is None else f"{r.n_train:,}"
    data = "Fashion-MNIST" if r.dataset == "fashion_mnist" else r.dataset
    return (f"profile `{profile}`, {data} ({train} training images, {r.val_size:,} validation images held out, "
            f"{f'{n_test:,}' if n_test else '?'} test images), {r.teacher} teacher -> MLP "
            f"{r.student_kwargs.get('hidden')} student, {devices or 'device unknown'}")


def _combine(a, b) -> str:
    """Two-part claim: both reproduced -> reproduced; one -> partly; none but a contradiction -> not reproduced."""
    labels = (a.label, b.label)
    if labels == (REPRODUCED, REPRODUCED):
        return REPRODUCED
    if REPRODUCED in labels:
        return PARTLY
    if NOT_REPRODUCED in labels:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc * xc).sum())


def motivation_statistics(cells: pd.DataFrame) -> pd.DataFrame:
    """Per seed: `trend_right` = slope over g1..g5 of (slope of accuracy in pp per unit alpha) (claim: > 0, a
    larger ST favours a larger alpha), `slope_wrong` = mean over g'1..g'5 of the slope of accuracy on alpha
    (claim: < 0, a smaller alpha is better where the teacher is wrong)."""
    rows = []
    for seed, df in cells.groupby("seed"):
        slopes = {g: _slope(d.alpha.values, d.accuracy.values) for g, d in df.groupby("group")
                  if d.alpha.nunique() >= 2}
        right = [slopes.get(f"g{k}") for k in range(1, 6)]
        wrong = [slopes.get(f"g'{k}") for k in range(1, 6)]
        if any(v is None for v in right + wrong):
            continue
        rows.append({"seed": seed, "trend_right": _slope(np.arange(1, 6), np.array(right)),
                     "slope_wrong": float(np.mean(wrong)), **{f"slope_{g}": v for g, v in slopes.items()}})
    return pd.DataFrame(rows)


def motivation_verdict(profile: str, store: ResultStore | None = None, p: Plan | None = None) -> Verdict:
    store = store or ResultStore()
    p = p or plan(profile, store)
    cells = motivation_cells(profile, store, p)
    st = motivation_statistics(cells) if not cells.empty else pd.DataFrame()
    if st.empty:
        return Verdict(CLAIMS[0], NOT_YET_RUN, "The motivation runs are not recorded for this profile.",
                       f"profile `{profile}`")
    failed = int((cells.status != "ok").sum() // 10)
    trend = stats.t_interval(st.trend_right.tolist())
    wrong = stats.t_interval(st.slope_wrong.tolist())
    a, b = beats(trend, "greater"), beats(wrong, "less")
    label = _combine(a, b)
    mean = cells.groupby(["group", "alpha"]).accuracy.mean().unstack()
    best = {g: float(mean.loc[g].idxmax()) for g in mean.index}
    best_txt = ", ".join(f"{g}: {best[g]:g}" for g in [f"g{k}" for k in range(1, 6)] + [f"g'{k}" for k in range(1, 6)]
                         if g in best)
    val = motivation_cells(profile, store, p, where="val")
    val_st = motivation_statistics(val) if not val.empty else pd.DataFrame()
    val_txt = ""
    if not val_st.empty:
        val_txt = (f" On the held-out validation samples (groups from the same pre-trained student) the same "
                   f"statistics are {stats.t_interval(val_st.trend_right.tolist()).describe('pp')} and "
                   f"{stats.t_interval(val_st.slope_wrong.tolist()).describe('pp')} (shown, not judged).")
    evidence = (f"Rule: per seed, the slope of each group's accuracy against alpha (pp of accuracy per unit "
                f"alpha, least squares over the five alphas). (a) Teacher right: the trend of these slopes "
                f"over g1..g5 (ascending ST) must be > 0: {trend.describe('pp per group')}, {a.reason}. "
                f"(b) Teacher wrong: the mean slope over g'1..g'5 must be < 0: {wrong.describe('pp')}, "
                f"{b.reason}. Best alpha per group (mean accuracy over seeds, training samples): {best_txt}."
                f"{val_txt} {'Failed runs: ' + str(failed) + ' (scored at chance).' if failed else 'No run failed.'}")
    sizes = _motivation_sizes(p, store)
    if sizes:
        evidence += (f" Group sizes (training samples, mean over seeds): teacher right {sizes['right']:.0f} per "
                     f"group, teacher wrong {sizes['wrong']:.0f} per group.")
    return Verdict(CLAIMS[0], label, evidence, scale(profile, results_table(profile, store, p)),
                   f"(a) {trend.describe('pp per group')}; (b) {wrong.describe('pp')}")


def _motivation_sizes(p: Plan, store: ResultStore) -> dict[str, float]:
    right, wrong = [], []
    for cfgs in p.motivation.values():
        for role, c in cfgs.items():
            rec = store.get(c) if role != "motivation_pre" else None
            groups = ((rec or {}).get("motivation") or {}).get("train_groups")
            if groups:
                right += [d["n"] for g, d in groups.items() if "'" not in g]
                wrong += [d["n"] for g, d in groups.items() if "'" in g]
                break
    return {"right": float(np.mean(right)), "wrong": float(np.mean(wrong))} if right and wrong else {}


def _scores(table: pd.DataFrame, arm: str) -> tuple[dict, int]:
    return scores_by_key(table[table.arm == arm], "seed", "accuracy", CHANCE_ACCURACY)


def comparison_verdict(profile: str, store: ResultStore | None = None, p: Plan | None = None) -> Verdict:
    """Claim 2: TGeo-KD (both) vs vanilla KD (alpha chosen on validation) and every baseline, paired over seeds."""
    store = store or ResultStore()
    p = p or plan(profile, store)
    table = results_table(profile, store, p)
    vbest = p.vanilla_best()
    needed = {"teacher", "alone", METHOD_ARM, *BASELINE_ARMS} | ({vbest} if vbest else set())
    if table.empty or vbest is None or not needed <= set(table.arm):
        return Verdict(CLAIMS[1], NOT_YET_RUN, "The teacher, the student alone, TGeo-KD, the vanilla KD sweep and "
                                               "every baseline are not all recorded for this profile.",
                       f"profile `{profile}`")
    sc = scale(profile, table)
    n_test = int(table["n_test"].dropna().iloc[0])
    teacher, _ = _scores(table, "teacher")
    t_acc = float(np.mean(list(teacher.values())))
    alone, a_failed = _scores(table, "alone")
    gap = stats.paired_difference({s: t_acc for s in alone}, alone)
    min_gap = min_testable_gap(1.0 - float(np.mean(list(alone.values()))), n_test)
    gate = testable(gap, min_gap)
    method, m_failed = _scores(table, METHOD_ARM)
    comps = {f"vanilla KD (α={ARMS[vbest].alpha:g}, chosen on validation)": vbest,
             **{ARM_LABELS[a]: a for a in BASELINE_ARMS}}
    decisions, parts, failed = {}, [], m_failed + a_failed
    for label, a in comps.items():
        other, f = _scores(table, a)
        failed += f
        diff = stats.paired_difference(method, other)
        decisions[a] = (beats(diff, "greater"), diff)
        parts.append(f"vs {label}: {diff.describe('pp', scale=100)} ({decisions[a][0].label})")
    # the strongest baseline, chosen by mean validation accuracy of its final runs (never by test accuracy)
    val_mean = {a: float(table[table.arm == a]["val accuracy"].mean()) for a in comps.values()}
    best = max(val_mean, key=val_mean.get)
    _, best_diff = decisions[best]
    from scipy import stats as sps

    keys, d = stats.paired_values(method, _scores(table, best)[0])
    p_val = float(sps.ttest_1samp(d, 0.0).pvalue) if len(d) >= 2 and np.std(d) > 0 else math.nan
    gap_txt = (f"Teacher {100 * t_acc:.2f}% test accuracy (one seed); student alone "
               f"{100 * np.mean(list(alone.values())):.2f}% (mean of {len(alone)} seeds): gap "
               f"{gap.describe('pp', scale=100)}, minimum testable gap {100 * min_gap:.2f} pp.")
    testable_txt = (f"the teacher is clearly better than the student alone (the gap's interval excludes 0 and its "
                    f"mean is above the minimum testable gap)" if gate.label != NOT_TESTABLE else gate.reason)
    kd_gain = stats.paired_difference(_scores(table, vbest)[0], alone)
    evidence = (f"Testable: {testable_txt}. {gap_txt} How much room KD has here: vanilla KD minus the student alone "
                f"{kd_gain.describe('pp', scale=100)}. TGeo-KD (intra + inter) minus each arm, test accuracy, paired "
                f"over seeds: " + "; ".join(parts) + f". Strongest baseline by validation accuracy: "
                f"{ARM_LABELS.get(best, best)}; paired t-test against it p = {p_val:.3g}. "
                + (f"Failed runs (scored at chance, {100 * CHANCE_ACCURACY:.0f}%): {failed}." if failed
                   else "No run failed."))
    effect = f"TGeo-KD minus {ARM_LABELS.get(best, best)}: {best_diff.describe('pp', scale=100)}"
    if gate.label == NOT_TESTABLE:
        return Verdict(CLAIMS[1], NOT_TESTABLE, evidence, sc, effect)
    labels = [dec.label for dec, _ in decisions.values()]
    if all(lab == REPRODUCED for lab in labels):
        label = REPRODUCED
    elif REPRODUCED in labels:
        label = PARTLY
    elif NOT_REPRODUCED in labels:
        label = NOT_REPRODUCED
    else:
        label = INCONCLUSIVE
    return Verdict(CLAIMS[1], label, evidence, sc, effect)


def alpha_statistics(profile: str, store: ResultStore | None = None, p: Plan | None = None,
                     arm: str = METHOD_ARM) -> pd.DataFrame:
    """Per seed of a TGeo arm: wrong_minus_right, spearman_right, f_w's relative change, alpha spread."""
    rows = []
    for item in tgeo_alpha_records(profile, store, p, arms=(arm,)):
        rec = item["record"]
        t = rec.get("tgeo")
        if rec["status"] != "ok" or not t:
            rows.append({"seed": item["seed"], "status": rec["status"]})
            continue
        rows.append({"seed": item["seed"], "status": "ok", "wrong_minus_right": t["wrong_minus_right"],
                     "spearman_right": t["spearman_right"], "fw_relative_change": t["fw_relative_change"],
                     "alpha_std": t["alpha_std"], "alpha_q05": t["alpha_q05"], "alpha_q95": t["alpha_q95"],
                     "alpha_mean": t["alpha_mean"], "n_teacher_wrong": t["n_teacher_wrong"]})
    return pd.DataFrame(rows)


def _alpha_group_means(profile: str, store: ResultStore, p: Plan, arm: str = METHOD_ARM) -> dict[str, float]:
    per: dict[str, list[float]] = {}
    for item in tgeo_alpha_records(profile, store, p, arms=(arm,)):
        for g, d in ((item["record"].get("tgeo") or {}).get("groups") or {}).items():
            per.setdefault(g, []).append(float(d["mean"]))
    order = [f"g{k}" for k in range(1, 6)] + [f"g'{k}" for k in range(1, 6)]
    return {g: float(np.mean(per[g])) for g in order if g in per}


def alpha_verdict(profile: str, store: ResultStore | None = None, p: Plan | None = None) -> Verdict:
    """Claim 3 from the learned alpha_i of TGeo-KD (both) on the training samples, per seed."""
    store = store or ResultStore()
    p = p or plan(profile, store)
    st = alpha_statistics(profile, store, p)
    if st.empty:
        return Verdict(CLAIMS[2], NOT_YET_RUN, "No TGeo-KD run is recorded for this profile.", f"profile `{profile}`")
    failed = int((st.status != "ok").sum())
    ok = st[st.status == "ok"]
    # a failed run has no learned alpha: it counts as no effect (0), which widens the interval towards "no"
    wmr = stats.t_interval(ok.wrong_minus_right.tolist() + [0.0] * failed)
    rho = stats.t_interval(ok.spearman_right.tolist() + [0.0] * failed)
    a, b = beats(wmr, "less"), beats(rho, "greater")
    label = _combine(a, b)
    moved = ok.fw_relative_change.min() if not ok.empty else math.nan
    group_means = _alpha_group_means(profile, store, p)
    means_txt = (" Mean alpha_i by group (means over seeds): " + ", ".join(f"{g} {v:.3f}" for g, v in group_means.items())
                 + "." if group_means else "")
    evidence = (f"Rule, per seed, on the learned alpha_i = f_w(Delta_i) of every training sample after training: "
                f"(a) mean alpha where the teacher is wrong minus mean alpha where it is right must be < 0: "
                f"{wmr.describe(digits=3)}, {a.reason}; (b) where the teacher is right, the Spearman correlation "
                f"of alpha_i with ST_i must be > 0: {rho.describe(digits=3)}, {b.reason}. f_w trained: its "
                f"parameters moved by at least {100 * moved:.0f}% of their initial norm in every seed; alpha_i "
                f"spread: std {ok.alpha_std.mean():.3f} on average, 5-95% range "
                f"[{ok.alpha_q05.mean():.3f}, {ok.alpha_q95.mean():.3f}].{means_txt} "
                + (f"Failed runs: {failed} (scored as no effect)." if failed else "No run failed."))
    return Verdict(CLAIMS[2], label, evidence, scale(profile, results_table(profile, store, p)),
                   f"(a) {wmr.describe(digits=3)}; (b) Spearman {rho.describe(digits=3)}")


def chapter_verdicts(profile: str, store: ResultStore | None = None) -> list[Verdict]:
    """One verdict per claim, in the scorecard's order, from the records only (nothing is trained)."""
    profile = check_profile(profile)
    store = store or ResultStore()
    p = plan(profile, store)
    return [motivation_verdict(profile, store, p), comparison_verdict(profile, store, p),
            alpha_verdict(profile, store, p)]
