"""The report of "Does knowledge distillation really work?": tables, figures and one verdict per claim, read
from the records only (nothing here trains).

Verdict rules (`kdutils.verdict`, paired over student seeds; every part is judged on its own interval, then
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

from .. import present, stats
from ..profiles import check_profile
from ..store import ResultStore
from ..verdict import (INCONCLUSIVE, NOT_REPRODUCED, NOT_YET_RUN, PARTLY, REPRODUCED, Decision, Verdict, beats,
                       meets_threshold, scores_by_key)
from . import does_kd_work as dkw

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


# ------------------------------------------------------------------------------------------------- tables
METRICS = {"teacher_accuracy": "teacher acc (%)", "accuracy": "test acc (%)", "agreement": "test agreement (%)",
           "kl": "test KL(t‖s)", "train_agreement": "train agreement (%)", "train_kl": "train KL(t‖s)",
           "train_distill_loss": "train τ²KL at τ", "nll": "NLL", "ece": "ECE"}
GROUPS = {"policy": "policy", "distill_data": "distillation data", "n_distill": "distillation images", "r": "r",
          "k": "teachers"}


def claim_table(df: pd.DataFrame, claim: int, by: tuple[str, ...], metrics: tuple[str, ...] = (
        "accuracy", "agreement", "kl", "train_agreement", "train_kl"),
        caption: str = "") -> present.Table | None:
    """Mean ± std over seeds of one claim's arms: percentages with one decimal, KL/NLL/ECE with three."""
    if df.empty or df[df.claim == claim].empty:
        return None
    d = df[df.claim == claim]
    rows = []
    for key, g in d.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = {}
        for col, v in zip(by, key):
            if col == "policy":
                v = POLICY_NAMES.get(v, v)
            elif col == "r":
                v = "1 (random init)" if v == 1.0 else f"{v:g}"
            elif col == "n_distill":
                v = f"{int(v):,}"
            row[GROUPS.get(col, col)] = v
        for m in metrics:
            if m in g:
                pct_ = "(%)" in METRICS[m]
                row[METRICS[m]] = _ms(pd.to_numeric(g[m], errors="coerce") * (100 if pct_ else 1), 1 if pct_ else 3)
        row["seeds"] = len(g)
        bad = g["status"][g["status"] != "ok"]
        row["failed"] = ", ".join(f"{n} {k}" for k, n in bad.value_counts().items()) or "none"
        rows.append(row)
    return present.results_table(pd.DataFrame(rows), caption=caption, device=None, status=None)


def ensemble_table(profile: str, store: ResultStore | None = None, df: pd.DataFrame | None = None) -> pd.DataFrame:
    """The poster's table (teacher size, teacher acc, student acc, agreement, KL), ours as mean ± std (%)."""
    df = student_table(profile, store=store) if df is None else df
    if df.empty or df[df.claim == 2].empty:
        return pd.DataFrame()
    d = df[df.claim == 2]
    rows = []
    for k, g in d.groupby("k"):
        def ms(col: str, scale_: float = 100.0, digits: int = 1) -> str:
            return _ms(pd.to_numeric(g[col], errors="coerce") * scale_, digits)
        imagenet = dkw.PAPER_ENSEMBLES["imagenet"].get(int(k))
        rows.append({"teacher size": int(k), "teacher acc (%)": f"{g['teacher_accuracy'].iloc[0] * 100:.1f}",
                     "student acc (%)": ms("accuracy"), "agreement (%)": ms("agreement"),
                     "KL": ms("kl", 1.0, 3), "seeds": len(g),
                     "paper, ImageNet": "—" if imagenet is None else " / ".join(f"{x:g}" for x in imagenet)})
    return pd.DataFrame(rows)


def paper_table(profile: str, store: ResultStore | None = None, df: pd.DataFrame | None = None) -> pd.DataFrame:
    """The paper's headline numbers beside ours (from the records)."""
    df = student_table(profile, store=store) if df is None else df

    def mean(claim: int, metric: str, **where: Any) -> str:
        if df.empty:
            return "not yet run"
        d = df[df.claim == claim]
        for k, v in where.items():
            d = d[d[k] == v]
        if d.empty:
            return "not yet run"
        return _ms(pd.to_numeric(d[metric], errors="coerce") * 100, 1) + "%"

    mn = student_table(profile, "mnist", store)
    mnist = "not yet run" if mn.empty else _ms(pd.to_numeric(mn[mn.claim == 1]["agreement"]) * 100, 1) + "%"
    ens = dkw.PAPER_ENSEMBLES["imagenet"]
    rows = [
        ("Self-distillation test agreement (1 teacher)", f"{ens[1][2]}% (ImageNet ResNet-50)", mean(1, "agreement")),
        ("Agreement, 5-member ensemble teacher", f"{ens[5][2]}% (ImageNet)", mean(2, "agreement", k=5)),
        ("Student accuracy, 1 → 5 members", f"{ens[1][1]}% → {ens[5][1]}% (ImageNet)",
         f"{mean(2, 'accuracy', k=1)} → {mean(2, 'accuracy', k=5)}"),
        ("Best policy's agreement (MixUp τ=4)", f"about {dkw.PAPER_AGREEMENT['cifar100_best_policy_mixup_t4']:g}% "
         "(CIFAR-100)", mean(3, "agreement", policy="mixup_t4")),
        ("LeNet-5 on MNIST, agreement", f"> {dkw.PAPER_AGREEMENT['mnist_lenet5_min']:g}%", mnist),
    ]
    return pd.DataFrame(rows, columns=["quantity", "paper", "ours"])


