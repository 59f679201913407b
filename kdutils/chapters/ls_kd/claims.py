"""Chandrasegaran et al.: records as frames, the testability gate, and the chapter's claims with their
verdict rules, judged from the recorded runs only.

The verdict rules (documented on the page, implemented in `chapter_verdicts`), accuracies in percentage points,
paired by seed (the same seed gives a student the same initial weights and data order whichever teacher it
learns from), failed runs scored at chance (10%):

* **Testable gate** (every claim): both teachers clearly better than the student alone (the paired interval
  of teacher - alone excludes 0 and its mean is at least two binomial standard errors of the student's test
  accuracy, ``kdutils.verdicts.verdict.testable``), and label smoothing changed the teacher (the LS teacher's targets at
  tau = 1 have a higher average entropy than the plain teacher's). Otherwise "not testable at this scale".
* **Claim 1** (tau = 1, "at least as good"): non-inferiority; the interval of LS - plain must lie above
  ``-margin``, the margin being one binomial standard error of the plain student's test accuracy.
* **Claim 2** ("lose more accuracy as tau grows"): for each tau in {2, 3, 64} the difference in differences
  ``(LS_1 - LS_tau) - (plain_1 - plain_tau)`` must be > 0 (`beats`); all three: reproduced; some: partly.
* **Claim 3** (systematic diffusion): for the LS teacher's students, eta_similar (mean over the target classes of
  one seed, semantic sets, tau_0 = 1 -> tau_1) must be < 0 for tau_1 in {2, 3, 64}; eta_dissimilar > 0 is
  reported but follows from eta_similar < 0 by construction (see `kdutils.chapters.ls_kd.diffusion`).
* **Claim 4** (matched entropy): LS teacher at tau vs plain teacher at the tau* of equal average target entropy
  (tau in ``recipes.MATCH_TAUS``); the paper's direction: LS better at tau = 1 (Table H.2), poorer at tau = 3
  (Table H.3). Every pair in the paper's direction: reproduced; some clear difference: partly; every pair
  clearly in the other direction: not reproduced; no clear difference: inconclusive.
* **Practitioner rule** (LS teacher with tau = 1): the LS tau = 1 student is non-inferior (same margin) to every
  other distilled arm; not reproduced if some arm is better by more than the margin.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kdutils.chapters.ls_kd import plan as ls_kd, recipes
from kdutils.report import present
from kdutils.store.store import ResultStore
from kdutils.verdicts import stats
from kdutils.verdicts.verdict import (INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, NOT_YET_RUN, PARTLY, REPRODUCED,
                                      Decision, Verdict, beats, meets_threshold, min_testable_gap, scores_by_key,
                                      testable)


_pm = present.fmt_series_mean_std  # "mean ± std" of a column of runs, fixed decimals

CHANCE_PCT = 100.0 / recipes.NUM_CLASSES
CLAIMS = (
    "At tau = 1, a student distilled from a label-smoothed teacher is at least as good as one distilled from a "
    "teacher trained without label smoothing.",
    "As tau grows (2, 3, 64), the label-smoothed teacher's students lose more accuracy than the plain teacher's "
    "students.",
    "Systematic diffusion: with a label-smoothed teacher at higher tau, the student's class centroids move "
    "towards semantically similar classes (negative diffusion index for the similar set, positive for the "
    "dissimilar set).",
    "The smoothness of the targets (their average entropy) does not explain the results.",
    "Practitioner rule: use a label-smoothed teacher with tau = 1.",
)
HIGH_TAUS = (2.0, 3.0, 64.0)
#: The paper's direction for LS (at tau) minus plain (at the matched tau*), Supplementary H.
MATCH_DIRECTION = {1.0: "greater", 3.0: "less"}
CLASS_NAMES = ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
               "ankle boot")


def _tau(t: float) -> str:
    return f"{float(t):g}"


# ---- records -> frames ---------------------------------------------------------------------------------------

def results_frame(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None) -> pd.DataFrame:
    """One row per recorded final run: arm, kind, model, ls, tau, matched, seed, accuracy (%), nll, ece,
    agreement, status, n_train, n_test, device, wall time, key."""
    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    cfgs = {**{recipes.teacher_arm(ls): [c] for ls, c in p.teachers.items()}, **p.finals}
    table = store.table(recipes.EXPERIMENT)
    cols = ["arm", "kind", "model", "ls", "tau", "matched", "seed", "lr", "accuracy", "nll", "ece", "agreement",
            "status", "n_train", "n_test", "device", "wall_time_s", "key"]
    if table.empty:
        return pd.DataFrame(columns=cols)
    arm_of = {c.key(): arm for arm, cs in cfgs.items() for c in cs}
    table = table[table.key.isin(arm_of)].copy()
    if table.empty:
        return pd.DataFrame(columns=cols)
    table["arm"] = table.key.map(arm_of)
    for f in ("kind", "model", "ls", "tau", "matched"):
        table[f] = table.arm.map(lambda a, f=f: p.arms[a][f])
    table["seed"] = table["config.seed"].astype(int)
    table["lr"] = table["config.train.lr"]
    table["accuracy"] = 100.0 * pd.to_numeric(table.get("accuracy"), errors="coerce")
    for c in ("nll", "ece", "agreement"):
        if c not in table:
            table[c] = float("nan")
    return table[cols].reset_index(drop=True)


def selection_frame(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None) -> pd.DataFrame:
    p = p or ls_kd.plan(profile, store)
    rows = [row for sel in p.selections.values() if sel is not None for row in sel.rows]
    cols = ["arm", "lr", "epochs", "status", "val_accuracy", "val_nll", "chosen"]
    return pd.DataFrame(rows)[cols] if rows else pd.DataFrame(columns=cols)


def analysis_of(cfg, store: ResultStore) -> dict[str, Any] | None:
    a = recipes.load_analysis(cfg, store)
    return None if a is None or "skipped" in a else a


def _scale(profile: str, df: pd.DataFrame) -> str:
    r = recipes.recipe(profile)
    n_train = int(df["n_train"].dropna().iloc[0]) if not df.empty and df["n_train"].notna().any() else r.n_train
    n_test = int(df["n_test"].dropna().iloc[0]) if not df.empty and df["n_test"].notna().any() else r.n_test
    devices = ", ".join(sorted({present.short_device(d) for d in df["device"].dropna()})) if not df.empty else ""
    fmt = (lambda n: f"{n:,}" if n else "all")
    return (f"profile `{profile}`, Fashion-MNIST ({fmt(n_train)} training images, {fmt(n_test)} test images), "
            f"{r.teacher_model} teachers -> {', '.join(r.student_models)} students, "
            f"{devices or 'device unknown'}")


def _scores(df: pd.DataFrame, arm: str) -> tuple[dict[int, float], int]:
    rows = df[df.arm == arm]
    if rows.empty:
        return {}, 0
    return scores_by_key(rows, "seed", "accuracy", CHANCE_PCT)


def _teacher_acc(df: pd.DataFrame, ls: float) -> float | None:
    rows = df[(df.kind == "teacher") & (df.ls == ls)]
    if rows.empty:
        return None
    scores, _ = scores_by_key(rows, "seed", "accuracy", CHANCE_PCT)
    return float(np.mean(list(scores.values())))


# ---- the gate and the verdicts -------------------------------------------------------------------------------

def _margin(scores: dict[int, float], n_test: int) -> float:
    """One binomial standard error (percentage points) of a student's test accuracy: the non-inferiority margin."""
    acc = float(np.mean(list(scores.values()))) / 100.0 if scores else 0.9
    return 100.0 * min_testable_gap(min(max(1.0 - acc, 0.0), 1.0), max(n_test, 1), k=1.0)


