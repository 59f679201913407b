"""Stanton et al.: records as tables, and the chapter's six claims declared with their gates, margins and
thresholds, judged by the shared rules (`kdutils.verdicts.rules`) from the recorded runs only (nothing here
trains). Accuracies and agreements in percentage points, paired over student seeds; failed runs (diverged or at
chance) are scored at chance level (accuracy and agreement 1/10, KL log(10)), never dropped. The plain model of
student seed i is teacher-recipe member i + 1 (never member 0, the teacher).

Gates: claims 1, 2, 4 and 6 are about what a student learns from its teacher, so the teacher must have
finished learning: its final training accuracy at least 90% and its training accuracy rising by at most
0.2 pts per epoch over its last 5 epochs (`TEACHER_MIN_TRAIN`, `TEACHER_MAX_SLOPE`). Claim 2 also needs its
premise: the 5-member ensemble beats its single members. Margins and thresholds, fixed before the runs:
"matches" = not worse by more than 1 pt (`MATCH_MARGIN`), "well short of 100%" = agreement below 99%, "a lot" =
more than 1 pt, "near-perfect" = at least 98%; "does not help" (noise, OOD) = the interval's upper end below
+1 pt (`NO_HELP_MARGIN`).
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
from kdutils.store.provenance import code_status_sentence
from kdutils.verdicts import gates, stats
from kdutils.verdicts.rules import Claim, Finding, combine, compare, find, judge, stability, subset, to_verdict
from kdutils.verdicts.verdict import (INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, NOT_YET_RUN, REPRODUCED, Verdict,
                                      scores_by_key)


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


# ------------------------------------------------------------------------------------------------- claims
TEACHER_MIN_TRAIN = 0.90
TEACHER_MAX_SLOPE = 0.002  # per epoch, over the last 5 epochs (0.2 pts)
NO_HELP_MARGIN = 1.0  # pts
CONVERGED = "teacher converged"

C1 = Claim(CLAIM_TEXT[1], parts=(
    Claim("student - plain model, test accuracy: not worse by more than 1 pt", "not_below", 100 * MATCH_MARGIN,
          "pts", key="generalises as well"),
    Claim("test agreement with the teacher below 99%", "less", unit="%", threshold=100 * WELL_SHORT,
          key="agrees poorly")), core=("generalises as well", "agrees poorly"), gates=(CONVERGED,))
C2 = Claim(CLAIM_TEXT[2], parts=(
    Claim("student agreement, 5 minus 1 teacher(s)", "greater", unit="pts", key="fidelity rises with members"),
    Claim("student of the 5-member ensemble - plain model: not worse by more than 1 pt", "not_below",
          100 * MATCH_MARGIN, "pts", key="student matches a single model")),
    gates=(CONVERGED, "ensemble beats its members"))
C3 = Claim(CLAIM_TEXT[3], parts=(
    Claim("best minus worst policy, agreement, above 1 pt", "greater", unit="pts", threshold=100 * A_LOT,
          key="policies change fidelity a lot"),
    Claim("the best policy for accuracy is not the best for fidelity", key="best policies differ"),
    Claim("noise and OOD inputs do not help (agreement and accuracy vs crop/flip below +1 pt)", "not_above",
          NO_HELP_MARGIN, "pts", key="noise/OOD do not help")))
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
    Claim("agreement at the smallest r at least 98%", "greater", unit="%", threshold=100 * NEAR_PERFECT,
          key="near-perfect"),
    Claim("distillation loss, random init minus smallest r", "greater", key="random init: worse optimum")),
    gates=(CONVERGED,))
CLAIMS = (C1, C2, C3, C4, C5, C6)


def _pts(d: dict) -> dict:
    return {k: 100.0 * v for k, v in d.items()}


def _scored(d: pd.DataFrame, metric: str, **where: Any) -> dict:
    out = arm(d, metric, **where)
    return out if "loss" in metric or "kl" in metric else _pts(out)


def _fmt(iv: stats.Interval, unit: str = "pts") -> str:
    """Differences signed, levels (unit "%") not; losses with four decimals."""
    if unit == "":
        return iv.describe("", digits=4)
    return iv.describe(unit, digits=1, signed=unit != "%")


def teacher_gate(profile: str, store: ResultStore, half: int | None = None) -> gates.Gate:
    """Convergence of the chapter's teacher (member 0), or of a half-data teacher (claim 4), from its history."""
    p = dkw.plan(profile, "fashion_mnist", store)
    for cfg in dkw.teacher_configs(profile, "fashion_mnist", p.teacher_lr):
        is_half = cfg.data.fold is not None
        if (half is None and not is_half and cfg.seed == 0) or (half is not None and is_half
                                                                and 1 - cfg.data.fold == half):
            rec = store.get(cfg)
            name = CONVERGED if half is None else f"{CONVERGED} (half-data teacher {half})"
            if rec is None:
                return gates.Gate(name, False, "no record of this teacher at the chosen learning rate")
            return gates.converged(rec.get("history"), TEACHER_MIN_TRAIN, TEACHER_MAX_SLOPE, name=name)
    return gates.Gate(CONVERGED, False, "no teacher record")


