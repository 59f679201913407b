"""Odagiu et al.: the chapter's claims and their verdict rules (testability, the fidelity gate, gap closed),
judged from the recorded runs only.

Every verdict uses the shared rules of `kdutils.verdicts.verdict` (paired 95% t-intervals over folds,
"inconclusive at this scale" when an interval allows either side, "not testable at this scale" when the teacher
is not clearly better than the student, failed runs scored, never dropped). The chapter-specific rules are in the
docstrings of `verdict_transfer`, `verdict_augmentation` and `verdict_generalisation`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kdutils.chapters.invariance.recipes import DATASETS, K_FOLDS, TAUS, check_pair, _row_label
from kdutils.chapters.invariance.tables import figure_rows, results_table
from kdutils.store.store import ResultStore
from kdutils.verdicts import stats
from kdutils.verdicts.verdict import (INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, NOT_YET_RUN, PARTLY, REPRODUCED,
                                      Decision, Verdict, beats, gap_fractions, meets_threshold, min_testable_gap,
                                      scores_by_key, testable)


PAPER = {
    "title": "Knowledge Distillation for Teaching Symmetry Invariances",
    "authors": "Patrick Odagiu, Nicole Nobili, Fabian Dionys Schrag, Yves Bicker, Yuhui Ding",
    "venue": "NeurIPS 2024 Workshop on Symmetry and Geometry in Neural Representations (NeurReps), extended "
             "abstract track; also at the ICLR 2024-25 SciForDL workshop on OpenReview",
    "year": 2024,
    "url": "https://openreview.net/forum?id=ZADu3QclDN",
    "code": "https://github.com/Nicole-Nobili/distillinginvariances",
}
# The authors' MNIST numbers (4-seed means printed by their `processing_results.ipynb`; the paper itself shows
# them only as curves): the ResNet -> MLP row of Figure 1. IM there is the L2 norm under their 5-px roll.
PAPER_MNIST = {
    "teacher": {"accuracy": 0.991, "ece": 0.011, "im": 0.0056},
    "student": {"accuracy": 0.970, "ece": 0.033, "im": 0.877},
    "student_aug": {"accuracy": 0.971, "ece": 0.030, "im": 0.058},
    "distilled": {"accuracy": "0.974-0.980 (tau 4-16); about 0.10 at tau 1 (collapse)", "agreement": "0.97-0.98",
                  "im": "0.86-0.89"},
}
TRANSFER_THRESHOLD = 0.25  # claim 1: "distillation closes less than a quarter of the self-vs-teacher gap"
MEASURES = {"im_l1": "IM (L1)", "flip_rate": "flip rate"}
# Worst value of each metric: a failed run (diverged, or at chance) is scored at it in the arm being judged.
WORST = {"im_l1": 2.0, "flip_rate": 1.0}


# ---------------------------------------------------------------------------------------------------------
# Verdict machinery: per-fold scores of one arm, with failed runs scored


def _num_classes(pair: str) -> int:
    return DATASETS[check_pair(pair).default_dataset].num_classes


def failed_value(metric: str, pair: str) -> float:
    """The score of a failed run (status "diverged" or "chance") in `metric`: chance-level accuracy and
    agreement, the NLL of a uniform guess, the largest ECE a guess can have, the worst IM and flip rate."""
    c = _num_classes(pair)
    values = {"accuracy": 1.0 / c, "agreement": 1.0 / c, "agreement_teacher": 1.0 / c, "val_accuracy": 1.0 / c,
              "nll": math.log(c), "ece": 1.0 - 1.0 / c, **WORST}
    if metric not in values:
        raise ValueError(f"no failed-run score for metric {metric!r}; known: {', '.join(values)}")
    return values[metric]


def _rows(table: pd.DataFrame, pair: str, student: str, role: str, tau: float | None = None,
          direction: str | None = None) -> pd.DataFrame:
    t = table[(table.pair == pair) & (table.role == role)]
    if role not in ("teacher", "teacher_prime"):
        t = t[t.student == student]
    if tau is not None:
        t = t[t.tau == tau]
    if direction is not None:
        t = t[t.direction == direction]
    return t


@dataclass(frozen=True)
class Scores:
    """Per-fold scores of one arm in one metric, and how many of its runs failed."""

    values: dict
    failed: int

    @property
    def n(self) -> int:
        return len(self.values)


def arm_scores(table: pd.DataFrame, pair: str, student: str, role: str, metric: str, tau: float | None = None,
               direction: str | None = None, failed: float | None = None) -> Scores:
    """Per-fold values of `metric` for one arm; failed runs are scored at `failed` (default `failed_value`).
    A finished run without the metric (an older record) leaves the arm without that score: empty Scores."""
    t = _rows(table, pair, student, role, tau, direction)
    if t.empty or metric not in t:
        return Scores({}, 0)
    score = failed_value(metric, pair) if failed is None else failed
    try:
        values, n_failed = scores_by_key(t[["fold", metric, "status"]], "fold", metric, score)
    except ValueError:
        return Scores({}, 0)
    return Scores({int(k): v for k, v in values.items()}, n_failed)


def _n_test(table: pd.DataFrame, pair: str) -> int:
    n = table.loc[table.pair == pair, "n_test"].dropna()
    return int(n.max()) if not n.empty else 0


def testability(table: pd.DataFrame, pair: str, student: str) -> tuple[Decision, stats.Interval, float]:
    """Is the teacher clearly better than the student alone (`kdutils.verdicts.verdict.testable`)? The gap is the
    paired accuracy difference teacher - student over folds (failed runs at chance); the minimum testable gap
    is two binomial standard errors of the student's test error."""
    teacher = arm_scores(table, pair, student, "teacher", "accuracy")
    alone = arm_scores(table, pair, student, "student", "accuracy")
    gap = stats.paired_difference(teacher.values, alone.values)
    n_test = _n_test(table, pair)
    if not alone.values or n_test < 1:
        return Decision(NOT_TESTABLE, "no recorded teacher and student alone"), gap, math.nan
    err = 1.0 - float(np.mean(list(alone.values.values())))
    min_gap = min_testable_gap(min(max(err, 0.0), 1.0), n_test)
    return testable(gap, min_gap), gap, min_gap