def gate(profile: str, df: pd.DataFrame, store: ResultStore, p: ls_kd.Plan, model: str) -> tuple[Decision, str]:
    """Is the chapter testable at this scale? (decision, evidence sentence)."""
    alone, a_failed = _scores(df, recipes.alone_arm(model))
    t_plain, t_ls = _teacher_acc(df, 0.0), _teacher_acc(df, 0.1)
    if not alone or t_plain is None or t_ls is None:
        return Decision(NOT_YET_RUN, "the teachers or the student alone are not recorded"), ""
    n_test = int(df["n_test"].dropna().iloc[0])
    worst = min(t_plain, t_ls)
    gap = stats.paired_difference({s: worst for s in alone}, alone)
    alone_mean = float(np.mean(list(alone.values())))
    min_gap = 100.0 * min_testable_gap(1.0 - alone_mean / 100.0, n_test)
    decision = testable(gap, min_gap)
    text = (f"Teachers: {t_plain:.2f}% (plain) and {t_ls:.2f}% (LS 0.1) test accuracy; student alone "
            f"{alone_mean:.2f}% ({len(alone)} seeds{f', {a_failed} failed' if a_failed else ''}); weaker teacher "
            f"minus alone {gap.describe('pts', digits=2)} (minimum testable gap {min_gap:.2f} pts).")
    h_plain = (analysis_of(p.teachers[0.0], store) or {}).get("entropy", {}).get("1")
    h_ls = (analysis_of(p.teachers[0.1], store) or {}).get("entropy", {}).get("1")
    if h_plain is not None and h_ls is not None:
        text += (f" Average entropy of the training targets at tau = 1: {h_plain:.3f} nats (plain) vs "
                 f"{h_ls:.3f} (LS).")
        if decision.label != NOT_TESTABLE and not h_ls > h_plain:
            decision = Decision(NOT_TESTABLE, "label smoothing did not make the teacher's targets smoother")
    return decision, text