def _stab(keys, label_on, full):
    return None if full in (NOT_TESTABLE, NOT_YET_RUN) else stability(keys, label_on, full)


def _sel(keys):
    return (lambda x: x) if keys is None else (lambda x: subset(x, keys))


def _v1(d, plain, g, keys=None):
    s = _sel(keys)
    acc, agr = s(_scored(d, "accuracy")), s(_scored(d, "agreement"))
    fs = [compare(C1.parts[0], acc, s(_pts(plain)), _fmt), find(C1.parts[1], stats.t_interval(list(agr.values())),
                                                                effect=_fmt(stats.t_interval(list(agr.values())), "%"))]
    return judge(C1, fs, [g])


def _v2(d, plain, gs, keys=None):
    s = _sel(keys)
    r = sorted(set(d.k))
    big, small = max(r), min(r)
    fs = [compare(C2.parts[0], s(_scored(d, "agreement", k=big)), s(_scored(d, "agreement", k=small)), _fmt),
          compare(C2.parts[1], s(_scored(d, "accuracy", k=big)), s(_pts(plain)), _fmt)]
    return judge(C2, fs, gs)


def _v3(d, keys=None):
    s = _sel(keys)
    pols = list(dict.fromkeys(d["policy"]))
    agr = {p: s(_scored(d, "agreement", policy=p)) for p in pols}
    acc = {p: s(_scored(d, "accuracy", policy=p)) for p in pols}
    mean = lambda x: float(np.mean(list(x.values())))  # noqa: E731
    best_f, worst_f = max(pols, key=lambda p: mean(agr[p])), min(pols, key=lambda p: mean(agr[p]))
    best_a = max(pols, key=lambda p: mean(acc[p]))
    spread = compare(C3.parts[0], agr[best_f], agr[worst_f], _fmt)
    if best_f == best_a:  # contradicted only if that policy is clearly best on both metrics (symmetric rule)
        runner_f = max((p for p in pols if p != best_f), key=lambda p: mean(agr[p]))
        runner_a = max((p for p in pols if p != best_a), key=lambda p: mean(acc[p]))
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


def _v6(d, g, keys=None):
    s = _sel(keys)
    r_min = sorted(set(d["r"]))[0]
    agr_min, agr_rand = s(_scored(d, "agreement", r=r_min)), s(_scored(d, "agreement", r=1.0))
    level = stats.t_interval(list(agr_min.values()))
    fs = [compare(C6.parts[0], agr_min, agr_rand, _fmt), find(C6.parts[1], level, effect=_fmt(level, "%")),
          compare(C6.parts[2], s(_scored(d, "train_distill_loss", r=1.0)), s(_scored(d, "train_distill_loss", r=r_min)),
                  lambda iv: _fmt(iv, ""))]
    return judge(C6, fs, [g])


_NEEDS = {1: "The self-distilled students and the plain models are", 2: "The ensemble students, teachers and plain "
          "models are", 3: "The students of every policy are", 4: "The recycled-data and new-data students are",
          5: "The students of every distillation-set size are", 6: "The near-teacher students are"}


