"""Stanton et al.: the chapter's eight claims declared with their gates, margins and thresholds, judged by the
shared rules (`kdutils.verdicts.rules`) from the recorded runs of the active recipe version only (nothing here
trains). Accuracies and agreements in percentage points, paired over student seeds (`tables`).

Gates: claims 1, 2, 4, 6, 7 and 8 are about what a student learns from its teacher, so the teacher must have
finished learning: its final training accuracy at least 90% and its training accuracy rising by at most
0.2 pts per epoch over its last 5 epochs (`TEACHER_MIN_TRAIN`, `TEACHER_MAX_SLOPE`). Claim 2 also needs its
premise: the 5-member ensemble beats its single members. Margins and thresholds, fixed before the v2 runs:
"significant discrepancy" = test agreement below 97% (`SIGNIFICANT`: more than 3 in 100 test images get another
top-1 class; the poster's ImageNet student disagrees on 14.5 in 100); "a lot" = more than 1 pt; "near-perfect" =
not more than 1 pt below the r = 0 ceiling, the teacher with BatchNorm recomputed as every near-teacher start
is (`NEAR_CEILING`); "does not help" (noise, OOD) = the interval's upper end below +1 pt (`NO_HELP_MARGIN`);
claim 7's "matches" = agreement at least 99% (`MATCH_AGREEMENT`, our threshold: the poster gives no number) and
"does not improve generalisation" = student minus plain model below +0.5 pt (`NO_GAIN_MARGIN`, half the
Fashion-MNIST margin, for MNIST's lower error rates). A part comparing a student with a plain model for
generalisation (claims 1 and 7) also needs the two trained about as much (`matched.budget_gate`), a control added
after v2's records were read: v2's students train for a sixth of the teacher recipe's image-epochs on
Fashion-MNIST and for 3.7 times as many on MNIST. Those parts compare with plain models trained at the students'
budget (`matched`) once they are recorded, and read "not testable" until then; the teacher recipe's plain models
stay in the evidence beside them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from kdutils.chapters.does_kd_work import matched
from kdutils.chapters.does_kd_work import plan as dkw
from kdutils.chapters.does_kd_work.tables import (  # noqa: F401 (PAPER, _ms: re-exported for the notebooks)
    CHANCE_ACC, DATASET_NAMES, PAPER, POLICY_NAMES, _complete, _failures, _ms, arm, baseline_table, line_barrier,
    matched_scores, pct, pct_plain, plain_scores, scale, student_table, teacher_table, version_of)
if TYPE_CHECKING:  # the type checker reads pandas' own names; at run time pandas is imported on first use
    import pandas as pd
else:
    from kdutils.lazy import pandas as pd
from kdutils.store.profiles import check_profile
from kdutils.store.provenance import code_status_sentence
from kdutils.store.store import ResultStore
from kdutils.verdicts import gates, stats
from kdutils.verdicts.rules import (Claim, Finding, combine, compare, find, gated, judge, stability, subset,
                                    to_verdict)
from kdutils.verdicts.verdict import INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, NOT_YET_RUN, REPRODUCED, Verdict

SIGNIFICANT = 97.0  # %: claims 1 and 8, "a significant discrepancy" = agreement wholly below 97%
NEAR_CEILING = 1.0  # pts: claim 6, "near-perfect" = not more than 1 pt below the r = 0 ceiling
A_LOT = 1.0  # pts: claim 3, policies change agreement by more than 1 point (best - worst, whole interval)
NO_HELP_MARGIN = 1.0  # pts: claim 3, noise/OOD "do not help"
MATCH_AGREEMENT = 99.0  # %: claim 7, "the student matches the teacher"
NO_GAIN_MARGIN = 0.5  # pts: claim 7, "self-distillation does not improve generalisation" (MNIST)
TEACHER_MIN_TRAIN = gates.MIN_TRAIN_ACCURACY  # the book's standard: 0.90
TEACHER_MAX_SLOPE = gates.MAX_TRAIN_SLOPE  # 0.002 per epoch over the last 5 epochs (0.2 pts)
CONVERGED = "teacher converged"
#: a student compared with a plain model for generalisation (claims 1 and 7) must have trained about as much
#: (`matched`: image-epochs within 1.5 times either way, the paper's own 300:200 ratio)
BUDGET_FACTOR, BUDGET = matched.BUDGET_FACTOR, matched.BUDGET

CLAIM_TEXT = dict(enumerate((
    "Distillation can improve the student's generalisation while a significant discrepancy between teacher and "
    "student remains: a self-distilled student beats a plain model, yet agrees with its teacher on clearly "
    "fewer than all test images (about 85% on ImageNet in the poster).",
    "With ensembles of 1, 3 and 5 teachers (the poster's ImageNet and IMDB table) the student agrees more with a "
    "larger ensemble and its KL falls, while its accuracy gains less than the teacher's: it falls further behind "
    "a larger teacher.",
    "The augmentation used for distillation changes fidelity a lot, and the best policy for student accuracy is "
    "not the best for fidelity; noise and out-of-distribution inputs do not help.",
    "Distilling on the teacher's own training data gives better student accuracy; new data gives better fidelity.",
    "The student cannot fit the teacher even on its distillation data: train agreement falls as the "
    "distillation set grows (without augmentation and with MixUp).",
    "Initialising the student near the teacher's weights recovers near-perfect agreement; from a random init it "
    "reaches a worse optimum of the distillation loss.",
    "With alpha = 0 and enough unlabelled data the student learns to match the teacher, and then "
    "self-distillation does not improve generalisation (LeNet-5 on MNIST).",
    "The best distillation policy for fidelity reaches only about 85% agreement (MixUp τ=4 on CIFAR-100): even "
    "the best policy leaves a significant discrepancy.",
), start=1))

C1 = Claim(CLAIM_TEXT[1], parts=(
    Claim("student - plain model, test accuracy", "greater", unit="pts", key="improves generalisation"),
    Claim(f"test agreement with the teacher below {SIGNIFICANT:g}%", "less", unit="%", threshold=SIGNIFICANT,
          key="significant discrepancy")), core=("improves generalisation", "significant discrepancy"),
    gates=(CONVERGED,))
C2 = Claim(CLAIM_TEXT[2], parts=(
    Claim("student agreement, 5 minus 1 teacher(s)", "greater", unit="pts", key="agreement rises with members"),
    Claim("student KL(teacher || student), 1 minus 5 teacher(s)", "greater", key="KL falls with members"),
    Claim("teacher minus student accuracy, 5 minus 1 teacher(s)", "greater", unit="pts",
          key="student falls behind a larger teacher")),
    core=("agreement rises with members",), gates=(CONVERGED, "ensemble beats its members"))
C3 = Claim(CLAIM_TEXT[3], parts=(
    Claim(f"best minus worst policy, agreement, above {A_LOT:g} pt", "greater", unit="pts", threshold=A_LOT,
          key="policies change fidelity a lot"),
    Claim("the best policy for accuracy is not the best for fidelity", key="best policies differ"),
    Claim(f"noise and OOD inputs do not help (agreement and accuracy vs crop/flip below +{NO_HELP_MARGIN:g} pt)",
          "not_above", NO_HELP_MARGIN, "pts", key="noise/OOD do not help")))
C4 = Claim(CLAIM_TEXT[4], parts=(
    Claim("recycled minus new, test accuracy", "greater", unit="pts", key="recycled: better accuracy"),
    Claim("new minus recycled, test agreement", "greater", unit="pts", key="new: better fidelity")),
    gates=(CONVERGED,))
C5 = Claim(CLAIM_TEXT[5], parts=(
    Claim("none: train agreement, smallest minus whole set", "greater", unit="pts", key="falls with set size (none)"),
    Claim("MixUp: train agreement, smallest minus whole set", "greater", unit="pts", key="falls with set size (MixUp)"),
    Claim("whole set: MixUp minus none, train agreement", "less", unit="pts", key="MixUp lowers train agreement")))
C6 = Claim(CLAIM_TEXT[6], parts=(
    Claim("agreement at the smallest r minus random init", "greater", unit="pts", key="near-teacher init agrees more"),
    Claim(f"agreement at the smallest r minus the r = 0 ceiling, not below -{NEAR_CEILING:g} pt", "not_below",
          NEAR_CEILING, "pts", key="near-perfect"),
    Claim("distillation loss, random init minus smallest r", "greater", key="random init: worse optimum")),
    gates=(CONVERGED,))
C7 = Claim(CLAIM_TEXT[7], parts=(
    Claim("agreement, most unlabelled images minus none", "greater", unit="pts",
          key="unlabelled data raises agreement"),
    Claim(f"agreement with the most unlabelled images at least {MATCH_AGREEMENT:g}%", "greater", unit="%",
          threshold=MATCH_AGREEMENT, key="matches the teacher"),
    Claim(f"student (most unlabelled images) - plain model, test accuracy, below +{NO_GAIN_MARGIN:g} pt",
          "not_above", NO_GAIN_MARGIN, "pts", key="no gain in generalisation")),
    core=("matches the teacher", "no gain in generalisation"), gates=(f"{CONVERGED} (MNIST)",))
C8 = Claim(CLAIM_TEXT[8], "less", unit="%", threshold=SIGNIFICANT, key="best policy short of the teacher",
           gates=(CONVERGED,))
CLAIMS = (C1, C2, C3, C4, C5, C6, C7, C8)


def _pts(d: dict) -> dict:
    return {k: 100.0 * v for k, v in d.items()}


def _scored(d: pd.DataFrame, metric: str, **where: Any) -> dict:
    out = arm(d, metric, **where)
    return out if "loss" in metric or "kl" in metric else _pts(out)


def _fmt(iv: stats.Interval, unit: str = "pts") -> str:
    """Differences signed, levels (unit "%") not; losses and KL with four decimals."""
    if unit == "":
        return iv.describe("", digits=4)
    return iv.describe(unit, digits=1, signed=unit != "%")


def _level(claim: Claim, values: dict) -> Finding:
    iv = stats.t_interval(list(values.values()))
    return find(claim, iv, effect=_fmt(iv, "%"))


def teacher_gate(profile: str, store: ResultStore, half: int | None = None,
                 dataset: str = "fashion_mnist") -> gates.Gate:
    """Convergence of the chapter's teacher (member 0), or of a half-data teacher (claim 4), from its history."""
    p = dkw.plan(profile, dataset, store)
    suffix = "" if dataset == "fashion_mnist" else f" ({DATASET_NAMES[dataset]})"
    for cfg in dkw.teacher_configs(profile, dataset, p.teacher_lr, p.version):
        is_half = cfg.data.fold is not None
        if (half is None and not is_half and cfg.seed == 0) or (half is not None and cfg.data.fold is not None
                                                                and 1 - cfg.data.fold == half):  # is_half
            rec = store.get(cfg)
            name = CONVERGED + suffix if half is None else f"{CONVERGED} (half-data teacher {half})"
            if rec is None:
                return gates.Gate(name, False, "no record of this teacher at the chosen learning rate")
            return gates.converged(rec.get("history"), TEACHER_MIN_TRAIN, TEACHER_MAX_SLOPE, name=name)
    return gates.Gate(CONVERGED + suffix, False, "no teacher record")


