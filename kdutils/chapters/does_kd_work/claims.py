"""Stanton et al.: records as tables and the chapter's six claims with their verdict rules, judged from the
recorded runs only (nothing here trains).

Verdict rules (`kdutils.verdicts.verdict`, paired over student seeds; every part is judged on its own interval, then
the parts are combined by `combine`: all reproduced -> reproduced; some reproduced -> partly reproduced; none
reproduced -> not reproduced if a part failed, else inconclusive at this scale). Failed runs (diverged or at
chance) are scored at chance level: accuracy and agreement 1/10, KL log(10), never dropped.

1. Student vs plain model: the paired interval of (student - plain) test accuracy must lie above -1 point
   ("beats or matches", a non-inferiority margin of MATCH_MARGIN), and agreement must stay "well short of 100%": the upper end of its 95% interval below 99%.
   The plain model of student seed i is teacher-recipe member i + 1 (never member 0, the teacher).
   No teacher-student gate: in self-distillation the teacher *is* a plain model (same architecture and recipe),
   so "teacher clearly better than the student alone" cannot hold by design; the claim compares the student
   with a plain model and measures fidelity, both of which are testable at any gap.
2. Ensembles: the 5-member teacher beats its single members (interval of ens5 - member accuracy over the 5
   members above 0), agreement rises from 1 to 5 members (paired over seeds), and the 5-member student beats
   or matches the plain model.
3. Policies: fidelity changes "a lot" (best minus worst policy by mean agreement: interval above 1 point); the
   best policy for accuracy is not the best for fidelity (different argmax of the means, and the paired
   intervals separate them on both metrics); noise and OOD do not help (neither interval of agreement or
   accuracy against crop/flip lies above 0).
4. Recycling: recycled beats new on accuracy, new beats recycled on agreement (test set, paired).
5. Optimisation: train agreement at the smallest distillation set beats the whole set, without augmentation and
   with MixUp; and MixUp's train agreement is below "none"'s on the whole set.
6. Near-teacher init: agreement at the smallest r beats r = 1 (random init), reaches NEAR_PERFECT (the whole
   interval >= 98%, fixed before the runs), and the random-init student ends at a higher distillation loss on
   its own distillation data than the smallest-r student (a worse optimum of the same objective).
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pandas as pd

from kdutils.chapters.does_kd_work import plan as dkw
from kdutils.report import present
from kdutils.store.profiles import check_profile
from kdutils.store.store import ResultStore
from kdutils.verdicts import stats
from kdutils.verdicts.verdict import (INCONCLUSIVE, NOT_REPRODUCED, NOT_YET_RUN, PARTLY, REPRODUCED, Decision, Verdict,
                                      beats, meets_threshold, scores_by_key)


PAPER = {"title": "Does Knowledge Distillation Really Work?",
         "authors": "Samuel Stanton, Pavel Izmailov, Polina Kirichenko, Alexander A. Alemi, Andrew Gordon Wilson",
         "venue": "NeurIPS 2021", "arxiv": "2106.05945", "url": "https://arxiv.org/abs/2106.05945"}
NUM_CLASSES = 10
CHANCE_ACC = 1.0 / NUM_CLASSES
CHANCE_KL = math.log(NUM_CLASSES)
WELL_SHORT = 0.99  # claim 1: "well short of 100%" = the upper end of agreement's interval below 99%
NEAR_PERFECT = 0.98  # claim 6: "near-perfect agreement" = the whole interval at or above 98%
MATCH_MARGIN = 0.01  # "matches": the whole interval of (student - plain) accuracy above -1 point
A_LOT = 0.01  # claim 3: policies change agreement by more than 1 point (best - worst, whole interval)
DATASET_NAMES = {"fashion_mnist": "Fashion-MNIST", "mnist": "MNIST", "cifar100": "CIFAR-100"}
POLICY_NAMES = {"none": "none", "crop_flip": "crop/flip", "mixup_t1": "MixUp τ=1", "mixup_t4": "MixUp τ=4",
                "noise": "Gaussian noise", "ood": "crop/flip + OOD (MNIST)"}
CLAIM_TEXT = dict(enumerate((
    "A student can generalise better than (or as well as) a plain model while agreeing poorly with its teacher: "
    "fidelity stays well short of 100%, even in self-distillation.",
    "Larger teacher ensembles (1, 3, 5 members) give better teacher accuracy and fidelity, and the student "
    "matches or beats a single model.",
    "The augmentation used for distillation changes fidelity a lot, and the best policy for student accuracy is "
    "not the best for fidelity; noise and out-of-distribution inputs do not help.",
    "Distilling on the teacher's own training data gives better student accuracy; new data gives better fidelity.",
    "The student cannot fit the teacher even on its distillation data: train agreement falls as the "
    "distillation set grows (without augmentation and with MixUp).",
    "Initialising the student near the teacher's weights recovers near-perfect agreement; from a random init it "
    "reaches a worse optimum of the distillation loss.",
), start=1))


# ------------------------------------------------------------------------------------------------- records
def _ms(values: pd.Series, digits: int = 1) -> str:
    """"mean ± std" with one decimal unless told (std over seeds; none with one value)."""
    return present.fmt_series_mean_std(values, digits)


def _spec_row(claim: int, spec: dkw.DistillSpec, rec: dict[str, Any]) -> dict[str, Any]:
    row = {"claim": claim, "key": spec.key(), "seed": spec.seed, "policy": spec.policy, "k": spec.ensemble_size,
           "r": 1.0 if spec.r is None else spec.r, "fraction": spec.distill_fraction,
           "distill_data": spec.distill_data, "lr": spec.lr, "lr_used": rec.get("lr_used"),
           "epochs": spec.epochs, "status": rec["status"], "n_distill": rec.get("n_distill"),
           "n_test": rec.get("n_test"), "wall_time_s": rec.get("wall_time_s"),
           "device": rec.get("provenance", {}).get("device"), "commit": rec.get("provenance", {}).get("commit"),
           "line": rec.get("line")}
    row.update(rec.get("metrics", {}))
    return row


_MEMO: dict[tuple, pd.DataFrame] = {}


def _memo(fn):
    """Cache a table per (profile, dataset, store, state of the store's folder): the page asks for the same
    tables many times, and rebuilding the plan each time is slow; a new or rewritten record invalidates it."""
    import functools

    @functools.wraps(fn)
    def wrapper(profile: str, dataset: str = "fashion_mnist", store: ResultStore | None = None) -> pd.DataFrame:
        store = store or ResultStore()
        folder = store.root / dkw.EXPERIMENT
        state = tuple(sorted((e.name, e.stat().st_mtime_ns) for e in os.scandir(folder))) if folder.is_dir() else ()
        key = (fn.__name__, profile, dataset, str(store.root), hash(state))
        if key not in _MEMO:
            _MEMO[key] = fn(profile, dataset, store)
        return _MEMO[key].copy()

    return wrapper


@_memo
def student_table(profile: str, dataset: str = "fashion_mnist", store: ResultStore | None = None) -> pd.DataFrame:
    """One row per (claim, recorded distilled student) of the current plan; missing runs left out."""
    store = store or ResultStore()
    p = dkw.plan(profile, dataset, store)
    rows = []
    for claim in dkw.CLAIMS:
        for spec in p.specs(claim):
            rec = store.get(spec)
            if rec is not None:
                rows.append(_spec_row(claim, spec, rec))
    return pd.DataFrame(rows)


@_memo
def teacher_table(profile: str, dataset: str = "fashion_mnist", store: ResultStore | None = None) -> pd.DataFrame:
    """The recorded teacher-recipe runs at the chosen rate: members 0.. (member i+1 is plain model i) and halves."""
    store = store or ResultStore()
    p = dkw.plan(profile, dataset, store)
    if p.teacher is None:
        return pd.DataFrame()
    rows = []
    for cfg in dkw.teacher_configs(profile, dataset, p.teacher_lr):
        rec = store.get(cfg)
        if rec is None:
            continue
        rows.append({"member": cfg.seed, "half": None if cfg.data.fold is None else 1 - cfg.data.fold,
                     "status": rec["status"], "n_test": rec.get("n_test"), "n_train": rec.get("n_train"),
                     "wall_time_s": rec.get("wall_time_s"), "device": rec.get("provenance", {}).get("device"),
                     "lr": cfg.train.lr, **rec.get("metrics", {})})
    return pd.DataFrame(rows)


def plain_scores(profile: str, dataset: str = "fashion_mnist", store: ResultStore | None = None,
                 metric: str = "accuracy") -> dict[int, float]:
    """Plain model i's score (teacher-recipe member i + 1), keyed by student seed i; failed at chance."""
    t = teacher_table(profile, dataset, store)
    seeds = dkw.recipe(profile, dataset).seeds
    if t.empty:
        return {}
    full = t[t["half"].isna()].set_index("member")
    out = {}
    for i, s in enumerate(seeds):
        if 1 + i in full.index:
            row = full.loc[1 + i]
            out[s] = CHANCE_ACC if row["status"] != "ok" else float(row[metric])
    return out


def _arm(df: pd.DataFrame, metric: str, failed: float, **where: Any) -> tuple[dict, int]:
    sub = df
    for k, v in where.items():
        sub = sub[sub[k] == v]
    if sub.empty:
        return {}, 0
    return scores_by_key(sub, "seed", metric, failed)


def _failed_value(metric: str) -> float:
    return CHANCE_KL if "kl" in metric or "loss" in metric else CHANCE_ACC


def arm(df: pd.DataFrame, metric: str, **where: Any) -> dict:
    return _arm(df, metric, _failed_value(metric), **where)[0]


def combine(decisions: list[Decision]) -> str:
    labels = [d.label for d in decisions]
    if all(lbl == REPRODUCED for lbl in labels):
        return REPRODUCED
    if any(lbl == REPRODUCED for lbl in labels):
        return PARTLY
    return NOT_REPRODUCED if any(lbl == NOT_REPRODUCED for lbl in labels) else INCONCLUSIVE


def _not_below(diff: stats.Interval, margin: float = MATCH_MARGIN) -> Decision:
    """"Beats or matches" (non-inferiority): reproduced when the whole interval lies above -margin; not
    reproduced when it lies below 0 and reaches below -margin (worse); otherwise inconclusive."""
    if not diff.estimable:
        return Decision(INCONCLUSIVE, f"too few paired runs for an interval (n={diff.n})")
    if diff.low > -margin:
        what = "beats" if diff.low > 0 else "matches"
        return Decision(REPRODUCED, f"the whole interval lies above −{margin * 100:g} point ({what})")
    if diff.high < 0:
        return Decision(NOT_REPRODUCED, "the interval lies below 0 (worse)")
    return Decision(INCONCLUSIVE, f"the interval reaches below −{margin * 100:g} point and above 0")


def _not_above(diff: stats.Interval) -> Decision:
    """"Does not help": reproduced unless the interval lies above 0."""
    if not diff.estimable:
        return Decision(INCONCLUSIVE, f"too few paired runs for an interval (n={diff.n})")
    if diff.above(0.0):
        return Decision(NOT_REPRODUCED, "the interval lies above 0 (it helps)")
    return Decision(REPRODUCED, "the interval does not lie above 0")


def pct(d: stats.Interval) -> str:
    """A difference of two percentages, in percentage points."""
    return d.describe("points", digits=1, scale=100)


def pct_plain(d: stats.Interval) -> str:
    """A rate (agreement) with its interval, the bounds clipped to [0%, 100%] (a t-interval is not)."""
    if d.estimable:
        from dataclasses import replace as _replace

        d = _replace(d, low=max(d.low, 0.0), high=min(d.high, 1.0))
    return d.describe("%", digits=1, scale=100, signed=False)


def scale(profile: str, dataset: str = "fashion_mnist", df: pd.DataFrame | None = None) -> str:
    r = dkw.recipe(profile, dataset)
    devices = ""
    if df is not None and "device" in df and df["device"].notna().any():
        devices = ", ".join(sorted({present.short_device(d) for d in df["device"].dropna()}))
    model = r.student_model if r.widths is None else f"{r.student_model} (widths {'-'.join(map(str, r.widths))})"
    train = "all" if r.n_train is None else f"{r.n_train:,}"
    test = "all" if r.n_test is None else f"{r.n_test:,}"
    return (f"profile `{profile}`, {DATASET_NAMES[dataset]} ({train} training, {test} test images), {model}, "
            f"teachers {r.teacher_epochs} / students {r.student_epochs} epochs, {devices or 'device unknown'}")


def _not_yet(claim: int, profile: str, what: str) -> Verdict:
    return Verdict(CLAIM_TEXT[claim], NOT_YET_RUN, f"{what} not all recorded for this profile.",
                   f"profile `{profile}`")


def _failures(df: pd.DataFrame) -> str:
    bad = df[df["status"] != "ok"] if not df.empty else df
    if bad.empty:
        return " No run failed."
    return (f" Failed runs (scored at chance level): {len(bad)} "
            f"({', '.join(f'{k} {v}' for k, v in bad['status'].value_counts().items())}).")


def _complete(df: pd.DataFrame, claim: int, profile: str, dataset: str) -> bool:
    return not df.empty and len(df[df.claim == claim]) == len(dkw.claim_specs(claim, profile, dataset))


# ------------------------------------------------------------------------------------------------- verdicts
def verdict_1(profile: str, store: ResultStore | None = None, df: pd.DataFrame | None = None) -> Verdict:
    df = student_table(profile, store=store) if df is None else df
    plain = plain_scores(profile, store=store)
    if not _complete(df, 1, profile, "fashion_mnist") or len(plain) < len(dkw.recipe(profile).seeds):
        return _not_yet(1, profile, "The self-distilled students and the plain models are")
    d = df[df.claim == 1]
    acc, agr, kl = arm(d, "accuracy"), arm(d, "agreement"), arm(d, "kl")
    diff = stats.paired_difference(acc, plain)
    agr_i = stats.t_interval(list(agr.values()))
    gen = _not_below(diff)
    if not agr_i.estimable:
        fid = Decision(INCONCLUSIVE, "too few seeds for an interval")
    elif agr_i.high < WELL_SHORT:
        fid = Decision(REPRODUCED, f"the whole interval lies below {WELL_SHORT:.0%}")
    elif agr_i.low >= WELL_SHORT:
        fid = Decision(NOT_REPRODUCED, f"the interval lies at or above {WELL_SHORT:.0%}")
    else:
        fid = Decision(INCONCLUSIVE, f"the interval straddles {WELL_SHORT:.0%}")
    label = combine([gen, fid])
    mnist = mnist_check(profile, store)
    evidence = (f"Student minus plain model, test accuracy: {pct(diff)} ({gen.reason}). Test agreement with the "
                f"teacher: {pct_plain(agr_i)} ({fid.reason}); KL(teacher || student) "
                f"{np.mean(list(kl.values())):.3f} nats. Teacher (member 0) test accuracy "
                f"{d['teacher_accuracy'].mean():.1%}.{_failures(d)} {mnist}")
    return Verdict(CLAIM_TEXT[1], label, evidence, scale(profile, df=d), f"student − plain: {pct(diff)}")


def mnist_check(profile: str, store: ResultStore | None = None) -> str:
    """The LeNet-5 / MNIST agreement of claim 1's setting (the paper reports > 99%), as a sentence."""
    df = student_table(profile, "mnist", store)
    if df.empty or df[df.claim == 1].empty:
        return "MNIST/LeNet-5 check (paper: > 99% agreement): not yet run."
    d = df[df.claim == 1]
    agr = stats.t_interval(list(arm(d, "agreement").values()))
    plain = plain_scores(profile, "mnist", store)
    diff = stats.paired_difference(arm(d, "accuracy"), plain)
    return (f"MNIST/LeNet-5 check ({scale(profile, 'mnist', d).split(', ', 1)[1]}): agreement "
            f"{pct_plain(agr)} (paper: > 99%), student minus plain model {pct(diff)}.")


def verdict_2(profile: str, store: ResultStore | None = None, df: pd.DataFrame | None = None) -> Verdict:
    df = student_table(profile, store=store) if df is None else df
    plain = plain_scores(profile, store=store)
    teachers = teacher_table(profile, store=store)
    r = dkw.recipe(profile)
    if not _complete(df, 2, profile, "fashion_mnist") or teachers.empty or len(plain) < len(r.seeds):
        return _not_yet(2, profile, "The ensemble students, teachers and plain models are")
    d = df[df.claim == 2]
    big, small = max(r.ensemble_sizes), min(r.ensemble_sizes)
    members = teachers[teachers["half"].isna() & (teachers["member"] < big)]
    member_acc = [CHANCE_ACC if s != "ok" else a for s, a in zip(members["status"], members["accuracy"])]
    ens_acc = float(d[d.k == big]["teacher_accuracy"].iloc[0])
    gain = stats.t_interval([ens_acc - a for a in member_acc])
    t_dec = beats(gain, "greater")
    agr_diff = stats.paired_difference(arm(d, "agreement", k=big), arm(d, "agreement", k=small))
    kl_diff = stats.paired_difference(arm(d, "kl", k=big), arm(d, "kl", k=small))
    f_dec = beats(agr_diff, "greater")
    s_diff = stats.paired_difference(arm(d, "accuracy", k=big), plain)
    s_dec = _not_below(s_diff)
    label = combine([t_dec, f_dec, s_dec])
    by_k = ", ".join(f"{k}: {float(d[d.k == k]['teacher_accuracy'].iloc[0]):.1%}" for k in r.ensemble_sizes)
    evidence = (f"Teacher test accuracy by ensemble size ({by_k}); {big} members minus each single member: "
                f"{pct(gain)} ({t_dec.reason}). Student agreement, {big} minus {small} member(s): {pct(agr_diff)} "
                f"({f_dec.reason}); KL {kl_diff.describe('nats', digits=3)}. Student of the {big}-member "
                f"ensemble minus plain model, accuracy: {pct(s_diff)} ({s_dec.reason}).{_failures(d)}")
    return Verdict(CLAIM_TEXT[2], label, evidence, scale(profile, df=d), f"agreement {big} − {small}: {pct(agr_diff)}")


def verdict_3(profile: str, store: ResultStore | None = None, df: pd.DataFrame | None = None) -> Verdict:
    df = student_table(profile, store=store) if df is None else df
    if not _complete(df, 3, profile, "fashion_mnist"):
        return _not_yet(3, profile, "The students of every policy are")
    d = df[df.claim == 3]
    pols = list(dict.fromkeys(d["policy"]))
    agr = {p: arm(d, "agreement", policy=p) for p in pols}
    acc = {p: arm(d, "accuracy", policy=p) for p in pols}
    mean_agr = {p: float(np.mean(list(v.values()))) for p, v in agr.items()}
    mean_acc = {p: float(np.mean(list(v.values()))) for p, v in acc.items()}
    best_f, worst_f = max(mean_agr, key=mean_agr.get), min(mean_agr, key=mean_agr.get)
    best_a = max(mean_acc, key=mean_acc.get)
    spread = stats.paired_difference(agr[best_f], agr[worst_f])
    a_dec = meets_threshold(spread, A_LOT, "greater")
    if best_f == best_a:
        b_dec = Decision(NOT_REPRODUCED, f"the same policy ({POLICY_NAMES[best_f]}) is best for both")
        sep = ""
    else:
        f_gap = stats.paired_difference(agr[best_f], agr[best_a])
        a_gap = stats.paired_difference(acc[best_a], acc[best_f])
        parts = [beats(f_gap, "greater"), beats(a_gap, "greater")]
        b_dec = Decision(REPRODUCED if all(p.label == REPRODUCED for p in parts) else INCONCLUSIVE,
                         "the two policies differ on both metrics" if all(p.label == REPRODUCED for p in parts)
                         else "the best policies differ by their means but an interval contains 0")
        sep = (f" {POLICY_NAMES[best_f]} minus {POLICY_NAMES[best_a]}: agreement {pct(f_gap)}; "
               f"{POLICY_NAMES[best_a]} minus {POLICY_NAMES[best_f]}: accuracy {pct(a_gap)}.")
    base = dkw.BASE_POLICY
    c_parts, c_text = [], []
    for p in ("noise", "ood"):
        if p not in agr:
            continue
        da = stats.paired_difference(agr[p], agr[base])
        dc = stats.paired_difference(acc[p], acc[base])
        c_parts += [_not_above(da), _not_above(dc)]
        c_text.append(f"{POLICY_NAMES[p]} minus {POLICY_NAMES[base]}: agreement {pct(da)}, accuracy {pct(dc)}")
    c_dec = Decision(combine(c_parts) if c_parts else INCONCLUSIVE, "")
    label = combine([a_dec, b_dec, c_dec])
    table = "; ".join(f"{POLICY_NAMES[p]} {mean_acc[p]:.1%} / {mean_agr[p]:.1%}" for p in pols)
    evidence = (f"Mean test accuracy / agreement per policy: {table}. Best for fidelity {POLICY_NAMES[best_f]}, "
                f"best for accuracy {POLICY_NAMES[best_a]} ({b_dec.reason}).{sep} Best minus worst policy "
                f"agreement: {pct(spread)} ({a_dec.reason}; 'a lot' = more than {A_LOT * 100:g} point). "
                f"{'; '.join(c_text)} (noise/OOD 'do not help' unless an interval lies above 0: "
                f"{c_dec.label}).{_failures(d)}")
    return Verdict(CLAIM_TEXT[3], label, evidence, scale(profile, df=d), f"best − worst policy agreement: {pct(spread)}")


def verdict_4(profile: str, store: ResultStore | None = None, df: pd.DataFrame | None = None) -> Verdict:
    df = student_table(profile, store=store) if df is None else df
    if not _complete(df, 4, profile, "fashion_mnist"):
        return _not_yet(4, profile, "The recycled-data and new-data students are")
    d = df[df.claim == 4]
    acc = stats.paired_difference(arm(d, "accuracy", distill_data="recycled"), arm(d, "accuracy", distill_data="new"))
    agr = stats.paired_difference(arm(d, "agreement", distill_data="new"), arm(d, "agreement", distill_data="recycled"))
    a_dec, f_dec = beats(acc, "greater"), beats(agr, "greater")
    evidence = (f"Teachers trained on one half of the training images; students distilled on that half "
                f"(recycled) or on as many images of the other half (new). Recycled minus new, test accuracy: "
                f"{pct(acc)} ({a_dec.reason}). New minus recycled, test agreement: {pct(agr)} ({f_dec.reason})."
                f" Half-data teacher test accuracy {d['teacher_accuracy'].mean():.1%}.{_failures(d)}")
    return Verdict(CLAIM_TEXT[4], combine([a_dec, f_dec]), evidence, scale(profile, df=d),
                   f"accuracy recycled − new: {pct(acc)}; agreement new − recycled: {pct(agr)}")


def verdict_5(profile: str, store: ResultStore | None = None, df: pd.DataFrame | None = None) -> Verdict:
    df = student_table(profile, store=store) if df is None else df
    if not _complete(df, 5, profile, "fashion_mnist"):
        return _not_yet(5, profile, "The students of every distillation-set size are")
    d = df[df.claim == 5]
    fr = sorted(set(d["fraction"]))
    lo, hi = fr[0], fr[-1]
    parts, text, effects = [], [], []
    for p in ("none", "mixup_t4"):
        diff = stats.paired_difference(arm(d, "train_agreement", policy=p, fraction=lo),
                                       arm(d, "train_agreement", policy=p, fraction=hi))
        dec = beats(diff, "greater")
        parts.append(dec)
        effects.append(f"{POLICY_NAMES[p]}: {pct(diff)}")
        text.append(f"{POLICY_NAMES[p]}: train agreement at {lo:.0%} minus at {hi:.0%} of the set {pct(diff)} "
                    f"({dec.reason})")
    aug = stats.paired_difference(arm(d, "train_agreement", policy="mixup_t4", fraction=hi),
                                  arm(d, "train_agreement", policy="none", fraction=hi))
    aug_dec = beats(aug, "less")
    parts.append(aug_dec)
    means = "; ".join(f"{POLICY_NAMES[p]} " + ", ".join(
        f"{f:.0%}: {np.mean(list(arm(d, 'train_agreement', policy=p, fraction=f).values())):.1%}" for f in fr)
        for p in ("none", "mixup_t4"))
    evidence = (f"Mean train agreement by share of the training images distilled on ({means}); every size gets the "
                f"same number of steps. {'. '.join(text)}. MixUp minus none on the whole set: {pct(aug)} "
                f"({aug_dec.reason}).{_failures(d)}")
    return Verdict(CLAIM_TEXT[5], combine(parts), evidence, scale(profile, df=d),
                   f"train agreement {lo:.0%} − {hi:.0%} of the set, " + "; ".join(effects))


def verdict_6(profile: str, store: ResultStore | None = None, df: pd.DataFrame | None = None) -> Verdict:
    df = student_table(profile, store=store) if df is None else df
    if not _complete(df, 6, profile, "fashion_mnist"):
        return _not_yet(6, profile, "The near-teacher students are")
    d = df[df.claim == 6]
    rs = sorted(set(d["r"]))
    r_min = rs[0]
    agr_min, agr_rand = arm(d, "agreement", r=r_min), arm(d, "agreement", r=1.0)
    diff = stats.paired_difference(agr_min, agr_rand)
    up = beats(diff, "greater")
    level = stats.t_interval(list(agr_min.values()))
    near = meets_threshold(level, NEAR_PERFECT, "greater")
    loss = stats.paired_difference(arm(d, "train_distill_loss", r=1.0), arm(d, "train_distill_loss", r=r_min))
    worse = beats(loss, "greater")
    means = ", ".join(f"r={r:g}: {np.mean(list(arm(d, 'agreement', r=r).values())):.1%}" for r in rs)
    barrier = line_barrier(d)
    evidence = (f"Mean test agreement by r ({means}; r=0 is the teacher, 100%). Agreement at r={r_min:g} minus the "
                f"random init (r=1): {pct(diff)} ({up.reason}); at r={r_min:g}: {pct_plain(level)} ({near.reason}; "
                f"'near-perfect' = at least {NEAR_PERFECT:.0%}). Distillation loss on the distillation images, "
                f"random init minus r={r_min:g}: {loss.describe('', digits=4)} ({worse.reason}). {barrier}"
                f"{_failures(d)}")
    return Verdict(CLAIM_TEXT[6], combine([up, near, worse]), evidence, scale(profile, df=d),
                   f"agreement r={r_min:g} − random init: {pct(diff)}")


def line_barrier(d: pd.DataFrame) -> str:
    """A sentence on the loss along the line random-init student -> teacher (mean over seeds)."""
    lines = line_frame(d)
    if lines.empty:
        return ""
    rand = lines[lines.r == 1.0].groupby("t")["loss"].mean()
    if rand.empty:
        return ""
    inner = rand[(rand.index > 0) & (rand.index < 1)]
    return (f"Along the straight line from the random-init student (t=0, loss {rand.iloc[0]:.4f}) to the teacher "
            f"(t=1, {rand.iloc[-1]:.4f}), BN recomputed, the loss peaks at {inner.max():.4f} (t={inner.idxmax():g})"
            f"{': a barrier' if inner.max() > rand.iloc[0] else ': no barrier'} (mean of "
            f"{lines[lines.r == 1.0]['seed'].nunique()} seeds).")


def line_frame(d: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, row in d.iterrows():
        line = row.get("line")
        if isinstance(line, dict):
            rows += [{"r": row["r"], "seed": row["seed"], "t": t, "loss": v} for t, v in zip(line["t"], line["loss"])]
    return pd.DataFrame(rows, columns=["r", "seed", "t", "loss"])


VERDICTS = (verdict_1, verdict_2, verdict_3, verdict_4, verdict_5, verdict_6)


def chapter_verdicts(profile: str, store: ResultStore | None = None) -> list[Verdict]:
    """One verdict per claim in the scorecard's order, from records only."""
    profile = check_profile(profile)
    df = student_table(profile, store=store)
    return [v(profile, store, df) for v in VERDICTS]