def _combine(decisions: list[Decision]) -> str:
    labels = [d.label for d in decisions]
    if labels and all(lab == REPRODUCED for lab in labels):
        return REPRODUCED
    if REPRODUCED in labels:
        return PARTLY
    if labels and all(lab == NOT_REPRODUCED for lab in labels):
        return NOT_REPRODUCED
    if NOT_REPRODUCED in labels:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def _failures(df: pd.DataFrame) -> str:
    bad = df[df.status != "ok"]
    if bad.empty:
        return " No run failed."
    return f" Failed runs (scored at chance, {CHANCE_PCT:g}%): " + ", ".join(
        f"{r.arm} seed {r.seed} ({r.status})" for r in bad.itertuples()) + "."


def _claim1(df, model, n_test) -> tuple[str, str, str]:
    ls1, f1 = _scores(df, recipes.student_arm(model, 0.1, 1.0))
    p1, f2 = _scores(df, recipes.student_arm(model, 0.0, 1.0))
    if not ls1 or not p1:
        return NOT_YET_RUN, "the tau = 1 students are not recorded", ""
    diff = stats.paired_difference(ls1, p1)
    margin = _margin(p1, n_test)
    d = meets_threshold(diff, -margin, "greater")
    b = beats(diff, "greater")
    effect = f"LS minus plain at tau = 1: {diff.describe('pts', digits=2)}"
    ev = (f"{effect}; non-inferiority margin {margin:.2f} pts (one binomial standard error): {d.reason}. "
          f"LS strictly better: {b.reason}. Means: LS {np.mean(list(ls1.values())):.2f}%, plain "
          f"{np.mean(list(p1.values())):.2f}% (paper, ImageNet R50 -> R18: 71.62 vs 71.55).")
    return d.label, ev, effect


def _claim2(df, model) -> tuple[str, str, str]:
    parts, decisions, effects = [], [], []
    base_ls, _ = _scores(df, recipes.student_arm(model, 0.1, 1.0))
    base_p, _ = _scores(df, recipes.student_arm(model, 0.0, 1.0))
    for tau in HIGH_TAUS:
        ls_t, _ = _scores(df, recipes.student_arm(model, 0.1, tau))
        p_t, _ = _scores(df, recipes.student_arm(model, 0.0, tau))
        keys = sorted(set(base_ls) & set(base_p) & set(ls_t) & set(p_t))
        if not keys:
            return NOT_YET_RUN, f"the tau = {_tau(tau)} students are not recorded", ""
        did = {k: (base_ls[k] - ls_t[k]) - (base_p[k] - p_t[k]) for k in keys}
        iv = stats.t_interval(list(did.values()))
        d = beats(iv, "greater")
        decisions.append(d)
        parts.append(f"tau = {_tau(tau)}: drop(LS) - drop(plain) = {iv.describe('pts', digits=2)} ({d.reason})")
        effects.append(f"tau {_tau(tau)}: {iv.mean:+.2f}")
    paper = ("paper (ImageNet R50 -> R18) drops from tau = 1: LS 3.19 / 5.05 / 6.14 pts at tau = 2 / 3 / 64, "
             "plain 0.20 / 1.98 / 5.32, so drop(LS) - drop(plain) = 2.99 / 3.07 / 0.83")
    return (_combine(decisions), "; ".join(parts) + f". ({paper}.)",
            "drop(LS) - drop(plain), pts: " + ", ".join(effects))