def budget_gate(r: dkw.Recipe) -> gates.Gate:
    """The teacher recipe's budget gate (`matched.budget_gate`; on MNIST, claim 7's student with the most
    unlabelled images)."""
    return matched.budget_gate(r, r.dataset)


def plain_for(profile: str, dataset: str, store: ResultStore, version: str,
              long_plain: dict) -> tuple[dict, gates.Gate]:
    """The plain models claims 1 (Fashion-MNIST) and 7 (MNIST) compare with, and their budget gate: the teacher
    recipe's where it trains about as long as the student, else those at the students' budget (`matched`) once
    recorded (until then the teacher recipe's, whose gate fails)."""
    r = dkw.recipe(profile, dataset, version)
    if not matched.needed(profile, dataset, version):
        return long_plain, matched.budget_gate(r, dataset)
    short = matched_scores(profile, dataset, store)
    if len(short) < len(r.seeds):
        g = matched.budget_gate(r, dataset)
        return long_plain, gates.Gate(g.name, False, g.reason + "; the plain models at the students' budget are "
                                      "not yet recorded", g.measured)
    return short, matched.budget_gate(r, dataset, matched.matched_epochs(r, dataset))


def _long_plain_sentence(profile: str, dataset: str, store: ResultStore, d: pd.DataFrame, **where: Any) -> str:
    """Beside the budget-matched comparison: the student against the teacher recipe's plain models (longer or
    shorter training), as a robustness row."""
    version = version_of(profile, store)
    if not matched.needed(profile, dataset, version) or not matched_scores(profile, dataset, store):
        return ""
    r = dkw.recipe(profile, dataset, version)
    long_plain = plain_scores(profile, dataset, store)
    diff = stats.paired_difference(_scored(d, "accuracy", **where), _pts(long_plain))
    return (f" Against the teacher recipe's plain models instead ({r.teacher_epochs} epochs, not the students' "
            f"budget): student minus plain model {_fmt(diff)}.")