def selection_frame(profile: str, dataset: str = "fashion_mnist", store: ResultStore | None = None) -> pd.DataFrame:
    p = dkw.plan(profile, dataset, store or ResultStore())
    rows = p.selection_rows()
    cols = ["arm", "lr", "epochs", "status", "val_accuracy", "val_nll", "chosen"]
    if not rows:
        return pd.DataFrame(columns=["data"] + cols)
    out = pd.DataFrame(rows)[cols]
    out.insert(0, "data", DATASET_NAMES[dataset])
    return out


def selection_view(profile: str, store: ResultStore | None = None) -> present.Table:
    t = pd.concat([selection_frame(profile, ds, store) for ds in ("fashion_mnist", "mnist")], ignore_index=True)
    t["chosen"] = t["chosen"].map(lambda c: "✔" if c is True else "")
    return present.results_table(t, {"data": "data", "arm": "arm", "lr": "lr", "epochs": "epochs",
                                     "val_accuracy": "val accuracy", "val_nll": "val NLL", "chosen": "chosen",
                                     "status": "status"}, device=None, max_rows=30,
                                 caption="Learning-rate candidates (seed 0), judged on held-out training images")


def selection_notes(profile: str, store: ResultStore | None = None) -> str:
    """One sentence per selection whose chosen rate lies at an edge of its grid (or "every rate inside")."""
    notes = []
    for ds in ("fashion_mnist", "mnist"):
        t = selection_frame(profile, ds, store)
        for arm_, g in t.groupby("arm", sort=False):
            chosen = g[g["chosen"] == True]  # noqa: E712
            if chosen.empty or len(g) < 2:
                continue
            lr, acc = float(chosen["lr"].iloc[0]), float(chosen["val_accuracy"].iloc[0])
            if lr in (g["lr"].min(), g["lr"].max()):
                spread = g["val_accuracy"].max() - g["val_accuracy"].min()
                notes.append(f"{DATASET_NAMES[ds]} {arm_}: chose {lr:g}, the {'lowest' if lr == g['lr'].min() else 'highest'}"
                             f" rate of its grid (validation accuracy {acc:.1%}; the candidates span "
                             f"{spread * 100:.1f} points)")
    if not notes:
        return "Every chosen rate lies inside its grid." if any(
            not selection_frame(profile, ds, store).empty for ds in ("fashion_mnist", "mnist")) else ""
    return "**At a grid edge:** " + "; ".join(notes) + "."


def wall_time_s(profile: str, store: ResultStore | None = None) -> float:
    """Total recorded wall time of the chapter's runs of `profile` (selection, teachers, students)."""
    store = store or ResultStore()
    total = 0.0
    for rec in store.records(dkw.EXPERIMENT):
        if rec.get("config", {}).get("profile") == profile:
            total += float(rec.get("wall_time_s") or 0.0)
    return total


def plain_table(profile: str, store: ResultStore | None = None, df: pd.DataFrame | None = None) -> present.Table | None:
    """Claim 1: the plain models (teacher recipe, members 1..), the teacher (member 0) and the self-distilled
    students, mean ± std over seeds/members."""
    df = student_table(profile, store=store) if df is None else df
    t = teacher_table(profile, store=store)
    if t.empty:
        return None
    r = dkw.recipe(profile)
    full = t[t["half"].isna()]
    rows = []

    def add(name: str, g: pd.DataFrame, epochs: int) -> None:
        row = {"model": name, "epochs": epochs, "runs": len(g)}
        for m, label in (("accuracy", "test acc (%)"), ("nll", "NLL"), ("ece", "ECE"),
                         ("agreement", "agreement (%)"), ("kl", "KL(t‖s)")):
            if m in g:
                scale_ = 100.0 if "%" in label else 1.0
                row[label] = _ms(pd.to_numeric(g[m], errors="coerce") * scale_, 1 if scale_ == 100 else 3)
            else:
                row[label] = "—"
        rows.append(row)

    add("teacher (member 0)", full[full.member == 0], r.teacher_epochs)
    plain = full[full.member.between(1, len(r.seeds))]
    if not plain.empty:
        add(f"plain (members 1–{len(r.seeds)})", plain, r.teacher_epochs)
    if not df.empty and not df[df.claim == 1].empty:
        add("students", df[df.claim == 1], r.student_epochs)
    out = pd.DataFrame(rows).replace({"nan": "—"})
    return present.results_table(out, device=None, caption="Claim 1: plain models, the teacher and its students")


