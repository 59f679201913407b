"""Odagiu et al.: the chapter's claims, declared with their gates and thresholds and judged by the shared rules
(`kdutils.verdicts.rules`), paired over folds, from the recorded runs only; and the tables behind them.

Every row of the paper's Figure 1 is one part of each claim (a replication on another architecture pair, not
a core part): a row whose teacher is not clearly better than its student alone is "not testable" and does not
count. Claim 1 ("even at high fidelity") also gates each temperature: the distilled student must agree with its
teacher clearly more than the student alone does, else that temperature is not testable; a row with no
temperature through the gate is not testable. Within a row every gated temperature is core ("at every
temperature"), and IM and flip rate are both measured (both core). Thresholds and minimum effects: claim 1,
distillation closes less than a quarter of the self-vs-teacher gap (fixed before the runs); claim 2, any effect;
claim 3, accuracy must rise by at least 0.2 pts (half the smallest gain in the authors' ResNet -> MLP row, 97.0%
-> 97.4-98.0%), NLL and ECE by any amount, with accuracy the core part.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kdutils.chapters.invariance.recipes import (DATASETS, PAIRS, TAUS, _row_label, check_pair,
                                                 experiment_name)
from kdutils.chapters.invariance.tables import figure_rows, results_table, scale_text
if TYPE_CHECKING:  # the type checker reads pandas' own names; at run time pandas is imported on first use
    import pandas as pd
else:
    from kdutils.lazy import pandas as pd
from kdutils.store.provenance import code_status_sentence
from kdutils.store.store import ResultStore
from kdutils.verdicts import gates, stats
from kdutils.verdicts.rules import Claim, Finding, combine, compare, decide, find, judge, stability, to_verdict
from kdutils.verdicts.verdict import (NOT_TESTABLE, NOT_YET_RUN, REPRODUCED, Decision, Verdict, beats,
                                      gap_fractions, min_testable_gap, scores_by_key, testable)


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
PAPER_MNIST: dict[str, dict[str, float | str]] = {  # a number, or the paper's range as text
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
    testable gap, how many teacher and student-alone runs failed (scored at chance, so one failed run can
    widen the gap's interval past 0) and the decision."""
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
                     "failed runs (teacher / alone)": f"{t.failed} / {a.failed}",
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


def fidelity_tau(table: pd.DataFrame, pair: str, student: str) -> float | None:
    """The temperature whose distilled students agree best with their teacher on the validation fold (mean over
    folds of recipe v2's `val_agreement`; never the test set). None where it is not recorded (v1's runs)."""
    best, best_v = None, -math.inf
    for tau in TAUS:
        s = arm_scores(table, pair, student, "distilled", "val_agreement", tau, "forward", failed=0.0) \
            if "val_agreement" in table else Scores({}, 0)
        vals = [v for v in s.values.values() if not math.isnan(v)]
        if vals and float(np.mean(vals)) > best_v:
            best, best_v = tau, float(np.mean(vals))
    return best


@dataclass(frozen=True)
class TauTransfer:
    """Claim 1 at one temperature, as both the verdict and its table judge it: the fidelity gate, and per
    measure the interval of the gap closed (g) with its finding."""

    gate: Decision
    gain: stats.Interval  # agreement with the teacher, distilled minus alone
    intervals: dict[str, stats.Interval]  # measure -> interval of g
    findings: list[Finding]  # one per measure, in MEASURES' order
    failed: int  # failed distilled runs

    @property
    def label(self) -> str:
        """Not testable behind a failed gate; else both measures combined by the shared rule."""
        return NOT_TESTABLE if self.gate.label != REPRODUCED else combine(self.findings).label


def _tau_transfer(table: pd.DataFrame, pair: str, student: str, tau: float) -> TauTransfer:
    gate, gain = fidelity_gate(table, pair, student, tau)
    intervals, findings, failed = {}, [], 0
    for m, part in PART_TRANSFER.items():
        g, failed = _gap_closed(table, pair, student, tau, m)
        iv = intervals[m] = stats.t_interval(list(g.values()))
        findings.append(find(part, iv, effect=iv.describe("%", digits=1, scale=100), core=True))
    return TauTransfer(gate, gain, intervals, findings, failed)