def _sel(keys):
    return (lambda x: x) if keys is None else (lambda x: subset(x, keys))


def _v1(d, plain, g, budget: gates.Gate, keys=None):
    s = _sel(keys)
    fs = [gated(compare(C1.parts[0], s(_scored(d, "accuracy")), s(_pts(plain)), _fmt), [budget]),
          _level(C1.parts[1], s(_scored(d, "agreement")))]
    return judge(C1, fs, [g])


def _v2(d, gs, keys=None):
    s = _sel(keys)
    big, small = max(set(d.k)), min(set(d.k))

    def gap(k: int) -> dict:  # teacher minus student accuracy per seed (the teacher is the same for every seed)
        teacher = 100 * float(d[d.k == k]["teacher_accuracy"].iloc[0])
        return {sd: teacher - a for sd, a in s(_scored(d, "accuracy", k=k)).items()}
    fs = [compare(C2.parts[0], s(_scored(d, "agreement", k=big)), s(_scored(d, "agreement", k=small)), _fmt),
          compare(C2.parts[1], s(_scored(d, "kl", k=small)), s(_scored(d, "kl", k=big)), lambda iv: _fmt(iv, "")),
          compare(C2.parts[2], gap(big), gap(small), _fmt)]
    return judge(C2, fs, gs)