def diffusion_rows(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None,
                   method: str = "semantic", normaliser: str = "union") -> pd.DataFrame:
    """Diffusion indices per (model, teacher ls, tau_1, seed, target) from the recorded centroids:
    columns model, ls, tau1, seed, target, name, eta_similar, eta_dissimilar, systematic.

    ``method="semantic"``: similar / dissimilar from Fashion-MNIST's semantic groups (method 1);
    ``"nearest"``: the nearest / farthest centroids of the plain teacher (method 2, same set sizes)."""
    import torch

    from kdutils.chapters.ls_kd.diffusion import diffusion_index
    from kdutils.chapters.ls_kd.semantic_groups import agreement_table, semantic_groups

    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    groups = semantic_groups(recipes.DATASET)
    sets = groups.all_sets()
    if method == "nearest":
        plain = analysis_of(p.teachers[0.0], store) if 0.0 in p.teachers else None
        if plain is None:
            return pd.DataFrame()
        rows = agreement_table(groups, torch.tensor(plain["centroids"], dtype=torch.float64))
        sets = {r.target: (r.nearest, r.farthest) for r in rows}
    out = []
    for arm, desc in p.arms.items():
        if desc["kind"] != "student" or desc["tau"] not in HIGH_TAUS or desc["matched"] is not None:
            continue
        base_arm = recipes.student_arm(desc["model"], desc["ls"], 1.0)
        base = {c.seed: c for c in p.finals.get(base_arm, [])}
        for cfg in p.finals.get(arm, []):
            if cfg.seed not in base:
                continue
            a0, a1 = analysis_of(base[cfg.seed], store), analysis_of(cfg, store)
            if a0 is None or a1 is None:
                continue
            c0 = torch.tensor(a0["centroids"], dtype=torch.float64)
            c1 = torch.tensor(a1["centroids"], dtype=torch.float64)
            for t, (sim, dis) in sets.items():
                idx = diffusion_index(c0, c1, t, sim, dis, normaliser)
                out.append({"model": desc["model"], "ls": desc["ls"], "tau1": desc["tau"], "seed": cfg.seed,
                            "target": t, "name": CLASS_NAMES[t], "eta_similar": idx.eta_similar,
                            "eta_dissimilar": idx.eta_dissimilar, "systematic": idx.systematic})
    return pd.DataFrame(out)


def _claim3(profile, store, p, model) -> tuple[str, str, str]:
    rows = diffusion_rows(profile, store, p)
    if rows.empty:
        return NOT_YET_RUN, "no recorded centroids", ""
    rows = rows[rows.model == model]
    near = diffusion_rows(profile, store, p, method="nearest")
    near = near[near.model == model] if not near.empty else near
    parts, decisions, effects = [], [], []
    for tau in HIGH_TAUS:
        r = rows[(rows.ls == 0.1) & (rows.tau1 == tau)]
        if r.empty:
            return NOT_YET_RUN, f"no recorded centroids for tau = {_tau(tau)}", ""
        per_seed = r.groupby("seed")[["eta_similar", "eta_dissimilar"]].mean()
        iv = stats.t_interval(per_seed.eta_similar.tolist())
        ivd = stats.t_interval(per_seed.eta_dissimilar.tolist())
        d = beats(iv, "less")
        decisions.append(d)
        ctrl = rows[(rows.ls == 0.0) & (rows.tau1 == tau)].groupby("seed").eta_similar.mean()
        nr = near[(near.ls == 0.1) & (near.tau1 == tau)].groupby("seed").eta_similar.mean() if not near.empty \
            else pd.Series(dtype=float)
        parts.append(f"tau 1 -> {_tau(tau)}: eta_similar {iv.describe('%', digits=1)} ({d.reason}), eta_dissimilar "
                     f"{ivd.describe('%', digits=1)}; systematic in {int(r.systematic.sum())} of {len(r)} "
                     f"(target, seed) pairs; plain-teacher control eta_similar "
                     f"{ctrl.mean():+.1f}%" + (f"; nearest/farthest sets eta_similar {nr.mean():+.1f}%"
                                                if len(nr) else ""))
        effects.append(f"tau 1->{_tau(tau)}: {iv.mean:+.1f}%")
    return (_combine(decisions), "LS teacher's students, semantic sets, per seed averaged over the "
            f"{rows.target.nunique()} target classes: " + "; ".join(parts) + ".",
            "eta_similar (LS teacher): " + ", ".join(effects))