def protocol_markdown(profile: str, store: ResultStore | None = None) -> str:
    """The recipe of `profile` in prose, with the recorded wall time."""
    r = dkw.recipe(profile)
    m = dkw.recipe(profile, "mnist")
    p = dkw.plan(profile, store=store or ResultStore())
    t_lr = "not yet selected" if p.teacher is None else f"{p.teacher.lr:g}"
    lrs = ", ".join(f"{f}: {lr:g}" for f, lr in p.lrs.items()) or "not yet selected"
    widths = "the authors' widths" if r.widths is None else f"widths {'-'.join(map(str, r.widths))}"
    wall = wall_time_s(profile, store)
    return (
        f"**Scale (`{profile}`).** {DATASET_NAMES[r.dataset]}: {r.n_train or 'all':,} training images (a fixed "
        f"random subset), {r.val_size:,} held-out training images for lr selection, {r.n_test or 'all':,} test "
        f"images. Teacher and student: {r.teacher_model} ({widths}), the same architecture (self-distillation). "
        f"Teachers: {r.teacher_epochs} epochs, SGD with Nesterov momentum 0.9, weight decay {r.weight_decay:g}, "
        f"cosine schedule, batch {r.teacher_batch_size}, crop/flip; lr from {list(r.teacher_lrs)} (chosen: "
        f"{t_lr}). Students: pure distillation (α=0 in the paper's notation, the KD term only) at τ=4 (τ=1 for "
        f"MixUp τ=1), {r.student_epochs} epochs (the authors' 300:200 student-to-teacher ratio), same optimiser; "
        f"lr from {list(r.student_lrs)}, one rate per family (chosen: {lrs}). Seeds {list(r.seeds)} for every "
        f"student arm; the student's initial weights come from seed 100 + s, never from a teacher's seed. "
        f"Ensembles of {', '.join(map(str, r.ensemble_sizes))} members (seeds 0..{r.n_members - 1} of the "
        f"teacher recipe). Near-saturated check: {m.teacher_model} on {DATASET_NAMES['mnist']} at the same sizes."
        f"\n\n**Budget.** {r.notes[:1].upper() + r.notes[1:]}. Recorded wall time of all runs of this profile: {wall / 60:.0f} minutes "
        f"(one thread)."
    )


def verdict_summary(verdicts: list[Verdict]) -> present.Table:
    rows = [{"claim": f"{i}. {v.claim}", "verdict": f"{v.badge} {v.label}", "effect (95% interval)": v.effect or "—"}
            for i, v in enumerate(verdicts, start=1)]
    return present.results_table(pd.DataFrame(rows), device=None, wrap=("verdict", "effect (95% interval)"),
                                 wide=("claim",))


def plan_keys(profile: str, store: ResultStore | None = None) -> set[str]:
    """Keys of every run the current plan of `profile` uses (selections, teachers, students; both data sets)."""
    store = store or ResultStore()
    keys: set[str] = set()
    for ds in ("fashion_mnist", "mnist"):
        p = dkw.plan(profile, ds, store)
        keys |= {c.key() for c in dkw.teacher_selection(profile, ds)}
        if p.teacher is None:
            continue
        keys |= {c.key() for c in dkw.teacher_configs(profile, ds, p.teacher_lr)}
        for fam in dkw.FAMILIES:
            keys |= {s.key() for s in dkw.selection_specs(fam, profile, ds, p.teacher_lr)}
        for claim in dkw.CLAIMS:
            keys |= {s.key() for s in p.specs(claim)}
    return keys