def _mean(x: dict) -> float:
    return float(np.mean(list(x.values())))


def _v3(d, keys=None):
    s = _sel(keys)
    pols = list(dict.fromkeys(d["policy"]))
    agr = {p: s(_scored(d, "agreement", policy=p)) for p in pols}
    acc = {p: s(_scored(d, "accuracy", policy=p)) for p in pols}
    best_f, worst_f = max(pols, key=lambda p: _mean(agr[p])), min(pols, key=lambda p: _mean(agr[p]))
    best_a = max(pols, key=lambda p: _mean(acc[p]))
    spread = compare(C3.parts[0], agr[best_f], agr[worst_f], _fmt)
    if best_f == best_a:  # contradicted only if that policy is clearly best on both metrics (symmetric rule)
        runner_f = max((p for p in pols if p != best_f), key=lambda p: _mean(agr[p]))
        runner_a = max((p for p in pols if p != best_a), key=lambda p: _mean(acc[p]))
        f_gap = compare(Claim("", "greater"), agr[best_f], agr[runner_f])
        a_gap = compare(Claim("", "greater"), acc[best_a], acc[runner_a])
        clear = f_gap.label == REPRODUCED and a_gap.label == REPRODUCED
        differ = Finding(C3.parts[1].key, NOT_REPRODUCED if clear else INCONCLUSIVE,
                         f"the same policy ({POLICY_NAMES[best_f]}) has the best mean on both; against the "
                         f"runner-up: agreement {_fmt(f_gap.interval)}, accuracy {_fmt(a_gap.interval)}")
    else:
        f_gap = compare(Claim("", "greater"), agr[best_f], agr[best_a])
        a_gap = compare(Claim("", "greater"), acc[best_a], acc[best_f])
        labels = {f_gap.label, a_gap.label}
        label = REPRODUCED if labels == {REPRODUCED} else NOT_REPRODUCED if NOT_REPRODUCED in labels else INCONCLUSIVE
        differ = Finding(C3.parts[1].key, label, f"{POLICY_NAMES[best_f]} minus {POLICY_NAMES[best_a]}: agreement "
                         f"{_fmt(f_gap.interval)}; {POLICY_NAMES[best_a]} minus {POLICY_NAMES[best_f]}: "
                         f"accuracy {_fmt(a_gap.interval)}")
    sub = [compare(Claim(f"{p} {m}", "not_above", NO_HELP_MARGIN, "pts", key=f"{POLICY_NAMES[p]} {m}"),
                   src[p], src[dkw.BASE_POLICY], _fmt)
           for p in ("noise", "ood") if p in pols for m, src in (("agreement", agr), ("accuracy", acc))]
    c = combine(sub)
    nohelp = Finding(C3.parts[2].key, c.label, "; ".join(f.describe() for f in sub))
    return judge(C3, [spread, differ, nohelp])