def transfer_table(table: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Claim 1 in detail: per row and temperature, the fidelity gate and the fraction of the self-vs-teacher gap
    that distillation closes in IM and in flip rate, each with its interval and decision."""
    rows = []
    for pair, student in figure_rows(profile):
        ft = fidelity_tau(table, pair, student)
        for tau in TAUS:
            if _rows(table, pair, student, "distilled", tau, "forward").empty:
                continue
            tt = _tau_transfer(table, pair, student, tau)
            row = {"row": _row_label(pair, student), "tau": tau,
                   "highest validation agreement": "✔" if ft == tau else "" if ft is not None else "n/a (v1)",
                   "agreement gain over alone": tt.gain.describe(digits=1, scale=100, unit="pts"),
                   "fidelity gate": "passes" if tt.gate.label == REPRODUCED else "fails"}
            for (m, name), f in zip(MEASURES.items(), tt.findings):
                row[f"gap closed ({name})"] = tt.intervals[m].describe(digits=1, scale=100, unit="%")
                row[f"decision ({name})"] = f.label
                row[f"_g_{m}"] = tt.intervals[m].mean
            row["failed KD runs"] = tt.failed
            row["label"] = tt.label  # the label the verdict gives this temperature (`_transfer_row`)
            rows.append(row)
    return pd.DataFrame(rows)


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
            row[f"{m} decision"] = decide(diff, claimed, MIN_ACC_GAIN / 100 if m == "accuracy" else 0.0).label
            row[f"{m} failed"] = kd.failed + alone.failed
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------
# The declared claims and their verdicts

MIN_ACC_GAIN = 0.2  # pts
C1 = Claim(CLAIMS["transfer"], source="threshold 0.25 of the gap (the chapter's, fixed before the runs)")
C2 = Claim(CLAIMS["augmentation"])
C3 = Claim(CLAIMS["generalisation"], source="accuracy +0.2 pts: half the authors' smallest gain")
PART_TRANSFER = {m: Claim(f"{name}: share of the self-vs-teacher gap closed below 25%", "less",
                          threshold=TRANSFER_THRESHOLD, key=name) for m, name in MEASURES.items()}
PART_AUG = {m: Claim(f"{name}: most invariant KD student minus augmented student > 0", "greater", key=name)
            for m, name in MEASURES.items()}
PART_GEN = {"accuracy": Claim("accuracy KD - alone", "greater", MIN_ACC_GAIN, "pts", key="accuracy"),
            "nll": Claim("NLL KD - alone", "less", key="NLL"), "ece": Claim("ECE KD - alone", "less", key="ECE")}


def _row_gate(table, pair, student) -> gates.Gate:
    d, gap, min_gap = testability(table, pair, student)
    failed = arm_scores(table, pair, student, "student", "accuracy").failed
    return gates.Gate("teacher better than the student alone", d.label == REPRODUCED, d.reason,  # in pts, as shown
                      {"gap (pts)": 100 * gap.mean, "low": 100 * gap.low, "high": 100 * gap.high,
                       "min gap": 100 * min_gap, "failed student-alone runs": failed})


def _untestable(name: str, why: str) -> Finding:
    return Finding(name, NOT_TESTABLE, why)


def _transfer_row(table, pair, student) -> Finding | None:
    name = _row_label(pair, student)
    if _rows(table, pair, student, "distilled").empty:
        return None
    g = _row_gate(table, pair, student)
    if not g.passed:
        return _untestable(name, g.describe())
    taus = []
    for tau in TAUS:
        if _rows(table, pair, student, "distilled", tau, "forward").empty:
            continue
        tt = _tau_transfer(table, pair, student, tau)
        if tt.gate.label != REPRODUCED:
            taus.append(_untestable(f"tau {tau:g}", f"fidelity gate fails: agreement gain over alone "
                                                    f"{tt.gain.describe('pts', digits=1, scale=100)}"))
            continue
        taus.append(Finding(f"tau {tau:g}", tt.label, "; ".join(f.describe() for f in tt.findings), core=True,
                            effect=f"tau={tau:g}: " + ", ".join(f"{f.key} {f.effect}" for f in tt.findings)))
    if not taus or all(t.label == NOT_TESTABLE for t in taus):
        return _untestable(name, "no temperature passes the fidelity gate (the distilled student never agrees with "
                                 "its teacher clearly more than the student alone)")
    c = combine(taus)
    shown = [t for t in taus if t.effect]
    return Finding(name, c.label, f"{c.reason}: " + "; ".join(t.describe() for t in taus),
                   effect=("gap closed, " + "; ".join(t.effect for t in shown)) if shown else "")


def _aug_row(table, pair, student) -> Finding | None:
    name = _row_label(pair, student)
    if _rows(table, pair, student, "student_aug").empty:
        return None
    g = _row_gate(table, pair, student)
    if not g.passed:
        return _untestable(name, g.describe())
    ms = []
    for m, part in PART_AUG.items():
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
        f = compare(part, kd_arms[best].values, aug.values, lambda iv: iv.describe(digits=3))
        failed = f"; {aug.failed} augmented run(s) failed, scored at the worst value" if aug.failed else ""
        ms.append(Finding(f.key, f.label, f"{f.reason}; best KD arm {best[0]}, tau={best[1]:g}, {best[2]}{failed}",
                          f.interval, f.power, True, f.effect))
    c = combine(ms)
    return Finding(name, c.label, "; ".join(f.describe() for f in ms),
                   effect="KD - augmented: " + "; ".join(f"{f.key} {f.effect}" for f in ms) if ms else "")


def _gen_row(table, pair, student) -> Finding | None:
    name = _row_label(pair, student)
    tau = chosen_tau(table, pair, student)
    if tau is None:
        return None
    g = _row_gate(table, pair, student)
    if not g.passed:
        return _untestable(name, g.describe())
    ms = []
    for m, part in PART_GEN.items():
        scale = 100.0 if m == "accuracy" else 1.0
        kd = {k: scale * v for k, v in arm_scores(table, pair, student, "distilled", m, tau, "forward").values.items()}
        alone = {k: scale * v for k, v in arm_scores(table, pair, student, "student", m).values.items()}

        def effect(iv: stats.Interval, m: str = m) -> str:  # a def, not a lambda: the checker types its default
            return iv.describe("pts" if m == "accuracy" else "", digits=2 if m == "accuracy" else 3)

        ms.append(compare(part, kd, alone, effect))
    c = combine(ms, core=("accuracy",))
    return Finding(name, c.label, f"tau={tau:g} (chosen on validation); " + "; ".join(f.describe() for f in ms),
                   effect="; ".join(f"{f.key} {f.effect}" for f in ms))


def _judge(claim: Claim, row_fn, table, profile):
    rows = [f for pair, student in figure_rows(profile) if (f := row_fn(table, pair, student)) is not None]
    return judge(Claim(claim.text, parts=tuple(Claim("", key=f.key) for f in rows)), rows) if rows else None


EVIDENCE = {
    "transfer": "g = (M_self - M_distilled) / (M_self - M_teacher) per fold, for IM (L1) and flip rate; a temperature "
                "counts only where the distilled student agrees with its teacher clearly more than the student alone.",
    "augmentation": "The most invariant KD student (teacher or teacher', any tau, either KL direction) against the "
                    "student trained on transformed data.",
    "generalisation": "The teacher -> student arm at the temperature with the best validation accuracy against the "
                      "student alone; accuracy is the core part."}


def _verdict(key: str, claim: Claim, row_fn, table: pd.DataFrame, profile: str, code: str = "") -> Verdict:
    """One claim's verdict over the rows of Figure 1, with its stability on fold halves."""
    j = _judge(claim, row_fn, table, profile) if not table.empty else None
    if j is None:
        return _not_yet(claim.text, profile)
    j = type(j)(claim, j.label, j.reason, j.gates, j.parts)
    folds = sorted(int(f) for f in set(table["fold"].dropna()))

    def label_on(keys):
        jj = _judge(claim, row_fn, table[table.fold.isin(keys)], profile)
        return jj.label if jj else NOT_YET_RUN

    stab = None if j.label in (NOT_TESTABLE, NOT_YET_RUN) else stability(folds, label_on, j.label)
    evidence = (f"One part per row of the paper's Figure 1, paired over folds {folds}; failed runs are scored at the "
                f"worst value (accuracy at chance, IM 2, flip rate 1), never dropped. {EVIDENCE[key]}")
    effect = "; ".join(f"{f.key}: {f.effect}" for f in j.parts if f.effect)
    return to_verdict(j, evidence, scale_text(table, profile), effect, stab, code)


def verdict_transfer(table: pd.DataFrame, profile: str, code: str = "") -> Verdict:
    """Claim 1 (see the module docstring)."""
    return _verdict("transfer", C1, _transfer_row, table, profile, code)


def verdict_augmentation(table: pd.DataFrame, profile: str, code: str = "") -> Verdict:
    """Claim 2."""
    return _verdict("augmentation", C2, _aug_row, table, profile, code)


def verdict_generalisation(table: pd.DataFrame, profile: str, code: str = "") -> Verdict:
    """Claim 3."""
    return _verdict("generalisation", C3, _gen_row, table, profile, code)


def chapter_verdicts(profile: str, store: ResultStore | None = None) -> list[Verdict]:
    """One verdict per declared claim, from the records only (nothing is trained)."""
    table = results_table(profile, store=store)
    store = store or ResultStore()
    recs = [r for e in {experiment_name(pair) for pair in PAIRS} for r in store.records(e)
            if r.get("config", {}).get("profile") == profile]
    code = code_status_sentence(recs)
    return [verdict_transfer(table, profile, code), verdict_augmentation(table, profile, code),
            verdict_generalisation(table, profile, code)]