def _evidence(n: int, profile: str, store: ResultStore, d: pd.DataFrame) -> str:
    """What the parts do not say: the arms' means, the teachers, failures (numbers from the records)."""
    acc = f"Teacher test accuracy {100 * d['teacher_accuracy'].mean():.1f}%." if "teacher_accuracy" in d else ""
    if n == 1:
        kl = np.mean(list(arm(d, "kl").values()))
        return f"{acc} KL(teacher || student) {kl:.3f} nats. {mnist_check(profile, store)}{_failures(d)}"
    if n == 2:
        by_k = ", ".join(f"{k}: {100 * float(d[d.k == k]['teacher_accuracy'].iloc[0]):.1f}%" for k in sorted(set(d.k)))
        return f"Teacher test accuracy by ensemble size: {by_k}.{_failures(d)}"
    if n == 3:
        pols = list(dict.fromkeys(d["policy"]))
        table = "; ".join(f"{POLICY_NAMES[p]} {np.mean(list(arm(d, 'accuracy', policy=p).values())):.1%} / "
                          f"{np.mean(list(arm(d, 'agreement', policy=p).values())):.1%}" for p in pols)
        return f"Mean test accuracy / agreement per policy: {table}.{_failures(d)}"
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
    rs = sorted(set(d["r"]))
    means = ", ".join(f"r={r:g}: {np.mean(list(arm(d, 'agreement', r=r).values())):.1%}" for r in rs)
    return f"Mean test agreement by r ({means}). {line_barrier(d)}{_failures(d)}"


def chapter_verdicts(profile: str, store: ResultStore | None = None) -> list[Verdict]:
    """One verdict per declared claim, from the records only (nothing is trained)."""
    profile = check_profile(profile)
    store = store or ResultStore()
    df = student_table(profile, store=store)
    plain = plain_scores(profile, store=store)
    teachers = teacher_table(profile, store=store)
    recs = [r for r in store.records(dkw.EXPERIMENT) if r.get("config", {}).get("profile") == profile]
    code = code_status_sentence(recs)
    out = []
    g = teacher_gate(profile, store)
    n_seeds = len(dkw.recipe(profile).seeds)
    for n, claim in enumerate(CLAIMS, start=1):
        missing = not _complete(df, n, profile, "fashion_mnist")
        if n in (1, 2) and len(plain) < n_seeds or n == 2 and teachers.empty:
            missing = True
        if missing:
            out.append(Verdict(claim.text, NOT_YET_RUN, f"{_NEEDS[n]} not all recorded for this profile.",
                               f"profile `{profile}`"))
            continue
        d = df[df.claim == n]
        seeds = sorted(set(d.seed))
        if n == 1:
            fn = lambda k: _v1(d, plain, g, k)  # noqa: E731
        elif n == 2:
            big = max(set(d.k))
            members = teachers[teachers["half"].isna() & (teachers["member"] < big)]
            ens = 100 * float(d[d.k == big]["teacher_accuracy"].iloc[0])
            gain = stats.t_interval([ens - 100 * (a if s == "ok" else CHANCE_ACC)
                                     for s, a in zip(members["status"], members["accuracy"])])
            gs = [g, gates.premise("ensemble beats its members", gain, 0.0)]
            fn = lambda k: _v2(d, plain, gs, k)  # noqa: E731
        elif n == 3:
            fn = lambda k: _v3(d, k)  # noqa: E731
        elif n == 4:
            g4 = [teacher_gate(profile, store, half=h) for h in (0, 1)]
            fn = lambda k: _v4(d, g4, k)  # noqa: E731
        elif n == 5:
            fn = lambda k: _v5(d, k)  # noqa: E731
        else:
            fn = lambda k: _v6(d, g, k)  # noqa: E731
        j = fn(None)
        stab = _stab(seeds, lambda k: fn(set(k)).label, j.label)
        effect = "; ".join(f"{f.key}: {f.effect}" for f in j.parts if f.effect)
        out.append(to_verdict(j, _evidence(n, profile, store, d), scale(profile, df=d), effect, stab, code))
    return out