def testability_table(table: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Per row of Figure 1: teacher and student accuracy, the paired gap with its interval, the minimum
    testable gap and the decision."""
    rows = []
    for pair, student in figure_rows(profile):
        d, gap, min_gap = testability(table, pair, student)
        t = arm_scores(table, pair, student, "teacher", "accuracy")
        a = arm_scores(table, pair, student, "student", "accuracy")
        if not t.values and not a.values:
            continue
        rows.append({"row": _row_label(pair, student),
                     "teacher acc": float(np.mean(list(t.values.values()))) if t.values else math.nan,
                     "student acc": float(np.mean(list(a.values.values()))) if a.values else math.nan,
                     "gap (teacher - student)": gap.describe(digits=2, scale=100, unit="pts"),
                     "min testable gap": f"{min_gap * 100:.2f} pts" if math.isfinite(min_gap) else "—",
                     "testable": "yes" if d.label == REPRODUCED else "no: " + d.reason})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------
# Claim 1: no invariance transfer, with the fidelity gate and two invariance measures


def fidelity_gate(table: pd.DataFrame, pair: str, student: str, tau: float) -> tuple[Decision, stats.Interval]:
    """Does the student distilled at `tau` agree with its teacher clearly more than the student alone does?
    Paired interval over folds of agreement(distilled, teacher) - agreement(student alone, teacher); failed
    runs at chance agreement. REPRODUCED means "passes"."""
    kd = arm_scores(table, pair, student, "distilled", "agreement", tau, "forward")
    alone = arm_scores(table, pair, student, "student", "agreement_teacher")
    diff = stats.paired_difference(kd.values, alone.values)
    return beats(diff, "greater"), diff


def _gap_closed(table: pd.DataFrame, pair: str, student: str, tau: float, measure: str) -> tuple[dict, int]:
    """Per fold, g = (M_self - M_distilled) / (M_self - M_teacher) for measure M (IM or flip rate). A failed
    distilled run counts as "nothing transferred" (g = 0, it is not evidence of transfer); a failed
    self-distilled run is replaced by the student alone (the self arm's own teacher)."""
    nan = math.nan
    teacher = arm_scores(table, pair, student, "teacher", measure, failed=nan).values
    self_ = arm_scores(table, pair, student, "self", measure, tau, "forward", failed=nan).values
    alone = arm_scores(table, pair, student, "student", measure, failed=nan).values
    kd_scores = arm_scores(table, pair, student, "distilled", measure, tau, "forward", failed=nan)
    ref = {k: (v if not math.isnan(v) else alone.get(k, nan)) for k, v in self_.items()}
    kd = {k: (v if not math.isnan(v) else ref.get(k, nan)) for k, v in kd_scores.values.items()}
    keep = {k for k in set(ref) & set(kd) & set(teacher)
            if not any(math.isnan(x) for x in (ref[k], kd[k], teacher[k]))}
    g = gap_fractions({k: ref[k] for k in keep}, {k: kd[k] for k in keep}, {k: teacher[k] for k in keep})
    return g, kd_scores.failed


def transfer_table(table: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Claim 1 in detail: per row and temperature, the fidelity gate and the fraction of the self-vs-teacher gap
    that distillation closes in IM and in flip rate, each with its interval and decision."""
    rows = []
    for pair, student in figure_rows(profile):
        for tau in TAUS:
            if _rows(table, pair, student, "distilled", tau, "forward").empty:
                continue
            gate, diff = fidelity_gate(table, pair, student, tau)
            row = {"row": _row_label(pair, student), "tau": tau,
                   "agreement gain over alone": diff.describe(digits=1, scale=100, unit="pts"),
                   "fidelity gate": "passes" if gate.label == REPRODUCED else "fails"}
            labels = []
            for m, name in MEASURES.items():
                g, failed = _gap_closed(table, pair, student, tau, m)
                iv = stats.t_interval(list(g.values()))
                d = meets_threshold(iv, TRANSFER_THRESHOLD, "less")
                labels.append(d.label)
                row[f"gap closed ({name})"] = iv.describe(digits=1, scale=100, unit="%")
                row[f"decision ({name})"] = d.label
                row[f"_g_{m}"] = iv.mean
            row["failed KD runs"] = failed
            row["label"] = (INCONCLUSIVE if gate.label != REPRODUCED else
                            labels[0] if labels[0] == labels[1] else INCONCLUSIVE)
            rows.append(row)
    return pd.DataFrame(rows)


def _combine(labels: list[str]) -> str:
    """Rows -> claim. All rows alike: that label; any row reproduced (or partly) beside others: partly;
    otherwise not reproduced if a row says so; inconclusive if nothing is conclusive; not testable if no row is."""
    if not labels:
        return NOT_YET_RUN
    if all(lb == labels[0] for lb in labels):
        return labels[0]
    if any(lb in (REPRODUCED, PARTLY) for lb in labels):
        return PARTLY
    if NOT_REPRODUCED in labels:
        return NOT_REPRODUCED
    if all(lb == NOT_TESTABLE for lb in labels if lb != NOT_YET_RUN):
        return NOT_TESTABLE
    return INCONCLUSIVE


def _scale(table: pd.DataFrame, profile: str) -> str:
    from kdutils.report.present import short_device

    devices = ", ".join(sorted({short_device(d) for d in table["device"].dropna()})) or "unknown device"
    folds = sorted(int(f) for f in set(table["fold"].dropna()))
    n_train = sorted(int(n) for n in set(table["n_train"].dropna()))
    n_test = sorted(int(n) for n in set(table["n_test"].dropna()))
    return (f"profile `{profile}`, MNIST and set-MNIST, folds {folds} of {K_FOLDS}, "
            f"{'/'.join(map(str, n_train))} training and {'/'.join(map(str, n_test))} test examples per run, "
            f"on {devices}")


def _not_yet(claim: str, profile: str) -> Verdict:
    return Verdict(claim, NOT_YET_RUN, "no recorded runs of the current recipe for this profile (run "
                   f"`python -m kdutils run invariance --profile {profile}`)", f"profile `{profile}`")


CLAIMS = {
    "transfer": "KD does not transfer the teacher's invariance: the distilled student is about as non-invariant "
                "as a self-distilled one, at every temperature, even at high fidelity.",
    "augmentation": "Training the student on transformed data gives the best invariance; KD adds nothing beyond "
                    "augmentation.",
    "generalisation": "KD still improves the student's generalisation (accuracy, NLL, ECE).",
}


def verdict_transfer(table: pd.DataFrame, profile: str) -> Verdict:
    """Claim 1. Per row of Figure 1: (a) the row must be testable (`testability`); (b) per temperature, the
    fidelity gate (`fidelity_gate`) must pass, else that temperature is inconclusive (a student that did not
    learn its teacher cannot show whether the invariance transfers); (c) per gated temperature, the fraction g
    of the self-vs-teacher gap that distillation closes (`_gap_closed`), per fold, in IM and in flip rate:
    "reproduced" if the whole 95% interval of g lies below 0.25, "not reproduced" if it lies above, otherwise
    inconclusive; the two measures must agree, else inconclusive. A row is "not reproduced" if any gated
    temperature is, "reproduced" if every gated temperature is (and at least one passed the gate), otherwise
    inconclusive. Rows combine by `_combine`."""
    claim = CLAIMS["transfer"]
    tt = transfer_table(table, profile)
    if tt.empty:
        return _not_yet(claim, profile)
    labels, parts, effects = [], [], []
    for pair, student in figure_rows(profile):
        rows = tt[tt.row == _row_label(pair, student)]
        if rows.empty:
            continue
        test, gap, _ = testability(table, pair, student)
        name = _row_label(pair, student)
        if test.label != REPRODUCED:
            labels.append(NOT_TESTABLE)
            parts.append(f"{name}: not testable ({test.reason})")
            continue
        gated = rows[rows["fidelity gate"] == "passes"]
        if gated.empty:
            label = INCONCLUSIVE
            why = "no temperature passes the fidelity gate (the KD student never agrees with its teacher " \
                  "clearly more than the student alone does)"
        elif (gated.label == NOT_REPRODUCED).any():
            label, why = NOT_REPRODUCED, "distillation closes more than a quarter of the gap"
        elif (gated.label == REPRODUCED).all():
            label, why = REPRODUCED, "distillation closes less than a quarter of the gap in IM and flip rate"
        else:
            label, why = INCONCLUSIVE, "the intervals of the gap closed include 25% (or the measures disagree)"
        labels.append(label)
        failed = int(rows["failed KD runs"].sum())
        taus = ", ".join(f"{t:g}" for t in gated.tau) or "none"
        best = rows.loc[rows["_g_im_l1"].fillna(-math.inf).idxmax()]
        parts.append(f"{name}: {label} ({why}); fidelity gate passed at tau {taus}; largest IM gap closed at "
                     f"tau={best.tau:g}: {best['gap closed (IM (L1))']} (flip rate: {best['gap closed (flip rate)']})"
                     + (f"; {failed} failed KD run(s) counted" if failed else ""))
        effects.append(f"{name}: {best['gap closed (IM (L1))']} of the IM gap at tau={best.tau:g}")
    return Verdict(claim, _combine(labels), "; ".join(parts) + ".", _scale(table, profile), "; ".join(effects))


def augmentation_table(table: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Claim 2 in detail: per row and measure, the augmented student against the most invariant KD student
    (teacher or teacher' -> student, any temperature or KL direction), paired over folds."""
    rows = []
    for pair, student in figure_rows(profile):
        aug_rows = _rows(table, pair, student, "student_aug")
        if aug_rows.empty:
            continue
        for m, name in MEASURES.items():
            aug = arm_scores(table, pair, student, "student_aug", m)
            kd_arms = {}
            for role in ("distilled", "distilled_prime"):
                for (tau, direction), _ in _rows(table, pair, student, role).groupby(["tau", "direction"]):
                    s = arm_scores(table, pair, student, role, m, tau, direction)
                    if s.values:
                        kd_arms[(role, tau, direction)] = s
            if not kd_arms or not aug.values:
                continue
            best = min(kd_arms, key=lambda k: np.mean(list(kd_arms[k].values.values())))
            diff = stats.paired_difference(kd_arms[best].values, aug.values)
            d = beats(diff, "greater")
            rows.append({"row": _row_label(pair, student), "measure": name,
                         "augmented student": float(np.mean(list(aug.values.values()))),
                         "most invariant KD student": float(np.mean(list(kd_arms[best].values.values()))),
                         "KD arm": f"{best[0]}, tau={best[1]:g}, {best[2]}",
                         "KD - augmented": diff.describe(digits=3), "decision": d.label,
                         "failed augmented runs": aug.failed})
    return pd.DataFrame(rows)


def verdict_augmentation(table: pd.DataFrame, profile: str) -> Verdict:
    """Claim 2. Per testable row and per measure (IM, flip rate): the paired difference (most invariant KD
    student - augmented student) over folds, where the most invariant KD student is the teacher or teacher'
    arm (any tau, either KL direction) with the lowest mean. "Reproduced" if the interval lies above 0 (the
    augmented student is more invariant), "not reproduced" if below, else inconclusive; the two measures must
    agree. A failed run (an augmented MLP that never learns is "chance") is scored at the worst value (IM 2,
    flip rate 1): a near-constant predictor is trivially invariant, and its low IM must not count as success."""
    claim = CLAIMS["augmentation"]
    at = augmentation_table(table, profile)
    if at.empty:
        return _not_yet(claim, profile)
    labels, parts, effects = [], [], []
    for pair, student in figure_rows(profile):
        name = _row_label(pair, student)
        rows = at[at.row == name]
        if rows.empty:
            continue
        test, _, _ = testability(table, pair, student)
        if test.label != REPRODUCED:
            labels.append(NOT_TESTABLE)
            parts.append(f"{name}: not testable ({test.reason})")
            continue
        ds = list(rows.decision)
        label = ds[0] if all(x == ds[0] for x in ds) else INCONCLUSIVE
        labels.append(label)
        im = rows[rows.measure == MEASURES["im_l1"]].iloc[0]
        fr = rows[rows.measure == MEASURES["flip_rate"]]
        failed = int(im["failed augmented runs"])
        parts.append(f"{name}: {label}; IM augmented {im['augmented student']:.3g} vs best KD "
                     f"{im['most invariant KD student']:.3g} ({im['KD arm']}), KD - augmented {im['KD - augmented']}"
                     + (f"; flip rate KD - augmented {fr.iloc[0]['KD - augmented']}" if not fr.empty else "")
                     + (f"; {failed} augmented run(s) failed and are scored at the worst IM" if failed else ""))
        effects.append(f"{name}: IM KD - augmented {im['KD - augmented']}")
    return Verdict(claim, _combine(labels), "; ".join(parts) + ".", _scale(table, profile), "; ".join(effects))


def chosen_tau(table: pd.DataFrame, pair: str, student: str) -> float | None:
    """The temperature of the teacher -> student arm with the best mean validation accuracy (the held-out
    fold, never the test set): claim 3 judges that arm."""
    best, best_acc = None, -math.inf
    for tau in TAUS:
        s = arm_scores(table, pair, student, "distilled", "val_accuracy", tau, "forward")
        if s.values and np.mean(list(s.values.values())) > best_acc:
            best, best_acc = tau, float(np.mean(list(s.values.values())))
    return best


def generalisation_table(table: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Claim 3 in detail: per row, the teacher -> student arm at the validation-chosen tau against the student
    alone, paired over folds, in accuracy, NLL and ECE."""
    rows = []
    for pair, student in figure_rows(profile):
        tau = chosen_tau(table, pair, student)
        if tau is None:
            continue
        row = {"row": _row_label(pair, student), "tau (chosen on validation)": tau}
        for m, claimed in (("accuracy", "greater"), ("nll", "less"), ("ece", "less")):
            kd = arm_scores(table, pair, student, "distilled", m, tau, "forward")
            alone = arm_scores(table, pair, student, "student", m)
            diff = stats.paired_difference(kd.values, alone.values)
            row[f"{m} KD - alone"] = diff.describe(digits=2 if m == "accuracy" else 3,
                                                   scale=100 if m == "accuracy" else 1,
                                                   unit="pts" if m == "accuracy" else "")
            row[f"{m} decision"] = beats(diff, claimed).label
            row[f"{m} failed"] = kd.failed + alone.failed
        rows.append(row)
    return pd.DataFrame(rows)


def verdict_generalisation(table: pd.DataFrame, profile: str) -> Verdict:
    """Claim 3. Per testable row, the teacher -> student arm at the temperature with the best validation
    accuracy against the student alone, paired over folds (failed runs at chance accuracy, uniform NLL, worst
    ECE): "reproduced" if accuracy rises (interval above 0) and NLL or ECE falls (interval below 0); "partly"
    if only accuracy does; "not reproduced" if accuracy falls (interval below 0); otherwise inconclusive."""
    claim = CLAIMS["generalisation"]
    gt = generalisation_table(table, profile)
    if gt.empty:
        return _not_yet(claim, profile)
    labels, parts, effects = [], [], []
    for pair, student in figure_rows(profile):
        name = _row_label(pair, student)
        rows = gt[gt.row == name]
        if rows.empty:
            continue
        r = rows.iloc[0]
        test, _, _ = testability(table, pair, student)
        if test.label != REPRODUCED:
            labels.append(NOT_TESTABLE)
            parts.append(f"{name}: not testable ({test.reason})")
            continue
        acc, nll_d, ece_d = r["accuracy decision"], r["nll decision"], r["ece decision"]
        if acc == REPRODUCED:
            label = REPRODUCED if REPRODUCED in (nll_d, ece_d) else PARTLY
        elif acc == NOT_REPRODUCED:
            label = NOT_REPRODUCED
        else:
            label = INCONCLUSIVE
        labels.append(label)
        failed = int(r["accuracy failed"])
        parts.append(f"{name}: {label} at tau={r['tau (chosen on validation)']:g}; accuracy KD - alone "
                     f"{r['accuracy KD - alone']}, NLL {r['nll KD - alone']}, ECE {r['ece KD - alone']}"
                     + (f"; {failed} failed run(s) counted" if failed else ""))
        effects.append(f"{name}: accuracy {r['accuracy KD - alone']}")
    return Verdict(claim, _combine(labels), "; ".join(parts) + ".", _scale(table, profile), "; ".join(effects))


def chapter_verdicts(profile: str, store: ResultStore | None = None) -> list[Verdict]:
    """Every verdict of the chapter, computed from the recorded runs of `profile` (never trains; a profile
    without records gives "not yet run")."""
    table = results_table(profile, store=store)
    return [verdict_transfer(table, profile), verdict_augmentation(table, profile),
            verdict_generalisation(table, profile)]