def _claim4(df, p, model) -> tuple[str, str, str]:
    if not p.matched:
        return NOT_YET_RUN, "the matched temperatures are not recorded", ""
    parts, decisions, effects = [], [], []
    for tau_ls, tau_plain in sorted(p.matched.items()):
        ls_s, _ = _scores(df, recipes.student_arm(model, 0.1, tau_ls))
        pl_s, _ = _scores(df, recipes.student_arm(model, 0.0, tau_plain))
        if not ls_s or not pl_s:
            return NOT_YET_RUN, f"the matched pair at tau = {_tau(tau_ls)} is not recorded", ""
        diff = stats.paired_difference(ls_s, pl_s)
        direction = MATCH_DIRECTION.get(float(tau_ls), "greater")
        d = beats(diff, direction)
        decisions.append(d)
        parts.append(f"LS at tau {_tau(tau_ls)} vs plain at tau* {_tau(tau_plain)} (equal average target entropy): "
                     f"LS minus plain {diff.describe('pts', digits=2)}, paper's direction "
                     f"{'LS better' if direction == 'greater' else 'LS poorer'}: {d.reason}")
        effects.append(f"tau {_tau(tau_ls)} vs {_tau(tau_plain)}: {diff.mean:+.2f} pts")
    labels = [d.label for d in decisions]
    if all(lab == REPRODUCED for lab in labels):
        label = REPRODUCED
    elif all(lab == NOT_REPRODUCED for lab in labels):
        label = NOT_REPRODUCED
    elif REPRODUCED in labels or NOT_REPRODUCED in labels:
        label = PARTLY
    else:
        label = INCONCLUSIVE
    return label, "; ".join(parts) + ".", "LS minus plain at matched entropy: " + ", ".join(effects)


def _rule(df, p, model, n_test) -> tuple[str, str, str]:
    best_arm = recipes.student_arm(model, 0.1, 1.0)
    best, _ = _scores(df, best_arm)
    if not best:
        return NOT_YET_RUN, "the LS tau = 1 students are not recorded", ""
    margin = _margin(best, n_test)
    parts, labels, worst = [], [], None
    for arm, desc in p.arms.items():
        if desc["kind"] != "student" or desc["model"] != model or arm == best_arm:
            continue
        other, _ = _scores(df, arm)
        if not other:
            return NOT_YET_RUN, f"arm {arm} is not recorded", ""
        diff = stats.paired_difference(best, other)
        d = meets_threshold(diff, -margin, "greater")
        labels.append(d.label)
        parts.append(f"{arm}: {diff.mean:+.2f} [{diff.low:.2f}, {diff.high:.2f}]")
        if worst is None or diff.mean < worst[1].mean:
            worst = (arm, diff)
    if all(lab == REPRODUCED for lab in labels):
        label = REPRODUCED
    elif NOT_REPRODUCED in labels:
        label = NOT_REPRODUCED
    else:
        label = INCONCLUSIVE
    ev = (f"LS tau = 1 minus each other distilled arm (pts, paired t 95%, non-inferiority margin {margin:.2f}): "
          + "; ".join(parts) + ".")
    effect = f"closest competitor {worst[0]}: {worst[1].describe('pts', digits=2)}" if worst else ""
    return label, ev, effect


def chapter_verdicts(profile: str, store: ResultStore | None = None, model: str | None = None) -> list[Verdict]:
    """One Verdict per claim, in the scorecard's order, from the records only (nothing is trained)."""
    store = store or ResultStore()
    p = ls_kd.plan(profile, store)
    model = model or recipes.recipe(profile).student_models[0]
    df = results_frame(profile, store, p)
    scale = _scale(profile, df)
    g, gate_text = gate(profile, df, store, p, model) if not df.empty else (
        Decision(NOT_YET_RUN, "nothing is recorded"), "")
    if g.label == NOT_YET_RUN:
        return [Verdict(c, NOT_YET_RUN, f"Not yet run: {g.reason} for profile `{profile}`.", scale) for c in CLAIMS]
    n_test = int(df["n_test"].dropna().iloc[0])
    failures = _failures(df)
    results = [_claim1(df, model, n_test), _claim2(df, model), _claim3(profile, store, p, model),
               _claim4(df, p, model), _rule(df, p, model, n_test)]
    out = []
    for claim, (label, ev, effect) in zip(CLAIMS, results):
        if label == NOT_YET_RUN:
            out.append(Verdict(claim, NOT_YET_RUN, f"Not yet run: {ev}.", scale))
        elif g.label == NOT_TESTABLE:
            out.append(Verdict(claim, NOT_TESTABLE, f"{g.reason[0].upper()}{g.reason[1:]}. {gate_text} {ev}"
                               f"{failures}", scale, effect))
        else:
            out.append(Verdict(claim, label, f"{ev} Gate: {gate_text}{failures}", scale, effect))
    return out