def _v4(d, g, keys=None):
    s = _sel(keys)
    rec_acc, new_acc = (s(_scored(d, "accuracy", distill_data=x)) for x in ("recycled", "new"))
    rec_agr, new_agr = (s(_scored(d, "agreement", distill_data=x)) for x in ("recycled", "new"))
    fs = [compare(C4.parts[0], rec_acc, new_acc, _fmt), compare(C4.parts[1], new_agr, rec_agr, _fmt)]
    return judge(C4, fs, g)


def _v5(d, keys=None):
    s = _sel(keys)
    fr = sorted(set(d["fraction"]))
    lo, hi = fr[0], fr[-1]
    ta = lambda p, f: s(_scored(d, "train_agreement", policy=p, fraction=f))  # noqa: E731
    fs = [compare(C5.parts[0], ta("none", lo), ta("none", hi), _fmt),
          compare(C5.parts[1], ta("mixup_t4", lo), ta("mixup_t4", hi), _fmt),
          compare(C5.parts[2], ta("mixup_t4", hi), ta("none", hi), _fmt)]
    return judge(C5, fs)


def _v6(d, g, ceiling: float | None, keys=None):
    """`ceiling`: the r = 0 agreement in % (None: not recorded, v1), the reference of "near-perfect"."""
    s = _sel(keys)
    r_min = sorted(set(d["r"]))[0]
    agr_min, agr_rand = s(_scored(d, "agreement", r=r_min)), s(_scored(d, "agreement", r=1.0))
    if ceiling is None:
        near = Finding(C6.parts[1].key, NOT_TESTABLE, "no r = 0 ceiling recorded for this recipe (the baseline "
                                                      "evaluations start with recipe v2)")
    else:
        near = compare(C6.parts[1], agr_min, {k: ceiling for k in agr_min}, _fmt)
    fs = [compare(C6.parts[0], agr_min, agr_rand, _fmt), near,
          compare(C6.parts[2], s(_scored(d, "train_distill_loss", r=1.0)), s(_scored(d, "train_distill_loss", r=r_min)),
                  lambda iv: _fmt(iv, ""))]
    return judge(C6, fs, [g])