def discarded_runs(profile: str, store: ResultStore | None = None) -> pd.DataFrame:
    """Recorded runs of `profile` that the current plan does not use (earlier recipes), kept for the record
    and shown in the deviations, outside every table and verdict."""
    store = store or ResultStore()
    keep = plan_keys(profile, store)
    rows = []
    for rec in store.records(dkw.EXPERIMENT):
        cfg = rec.get("config", {})
        if cfg.get("profile") != profile or rec.get("key") in keep:
            continue
        teacher = cfg.get("role") == "teacher"
        hist = rec.get("history") or [{}]
        ds = cfg["data"]["dataset"] if teacher else cfg.get("dataset")
        rows.append({"data": DATASET_NAMES.get(ds, ds),
                     "run": "teacher member" if teacher else
                     f"student ({cfg.get('policy')}, {len(cfg.get('teachers', []))} teacher"
                     f"{'s' if len(cfg.get('teachers', [])) > 1 else ''})",
                     "seed": cfg.get("seed"), "epochs": cfg["train"]["epochs"] if teacher else cfg.get("epochs"),
                     "lr": cfg["train"]["lr"] if teacher else cfg.get("lr"), "status": rec.get("status"),
                     "final train acc": hist[-1].get("train_acc"),
                     "val_accuracy": rec.get("metrics", {}).get("val_accuracy")})
    return pd.DataFrame(rows, columns=["data", "run", "seed", "epochs", "lr", "status", "final train acc",
                                       "val_accuracy"])


# ------------------------------------------------------------------------------------------------- figures
def policy_figure(df: pd.DataFrame):
    """Test accuracy against test agreement per policy (mean ± std over seeds)."""
    if df.empty or df[df.claim == 3].empty:
        return None
    d = df[df.claim == 3]
    fig, (ax,) = present.page_figure(1, panel_height=3.2, width=6.5)
    for p, g in d.groupby("policy", sort=False):
        x, y = g["agreement"] * 100, g["accuracy"] * 100
        ax.errorbar(x.mean(), y.mean(), xerr=x.std(ddof=1), yerr=y.std(ddof=1), marker="o", capsize=3,
                    label=POLICY_NAMES[p])
    ax.set_xlabel("test agreement with the teacher (%)")
    ax.set_ylabel("student test accuracy (%)")
    present.shared_legend(fig, [ax], ncol=3)
    return fig


def size_figure(df: pd.DataFrame):
    """Train agreement (on the distillation data) against the share of the training set distilled on."""
    if df.empty or df[df.claim == 5].empty:
        return None
    d = df[df.claim == 5].assign(train_agreement_pct=lambda x: x["train_agreement"] * 100,
                                 agreement_pct=lambda x: x["agreement"] * 100,
                                 size=lambda x: x["n_distill"])
    fig, axes = present.page_figure(2, panel_height=2.8)
    present.errorbar_lines(axes[0], d, "size", "train_agreement_pct", "policy", labels=POLICY_NAMES)
    present.errorbar_lines(axes[1], d, "size", "agreement_pct", "policy", labels=POLICY_NAMES)
    axes[0].set_title("train agreement (distillation data)", fontsize=10)
    axes[1].set_title("test agreement", fontsize=10)
    for ax in axes:
        ax.set_xlabel("distillation images")
        ax.set_ylabel("%")
    present.shared_legend(fig, axes)
    return fig


def init_figure(df: pd.DataFrame):
    """Left: test agreement against r (r=0: the teacher itself). Right: distillation loss along the line from
    each student (t=0) to the teacher (t=1), mean over seeds, one curve per r."""
    if df.empty or df[df.claim == 6].empty:
        return None
    d = df[df.claim == 6].assign(agreement_pct=lambda x: x["agreement"] * 100)
    fig, axes = present.page_figure(2, panel_height=2.8)
    present.errorbar_lines(axes[0], d, "r", "agreement_pct", labels={"agreement_pct": "students (test)"},
                           color="0.3")
    axes[0].plot([0.0], [100.0], "k*", ms=9, label="r = 0 (the teacher)")
    axes[0].set_xlabel("r (0: teacher weights, 1: random init)")
    axes[0].set_ylabel("test agreement (%)")
    lines = line_frame(d)
    if not lines.empty:
        lines = lines.assign(r_label=lines["r"].map(lambda r: "random init (r=1)" if r == 1.0 else f"r={r:g}"))
        present.errorbar_lines(axes[1], lines, "t", "loss", "r_label")
        axes[1].set_yscale("log")
    axes[1].set_xlabel("t (0: student, 1: teacher)")
    axes[1].set_ylabel("τ² KL(teacher ‖ student)")
    present.shared_legend(fig, axes)
    return fig


__all__ = ["selection_notes", "discarded_runs", "plan_keys", "plain_table", "protocol_markdown", "verdict_summary", "CLAIM_TEXT", "PAPER", "VERDICTS", "chapter_verdicts", "claim_table", "combine", "ensemble_table",
           "init_figure", "line_frame", "paper_table", "plain_scores", "policy_figure", "selection_frame",
           "selection_view", "size_figure", "student_table", "teacher_table", "verdict_1", "verdict_2",
           "verdict_3", "verdict_4", "verdict_5", "verdict_6", "wall_time_s"]