def _v7(d, plain, g, budget: gates.Gate, keys=None):
    s = _sel(keys)
    most = max(set(d["n_unlabelled"]))
    agr_most, agr_none = s(_scored(d, "agreement", n_unlabelled=most)), s(_scored(d, "agreement", n_unlabelled=0))
    fs = [compare(C7.parts[0], agr_most, agr_none, _fmt), _level(C7.parts[1], agr_most),
          gated(compare(C7.parts[2], s(_scored(d, "accuracy", n_unlabelled=most)), s(_pts(plain)), _fmt), [budget])]
    return judge(C7, fs, [g])


def _v8(d, g, keys=None):
    s = _sel(keys)
    pols = list(dict.fromkeys(d["policy"]))
    agr = {p: s(_scored(d, "agreement", policy=p)) for p in pols}
    best = max(pols, key=lambda p: _mean(agr[p]))
    f = _level(C8, agr[best])
    return judge(C8, Finding(f.key, f.label, f"{POLICY_NAMES[best]}: {f.reason}", f.interval, f.power,
                             effect=f"{POLICY_NAMES[best]} {f.effect}"), [g])


def ceiling_pct(base: pd.DataFrame) -> float | None:
    """The r = 0 agreement (the teacher with BatchNorm recomputed) in %, or None when not recorded."""
    if base.empty:
        return None
    row = base[(base["kind"] == "init") & (base["r"] == 0.0)]
    return None if row.empty else 100.0 * float(row["agreement"].iloc[0])


def _baseline_sentence(n: int, base: pd.DataFrame, d: pd.DataFrame) -> str:
    """Claim 1: plain models' agreement with the teacher; claim 6: agreement at initialisation and the ceiling."""
    if base.empty:
        return " No baselines are recorded for this recipe (they start with recipe v2)."
    if n == 1:
        p = base[base["kind"] == "plain"]
        if p.empty:
            return ""
        plain_agr = _pts(arm(p, "agreement"))
        diff = stats.paired_difference(_pts(arm(d, "agreement")), plain_agr)
        return (f" Baseline: independently trained plain models agree with the teacher "
                f"{_fmt(stats.t_interval(list(plain_agr.values())), '%')}; student minus plain model, agreement "
                f"{_fmt(diff)} (what distillation adds to fidelity).")
    ini = base[base["kind"] == "init"]
    rs = sorted(r for r in set(ini["r"]) if r > 0)
    at = ", ".join(f"r={r:g}: {_ms(ini[ini.r == r]['agreement'] * 100)}%" for r in rs)
    ceil = ceiling_pct(base)
    return (f" Before training (BatchNorm recomputed), agreement at {at}; the r = 0 ceiling (the teacher, BatchNorm "
            f"recomputed) {'not recorded' if ceil is None else f'{ceil:.2f}%'}.")


_NEEDS = {1: "The self-distilled students and the plain models are", 2: "The ensemble students, teachers and plain "
          "models are", 3: "The students of every policy are", 4: "The recycled-data and new-data students are",
          5: "The students of every distillation-set size are", 6: "The near-teacher students are",
          7: "The MNIST students with unlabelled images and the MNIST plain models are",
          8: "The students of every policy are"}


def mnist_check(profile: str, store: ResultStore | None = None) -> str:
    """The LeNet-5 / MNIST agreement of claim 1's setting, as a sentence (the poster gives no number for it)."""
    df = student_table(profile, "mnist", store)
    if df.empty or df[df.claim == 1].empty:
        return "MNIST/LeNet-5 check: not yet run."
    d = df[df.claim == 1]
    agr = stats.t_interval(list(arm(d, "agreement").values()))
    plain = plain_scores(profile, "mnist", store)
    diff = stats.paired_difference(arm(d, "accuracy"), plain)
    version = version_of(profile, store)
    r = dkw.recipe(profile, "mnist", version)
    return (f"MNIST/LeNet-5 check ({scale(profile, 'mnist', d, version).split(', ', 1)[1]}): "
            f"agreement {pct_plain(agr)}, student ({r.student_epochs} epochs) minus plain model (the teacher recipe, "
            f"{r.teacher_epochs} epochs) {pct(diff)}.")


def _evidence(n: int, profile: str, store: ResultStore, d: pd.DataFrame, base: pd.DataFrame) -> str:
    """What the parts do not say: the arms' means, the teachers, the baselines, failures (from the records)."""
    acc = f"Teacher test accuracy {100 * d['teacher_accuracy'].mean():.1f}%." if "teacher_accuracy" in d else ""
    if n == 1:
        kl = np.mean(list(arm(d, "kl").values()))
        return (f"{acc} KL(teacher || student) {kl:.3f} nats.{_baseline_sentence(1, base, d)} "
                f"{mnist_check(profile, store)}{_long_plain_sentence(profile, 'fashion_mnist', store, d)}"
                f"{_failures(d)}")
    if n == 2:
        by_k = ", ".join(f"{k}: {100 * float(d[d.k == k]['teacher_accuracy'].iloc[0]):.1f}%" for k in sorted(set(d.k)))
        return f"Teacher test accuracy by ensemble size: {by_k}.{_failures(d)}"
    if n in (3, 8):
        pols = list(dict.fromkeys(d["policy"]))
        table = "; ".join(f"{POLICY_NAMES[p]} {np.mean(list(arm(d, 'accuracy', policy=p).values())):.1%} / "
                          f"{np.mean(list(arm(d, 'agreement', policy=p).values())):.1%}" for p in pols)
        paper = (f" The poster's best policy (MixUp τ=4, CIFAR-100) reaches about "
                 f"{dkw.PAPER_AGREEMENT['cifar100_best_policy_mixup_t4']:g}%." if n == 8 else "")
        return f"Mean test accuracy / agreement per policy: {table}.{paper}{_failures(d)}"
    if n == 4:
        return (f"Teachers trained on one half of the training images; students distilled on that half (recycled) "
                f"or on as many images of the other half (new). Half-data {acc[0].lower()}{acc[1:]}{_failures(d)}")
    if n == 5:
        fr = sorted(set(d["fraction"]))
        means = "; ".join(f"{POLICY_NAMES[p]} " + ", ".join(
            f"{f:.0%}: {np.mean(list(arm(d, 'train_agreement', policy=p, fraction=f).values())):.1%}" for f in fr)
            for p in ("none", "mixup_t4"))
        return (f"Mean train agreement by share of the training images distilled on ({means}); every size gets the "
                f"same number of steps.{_failures(d)}")
    if n == 7:
        means = ", ".join(f"{int(u):,}: {np.mean(list(arm(d, 'agreement', n_unlabelled=u).values())):.2%}"
                          for u in sorted(set(d["n_unlabelled"])))
        most = max(set(d["n_unlabelled"]))
        return (f"{acc} Mean test agreement by unlabelled images added: {means}."
                f"{_long_plain_sentence(profile, 'mnist', store, d, n_unlabelled=most)}{_failures(d)}")
    rs = sorted(set(d["r"]))
    means = ", ".join(f"r={r:g}: {np.mean(list(arm(d, 'agreement', r=r).values())):.1%}" for r in rs)
    return (f"Mean test agreement by r after training ({means}).{_baseline_sentence(6, base, d)} "
            f"{line_barrier(d)}{_failures(d)}")


def _judgement(n: int, profile: str, store: ResultStore, frames: dict[str, pd.DataFrame]):
    """(label function of a seed subset, the claim's rows) for claim n, or None when its runs are missing."""
    version = version_of(profile, store)
    df, mn = frames["students"], frames["mnist"]
    seeds = dkw.recipe(profile, "fashion_mnist", version).seeds
    plain = plain_scores(profile, store=store)
    g = teacher_gate(profile, store)
    if n == 7:
        plain_m = plain_scores(profile, "mnist", store)
        if not _complete(mn, 7, profile, "mnist", version) or len(plain_m) < len(seeds):
            return None
        d = mn[mn.claim == 7]
        gm = teacher_gate(profile, store, dataset="mnist")
        plain_m, bm = plain_for(profile, "mnist", store, version, plain_m)
        return (lambda k: _v7(d, plain_m, gm, bm, k)), d
    claim = 3 if n == 8 else n
    if not _complete(df, claim, profile, "fashion_mnist", version):
        return None
    if n in (1, 2) and len(plain) < len(seeds) or n == 2 and frames["teachers"].empty:
        return None
    d = df[df.claim == claim]
    if n == 1:
        plain1, b1 = plain_for(profile, "fashion_mnist", store, version, plain)
        return (lambda k: _v1(d, plain1, g, b1, k)), d
    if n == 2:
        teachers, big = frames["teachers"], max(set(d.k))
        members = teachers[teachers["half"].isna() & (teachers["member"] < big)]
        ens = 100 * float(d[d.k == big]["teacher_accuracy"].iloc[0])
        gain = stats.t_interval([ens - 100 * (a if s == "ok" else CHANCE_ACC)
                                 for s, a in zip(members["status"], members["accuracy"])])
        gs = [g, gates.premise("ensemble beats its members", gain, 0.0)]
        return (lambda k: _v2(d, gs, k)), d
    if n == 3:
        return (lambda k: _v3(d, k)), d
    if n == 4:
        g4 = [teacher_gate(profile, store, half=h) for h in (0, 1)]
        return (lambda k: _v4(d, g4, k)), d
    if n == 5:
        return (lambda k: _v5(d, k)), d
    if n == 6:
        ceil = ceiling_pct(frames["baselines"])
        return (lambda k: _v6(d, g, ceil, k)), d
    return (lambda k: _v8(d, g, k)), d


def chapter_verdicts(profile: str, store: ResultStore | None = None) -> list[Verdict]:
    """One verdict per declared claim, from the records only (nothing is trained)."""
    profile = check_profile(profile)
    store = store or ResultStore()
    version = version_of(profile, store)
    frames = {"students": student_table(profile, store=store), "mnist": student_table(profile, "mnist", store),
              "teachers": teacher_table(profile, store=store), "baselines": baseline_table(profile, store=store)}
    recs = [r for r in store.records(dkw.EXPERIMENT) if r.get("config", {}).get("profile") == profile]
    code = code_status_sentence(recs)
    out = []
    for n, claim in enumerate(CLAIMS, start=1):
        got = _judgement(n, profile, store, frames)
        if got is None:
            out.append(Verdict(claim.text, NOT_YET_RUN, f"{_NEEDS[n]} not all recorded for this profile (recipe "
                               f"{version}).", f"profile `{profile}` (recipe {version})"))
            continue
        fn, d = got
        j = fn(None)
        seeds = sorted(set(d.seed))
        stab = None if j.label in (NOT_TESTABLE, NOT_YET_RUN) else stability(seeds, lambda k: fn(set(k)).label, j.label)
        effect = "; ".join(f"{f.key}: {f.effect}" for f in j.parts if f.effect)
        ds = "mnist" if n == 7 else "fashion_mnist"
        out.append(to_verdict(j, _evidence(n, profile, store, d, frames["baselines"]), scale(profile, ds, d, version),
                              effect, stab, code))
    return out


__all__ = ["A_LOT", "CLAIMS", "CLAIM_TEXT", "CONVERGED", "MATCH_AGREEMENT", "NEAR_CEILING", "NO_GAIN_MARGIN",
           "NO_HELP_MARGIN", "PAPER", "SIGNIFICANT", "TEACHER_MAX_SLOPE", "TEACHER_MIN_TRAIN", "ceiling_pct",
           "chapter_verdicts", "mnist_check", "plain_for", "teacher_gate"]
