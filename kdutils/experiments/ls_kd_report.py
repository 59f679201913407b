"""The LS-KD chapter's page: tables, figures, verdicts and the prose that carries numbers, all from the records.

`ls_kd` defines the runs and records the analysis (centroids, projections, target entropies); this module only
reads records (the final runs in ``results/ls_kd_fashion/`` and their analysis in
``results/ls_kd_fashion_analysis/``), so it works on a store with missing records and then says "not yet run".

The verdict rules (documented on the page, implemented in `chapter_verdicts`), accuracies in percentage points,
paired by seed (the same seed gives a student the same initial weights and data order whichever teacher it
learns from), failed runs scored at chance (10%):

* **Testable gate** (every claim): both teachers clearly better than the student alone (the paired interval
  of teacher - alone excludes 0 and its mean is at least two binomial standard errors of the student's test
  accuracy, ``kdutils.verdict.testable``), and label smoothing changed the teacher (the LS teacher's targets at
  tau = 1 have a higher average entropy than the plain teacher's). Otherwise "not testable at this scale".
* **Claim 1** (tau = 1, "at least as good"): non-inferiority; the interval of LS - plain must lie above
  ``-margin``, the margin being one binomial standard error of the plain student's test accuracy.
* **Claim 2** ("lose more accuracy as tau grows"): for each tau in {2, 3, 64} the difference in differences
  ``(LS_1 - LS_tau) - (plain_1 - plain_tau)`` must be > 0 (`beats`); all three: reproduced; some: partly.
* **Claim 3** (systematic diffusion): for the LS teacher's students, eta_similar (mean over the target classes of
  one seed, semantic sets, tau_0 = 1 -> tau_1) must be < 0 for tau_1 in {2, 3, 64}; eta_dissimilar > 0 is
  reported but follows from eta_similar < 0 by construction (see `kdutils.diffusion`).
* **Claim 4** (matched entropy): LS teacher at tau vs plain teacher at the tau* of equal average target entropy
  (tau in ``ls_kd.MATCH_TAUS``); the paper's direction: LS better at tau = 1 (Table H.2), poorer at tau = 3
  (Table H.3). Every pair in the paper's direction: reproduced; some clear difference: partly; every pair
  clearly in the other direction: not reproduced; no clear difference: inconclusive.
* **Practitioner rule** (LS teacher with tau = 1): the LS tau = 1 student is non-inferior (same margin) to every
  other distilled arm; not reproduced if some arm is better by more than the margin.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .. import present, stats
from ..store import ResultStore
from ..verdict import (INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, NOT_YET_RUN, PARTLY, REPRODUCED, Decision,
                       Verdict, beats, meets_threshold, min_testable_gap, scores_by_key, testable)
from . import ls_kd

_pm = present.fmt_series_mean_std  # "mean ± std" of a column of runs, fixed decimals

CHANCE_PCT = 100.0 / ls_kd.NUM_CLASSES
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
    cfgs = {**{ls_kd.teacher_arm(ls): [c] for ls, c in p.teachers.items()}, **p.finals}
    table = store.table(ls_kd.EXPERIMENT)
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
    a = ls_kd.load_analysis(cfg, store)
    return None if a is None or "skipped" in a else a


def _scale(profile: str, df: pd.DataFrame) -> str:
    r = ls_kd.recipe(profile)
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
    alone, a_failed = _scores(df, ls_kd.alone_arm(model))
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
    ls1, f1 = _scores(df, ls_kd.student_arm(model, 0.1, 1.0))
    p1, f2 = _scores(df, ls_kd.student_arm(model, 0.0, 1.0))
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
    base_ls, _ = _scores(df, ls_kd.student_arm(model, 0.1, 1.0))
    base_p, _ = _scores(df, ls_kd.student_arm(model, 0.0, 1.0))
    for tau in HIGH_TAUS:
        ls_t, _ = _scores(df, ls_kd.student_arm(model, 0.1, tau))
        p_t, _ = _scores(df, ls_kd.student_arm(model, 0.0, tau))
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

    from ..diffusion import diffusion_index
    from ..semantic_groups import agreement_table, semantic_groups

    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    groups = semantic_groups(ls_kd.DATASET)
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
        base_arm = ls_kd.student_arm(desc["model"], desc["ls"], 1.0)
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
        ls_s, _ = _scores(df, ls_kd.student_arm(model, 0.1, tau_ls))
        pl_s, _ = _scores(df, ls_kd.student_arm(model, 0.0, tau_plain))
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
    best_arm = ls_kd.student_arm(model, 0.1, 1.0)
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
    model = model or ls_kd.recipe(profile).student_models[0]
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


# ---- tables ----------------------------------------------------------------------------------------------------

def _scored(df: pd.DataFrame) -> pd.DataFrame:
    """Accuracy with failed runs at chance (as the verdicts count them)."""
    d = df.copy()
    d.loc[d.status.isin(["diverged", "chance"]), "accuracy"] = CHANCE_PCT
    return d


def accuracy_view(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None):
    """Table 2 analogue: rows tau, columns teacher's LS (ours mean ± std over seeds; the paper's ImageNet
    R50 -> R18 numbers beside them), one block per student model, teachers and the student alone first."""
    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    df = results_frame(profile, store, p)
    if df.empty:
        return NOT_YET_RUN
    df = _scored(df)
    rows = []
    row = {"row": f"teacher ({ls_kd.recipe(profile).teacher_model})"}
    for v in (0.0, 0.1):
        row[f"LS {v:g}"] = _pm(df[(df.kind == "teacher") & (df.ls == v)].accuracy)
        row[f"LS {v:g} (paper)"] = f"{ls_kd.PAPER_TEACHER_TOP1[v]:.2f}"
    rows.append(row)
    for model in ls_kd.recipe(profile).student_models:
        a = df[df.arm == ls_kd.alone_arm(model)].accuracy
        rows.append({"row": f"{model} alone", "LS 0": _pm(a), "LS 0 (paper)": "", "LS 0.1": "",
                     "LS 0.1 (paper)": ""})
        for tau in ls_kd.TAUS:
            row = {"row": f"{model}, tau = {_tau(tau)}"}
            for v in (0.0, 0.1):
                row[f"LS {v:g}"] = _pm(df[df.arm == ls_kd.student_arm(model, v, tau)].accuracy)
                row[f"LS {v:g} (paper)"] = f"{ls_kd.PAPER_TOP1_R18[(v, tau)]:.2f}"
            rows.append(row)
    frame = pd.DataFrame(rows)
    return present.results_table(
        frame, {"row": "", "LS 0": "plain teacher (LS 0)", "LS 0 (paper)": "paper, LS 0",
                "LS 0.1": "LS teacher (LS 0.1)", "LS 0.1 (paper)": "paper, LS 0.1"}, status=None, device=None,
        max_rows=30,
        caption="Test accuracy (%), mean ± std over seeds, students paired by seed; the paper's columns are "
                "ImageNet-1K top-1 (ResNet-50 -> ResNet-18, Table 2 A), for the shape of the trend only.")


def accuracy_figure(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None):
    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    df = results_frame(profile, store, p)
    df = df[(df.kind == "student") & df.matched.isna()] if not df.empty else df
    if df.empty:
        return None
    df = _scored(df)
    fig, axes = present.page_figure(2, panel_height=2.6)
    df = df.assign(tau_pos=df.tau.map({t: i for i, t in enumerate(ls_kd.TAUS)}),
                   teacher=df.ls.map(lambda v: f"LS {v:g} teacher"))
    present.errorbar_lines(axes[0], df, "tau_pos", "accuracy", "teacher")
    axes[0].set(xlabel="tau", ylabel="student test accuracy (%)", title="ours (Fashion-MNIST)")
    paper = pd.DataFrame([{"tau_pos": i, "acc": ls_kd.PAPER_TOP1_R18[(v, t)], "teacher": f"LS {v:g} teacher"}
                          for i, t in enumerate(ls_kd.TAUS) for v in (0.0, 0.1)])
    for j, (name, g) in enumerate(paper.groupby("teacher")):
        axes[1].plot(g.tau_pos, g.acc, "o-", color=f"C{j}", label=name)
    axes[1].set(xlabel="tau", ylabel="top-1 (%)", title="paper (ImageNet, R50 -> R18)")
    for ax in axes:
        ax.set_xticks(range(len(ls_kd.TAUS)), [_tau(t) for t in ls_kd.TAUS])
    present.shared_legend(fig, axes, ncol=2)
    return fig


def selection_view(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None):
    table = selection_frame(profile, store, p)
    if table.empty:
        return NOT_YET_RUN
    table = table.assign(chosen=np.where(table.chosen, "chosen", ""), val_accuracy=100 * table.val_accuracy)
    return present.results_table(
        table, {"arm": "arm", "lr": "lr", "epochs": "epochs", "val_accuracy": "val accuracy (%)",
                "val_nll": "val NLL", "chosen": "chosen"}, formats={"lr": lambda v: f"{v:g}"}, max_rows=12,
        digits=3, caption="Learning-rate selection on the validation split (one seed, shorter runs; the test set "
                          "is never read).")


def selection_markdown(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None) -> str:
    table = selection_frame(profile, store, p)
    if table.empty:
        return f"No selection runs are recorded for profile `{profile}` ({NOT_YET_RUN})."
    chosen = table[table.chosen]
    text = "Chosen rates: " + "; ".join(f"{r.arm} {r.lr:g}" for r in chosen.itertuples()) + "."
    r = ls_kd.recipe(profile)
    edge = [row.arm for row in chosen.itertuples()
            if row.lr in (min(r.student_lrs), max(r.student_lrs)) and not row.arm.startswith("teacher")
            and len(r.student_lrs) > 1]
    n_students = sum(1 for row in chosen.itertuples() if not row.arm.startswith("teacher"))
    if edge:
        text += f" {len(edge)} of the {n_students} student arms' chosen rates sit at an edge of their grid."
    failed = table[table.status != "ok"]
    if len(failed):
        text += f" {len(failed)} selection run(s) diverged and ranked last."
    return text


def runs_view(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None):
    df = results_frame(profile, store, p)
    if df.empty:
        return NOT_YET_RUN
    order = {"teacher": 0, "alone": 1, "student": 2}
    df = df.assign(_k=df.kind.map(order), _ls=df.ls.fillna(-1), _tau=df.tau.fillna(0)).sort_values(
        ["_k", "_ls", "_tau", "seed"])
    return present.results_table(
        df, {"arm": "arm", "seed": "seed", "lr": "lr", "accuracy": "accuracy (%)", "nll": "NLL", "ece": "ECE",
             "agreement": "agreement with teacher", "wall_time_s": "wall time (s)", "device": "device"},
        formats={"lr": lambda v: f"{v:g}", "accuracy": lambda v: f"{v:.2f}", "wall_time_s": lambda v: f"{v:.0f}"},
        max_rows=10, digits=3, caption="Every recorded final run.")


def diffusion_view(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None,
                   tau1: float = 64.0):
    """Table 3 analogue: per target class, eta_similar / eta_dissimilar (mean ± std over seeds, %) for tau 1 ->
    ``tau1``, LS and plain teachers, semantic sets and nearest/farthest sets."""
    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    sem = diffusion_rows(profile, store, p)
    if sem.empty:
        return NOT_YET_RUN
    model = ls_kd.recipe(profile).student_models[0]
    rows = []
    for t in sorted(sem.target.unique()):
        row = {"target": CLASS_NAMES[t]}
        for ls in (0.1, 0.0):
            g = sem[(sem.target == t) & (sem.ls == ls) & (sem.tau1 == tau1) & (sem.model == model)]
            row[f"LS {ls:g} teacher: η_s (%)"] = _pm(g.eta_similar, 1)
            row[f"LS {ls:g} teacher: η_d (%)"] = _pm(g.eta_dissimilar, 1)
        rows.append(row)
    frame = pd.DataFrame(rows)
    return present.results_table(frame, status=None, device=None, max_rows=12,
                                 caption=f"Diffusion index per target class (semantic sets), {model} students from "
                                         f"tau = 1 to tau = {_tau(tau1)}, mean ± std over seeds. Systematic "
                                         "diffusion: η_s < 0 < η_d.")


def diffusion_summary_view(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None):
    """eta_similar / eta_dissimilar averaged over the target classes, per teacher, tau_1 and set definition."""
    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    sem = diffusion_rows(profile, store, p)
    if sem.empty:
        return NOT_YET_RUN
    near = diffusion_rows(profile, store, p, method="nearest")
    rows = []
    for name, frame in (("semantic groups", sem), ("nearest/farthest centroids", near)):
        if frame.empty:
            continue
        for (ls, tau1), g in frame.groupby(["ls", "tau1"]):
            per_seed = g.groupby("seed")[["eta_similar", "eta_dissimilar"]].mean()
            iv = stats.t_interval(per_seed.eta_similar.tolist())
            rows.append({"sets": name, "teacher": f"LS {ls:g}", "tau": f"1 -> {_tau(tau1)}",
                         "η_s (%)": _pm(per_seed.eta_similar, 1),
                         "η_s 95% interval": f"[{iv.low:.1f}, {iv.high:.1f}]" if iv.estimable else "n/a",
                         "η_d (%)": _pm(per_seed.eta_dissimilar, 1),
                         "systematic pairs": f"{int(g.systematic.sum())}/{len(g)}"})
    return present.results_table(pd.DataFrame(rows), status=None, device=None, max_rows=20,
                                 caption="Diffusion index averaged over the target classes (mean ± std over seeds; "
                                         "interval: paired t 95% over seeds); 'systematic pairs' counts (target, "
                                         "seed) pairs with η_s < 0 < η_d.")


def agreement_view(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None):
    """Table G.1 analogue: semantic sets vs the plain teacher's nearest / farthest centroids."""
    import torch

    from ..semantic_groups import agreement_table, mean_agreement, semantic_groups

    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    plain = analysis_of(p.teachers[0.0], store) if 0.0 in p.teachers else None
    if plain is None:
        return NOT_YET_RUN
    rows = agreement_table(semantic_groups(ls_kd.DATASET), torch.tensor(plain["centroids"], dtype=torch.float64))
    frame = pd.DataFrame([{"target": CLASS_NAMES[r.target], "similar (semantic)": ", ".join(CLASS_NAMES[c] for c in r.similar),
                           "nearest centroids": ", ".join(CLASS_NAMES[c] for c in r.nearest),
                           "similar agreement": r.similar_agreement, "dissimilar agreement": r.dissimilar_agreement}
                          for r in rows])
    s, d = mean_agreement(rows)
    frame = pd.concat([frame, pd.DataFrame([{"target": "average", "similar (semantic)": "", "nearest centroids": "",
                                             "similar agreement": s, "dissimilar agreement": d}])])
    return present.results_table(frame, status=None, device=None, digits=2, max_rows=12, wrap=(
        "similar (semantic)", "nearest centroids"), caption="Agreement of the two definitions of the similar / "
        "dissimilar sets (Supplementary G): fraction of the semantic set found among the plain teacher's nearest "
        "(farthest) test-set centroids, sets of equal size.")


def entropy_view(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None):
    """Table H.1 analogue: average entropy (nats) of each teacher's training targets per tau."""
    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    rows = []
    for ls, cfg in p.teachers.items():
        a = analysis_of(cfg, store)
        if a and "entropy" in a:
            rows.append({"teacher": f"LS {ls:g}", **{f"tau {k}": v for k, v in
                                                     sorted(a["entropy"].items(), key=lambda kv: float(kv[0]))}})
    if not rows:
        return NOT_YET_RUN
    return present.results_table(pd.DataFrame(rows), status=None, device=None, digits=3,
                                 caption=f"Average entropy (nats) of the teachers' targets softmax(z / tau) on the "
                                         f"students' training images (maximum log 10 = {math.log(10):.3f}).")


def matched_view(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None):
    """The matched-entropy case study: LS at tau vs plain at tau*, students' accuracy."""
    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    if not p.matched:
        return NOT_YET_RUN
    df = results_frame(profile, store, p)
    if df.empty:
        return NOT_YET_RUN
    df = _scored(df)
    model = ls_kd.recipe(profile).student_models[0]
    a_ls = analysis_of(p.teachers[0.1], store) or {}
    rows = []
    for tau_ls, tau_plain in sorted(p.matched.items()):
        ls_s, _ = _scores(df, ls_kd.student_arm(model, 0.1, tau_ls))
        pl_s, _ = _scores(df, ls_kd.student_arm(model, 0.0, tau_plain))
        diff = stats.paired_difference(ls_s, pl_s)
        rows.append({"LS teacher tau": _tau(tau_ls), "plain teacher tau*": _tau(tau_plain),
                     "entropy (nats)": a_ls.get("entropy", {}).get(_tau(tau_ls), float("nan")),
                     "LS student (%)": _pm(df[df.arm == ls_kd.student_arm(model, 0.1, tau_ls)].accuracy),
                     "plain student (%)": _pm(df[df.arm == ls_kd.student_arm(model, 0.0, tau_plain)].accuracy),
                     "LS - plain (pts)": diff.describe("", digits=2) if diff.n else present.MISSING,
                     "paper's direction": "LS better" if MATCH_DIRECTION.get(tau_ls) == "greater" else "LS poorer"})
    return present.results_table(pd.DataFrame(rows), status=None, device=None, digits=3, wide=("LS - plain (pts)",),
                                 caption="Students of the two teachers at equal average target entropy (paired by "
                                         "seed).")


def sensitivity_frame(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None) -> pd.DataFrame:
    """Claim 1 at each common rate of the student grid: one row per lr with both tau = 1 arms' accuracy (mean ±
    std) and the paired interval of LS minus plain (empty while not recorded)."""
    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    rows = []
    chosen = {ls: (p.selections.get(ls_kd.student_arm(ls_kd.recipe(profile).student_models[0], ls, 1.0)))
              for ls in (0.0, 0.1)}
    for lr, cfgs in ls_kd.sensitivity_configs(p).items():
        recs = [(c, store.get(c)) for c in cfgs]
        if any(r is None for _, r in recs):
            continue
        acc = {0.0: {}, 0.1: {}}
        for c, r in recs:
            ok = r["status"] == "ok"
            acc[c.teacher.label_smoothing][c.seed] = 100 * r["metrics"]["accuracy"] if ok else CHANCE_PCT
        diff = stats.paired_difference(acc[0.1], acc[0.0])
        mark = {ls: " (chosen)" if chosen[ls] is not None and chosen[ls].lr == lr else "" for ls in (0.0, 0.1)}
        rows.append({"lr": f"{lr:g}", "plain teacher, tau 1 (%)": _pm(pd.Series(list(acc[0.0].values()))) + mark[0.0],
                     "LS teacher, tau 1 (%)": _pm(pd.Series(list(acc[0.1].values()))) + mark[0.1],
                     "LS - plain (pts)": diff.describe("", digits=2), "LS better?": beats(diff, "greater").label,
                     "_diff": diff.mean})
    return pd.DataFrame(rows)


def sensitivity_view(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None):
    frame = sensitivity_frame(profile, store, p)
    if frame.empty:
        return NOT_YET_RUN
    return present.results_table(frame.drop(columns="_diff"), status=None, device=None, wide=("LS - plain (pts)",),
                                 caption="Claim 1 at a common learning rate: both teachers' tau = 1 students trained "
                                         "at each rate of the student grid (same seeds, paired). '(chosen)' marks "
                                         "the rate each arm's validation selection picked.")


# ---- projections ---------------------------------------------------------------------------------------------

def projection_panels(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None,
                      taus=(1.0, 64.0)) -> list[tuple[str, dict[str, Any]]]:
    """(title, recorded projection) for teacher without / with LS and their seed-0 students at ``taus``."""
    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    model = ls_kd.recipe(profile).student_models[0]
    panels = []
    for ls in (0.0, 0.1):
        if ls not in p.teachers:
            continue
        a = analysis_of(p.teachers[ls], store)
        if a and "projection" in a:
            panels.append((f"teacher, LS {ls:g}", a["projection"]))
        for tau in taus:
            cfgs = sorted(p.finals.get(ls_kd.student_arm(model, ls, tau), []), key=lambda c: c.seed)
            a = analysis_of(cfgs[0], store) if cfgs else None
            if a and "projection" in a:
                panels.append((f"student of LS {ls:g}, tau {_tau(tau)}", a["projection"]))
    return panels


def projection_figure(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None,
                      split: str = "train", taus=(1.0, 64.0)):
    panels = projection_panels(profile, store, p, taus)
    if not panels:
        return None
    fig, axes = present.page_figure(len(panels), ncols=3, panel_height=2.4)
    colors = ("tab:red", "tab:green", "tab:blue")
    for ax, (title, proj) in zip(axes, panels):
        pts = np.asarray(proj[f"{split}_points"])
        lab = np.asarray(proj[f"{split}_labels"])
        cents = np.asarray(proj[f"{split}_centroids"])
        for j, c in enumerate(proj["classes"]):
            sel = lab == c
            ax.scatter(pts[sel, 0], pts[sel, 1], s=5, alpha=0.45, color=colors[j], label=CLASS_NAMES[c])
            ax.scatter(cents[j, 0], cents[j, 1], s=160, marker="*", color=colors[j], edgecolors="black",
                       linewidths=0.7, zorder=3)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=9)
    present.shared_legend(fig, axes, ncol=3, markerscale=3)
    return fig


# ---- prose -------------------------------------------------------------------------------------------------------

def protocol_markdown(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None) -> str:
    r = ls_kd.recipe(profile)
    data = ("all 60,000 Fashion-MNIST training images" if r.n_train is None else
            f"a {r.n_train:,}-image subset of Fashion-MNIST's training split")
    test = "the 10,000 test images" if r.n_test is None else f"{r.n_test:,} test images"
    sk = r.model_kwargs
    def arch(m):  # noqa: E306
        if m in sk and "hidden" in sk[m]:
            return f"{m} (hidden {'-'.join(map(str, sk[m]['hidden']))})"
        return m + (f" (widths {'-'.join(map(str, sk[m]['widths'][1:]))})" if m in sk and "widths" in sk[m] else "")
    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    matched = ("; matched temperatures " + ", ".join(f"LS tau {_tau(a)} ↔ plain tau* {_tau(b)}"
                                                      for a, b in sorted(p.matched.items()))) if p.matched else ""
    return (
        f"**Data.** Training on {data}, evaluation on {test}; {r.val_size:,} training images are held out for "
        "learning-rate selection only (the final runs train on the whole training subset).\n\n"
        f"**Teachers.** {arch(r.teacher_model)} trained with cross-entropy on LS targets, LS ∈ "
        f"{{{', '.join(f'{v:g}' for v in r.ls_values)}}}, augmentation `{r.teacher_augment}`, SGD (momentum 0.9, "
        f"weight decay 5e-4, batch {r.batch_size}), {r.teacher_epochs} epochs, rate / 10 at 40% and 80%, one seed.\n\n"
        f"**Students.** {', '.join(arch(m) for m in r.student_models)}, {r.student_epochs} epochs, same optimiser, "
        "un-augmented images (so each teacher's logits are computed once), KD term only: "
        "$\\tau^2\\,\\mathrm{KL}(p_t^\\tau \\| p_s^\\tau)$ at $\\tau \\in \\{1, 2, 3, 64\\}$ for each teacher, plus "
        f"the plain teacher at the temperatures of matched entropy{matched}; the student alone on hard labels "
        f"(same budget) for the testable gate. Seeds {', '.join(map(str, r.seeds))}, paired.\n\n"
        f"**Learning rates.** Per arm on the validation split: teachers from "
        f"{{{', '.join(f'{x:g}' for x in r.teacher_lrs)}}} ({r.select_teacher_epochs or r.select_epochs}-epoch "
        f"runs), each student arm from {{{', '.join(f'{x:g}' for x in r.student_lrs)}}} ({r.select_epochs}-epoch "
        "runs), one seed, by validation accuracy (ties: validation NLL).\n\n"
        f"**Budget.** {r.notes}.")


def wall_time_markdown(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None) -> str:
    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    recs = [store.get(c) for c in p.all_configs()]
    secs = [r.get("wall_time_s") or 0.0 for r in recs if r is not None]
    if not secs:
        return f"No runs are recorded for profile `{profile}` yet."
    df = results_frame(profile, store, p)
    devices = ", ".join(sorted({present.short_device(d) for d in df["device"].dropna()})) or "unknown device"
    return (f"The {len(secs)} recorded runs of profile `{profile}` (selection candidates included) took "
            f"{sum(secs) / 60:.1f} minutes of training and evaluation in all on {devices}, as recorded in "
            "their records (each run's own time; runs trained together share their training time).")


def findings_markdown(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None) -> str:
    """What the recorded runs say, in a few sentences with their numbers (read from the records)."""
    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    df = results_frame(profile, store, p)
    model = ls_kd.recipe(profile).student_models[0]
    if df.empty or not len(p.teachers):
        return f"No runs of profile `{profile}` are recorded yet ({NOT_YET_RUN})."
    g, gate_text = gate(profile, df, store, p, model)
    if g.label == NOT_YET_RUN:
        return f"Not all runs of profile `{profile}` are recorded yet ({NOT_YET_RUN})."
    scored = _scored(df)
    means = scored[scored.kind == "student"].groupby("arm").accuracy.mean()
    alone = scored[scored.arm == ls_kd.alone_arm(model)].sort_values("seed").accuracy
    best_arm = means.idxmax()
    beat_alone = [a for a in means.index if means[a] > alone.mean()]
    worst_arm = means.idxmin()
    text = (f"**Testable gate.** {gate_text} Gate: {g.reason}.\n\n"
            f"**The student alone is hard to beat at this scale.** Its mean test accuracy is {alone.mean():.2f}% "
            f"(seeds: {', '.join(f'{v:.2f}' for v in alone)}); the best distilled arm, {best_arm}, reaches "
            f"{means[best_arm]:.2f}%, and {len(beat_alone)} of {len(means)} distilled arms have a higher mean than "
            f"the student alone. The weakest arm at its selected rate is {worst_arm} ({means[worst_arm]:.2f}%).")
    sens = sensitivity_frame(profile, store, p)
    if not sens.empty:
        listing = "; ".join(f"{row['LS - plain (pts)']} at lr {row['lr']}" for _, row in sens.iterrows())
        main = _claim1(df, model, int(df["n_test"].dropna().iloc[0]))[2]
        if (sens["LS better?"] != REPRODUCED).all() and (sens["_diff"].abs() < 1.0).all():
            text += (f"\n\n**Claim 1 depends on the selected rates.** At the selected rates, {main}; trained at a "
                     f"common rate, LS minus plain at tau = 1 is {listing}: at no common rate is the LS teacher's "
                     "student clearly better, so the advantage in the main table comes from the rates the two arms' "
                     "short selection runs picked (table below).")
        else:
            text += (f"\n\n**Claim 1 at common rates.** At the selected rates, {main}; at a common rate, LS minus "
                     f"plain at tau = 1 is {listing} (table below).")
    return text


def verdict_table(verdicts: list[Verdict]):
    frame = pd.DataFrame([{"claim": v.claim, "verdict": f"{v.badge} {v.label}", "effect": v.effect or "—"}
                          for v in verdicts])
    return present.results_table(frame, status=None, device=None, wrap=("effect",), wide=("claim",), max_rows=10,
                                 caption="Verdicts (details and evidence below).")


__all__ = ["CLAIMS", "accuracy_figure", "accuracy_view", "agreement_view", "chapter_verdicts", "diffusion_rows",
           "diffusion_summary_view", "diffusion_view", "entropy_view", "findings_markdown", "gate", "matched_view", "projection_figure",
           "projection_panels", "protocol_markdown", "results_frame", "runs_view", "selection_markdown",
           "selection_view", "sensitivity_frame", "sensitivity_view", "verdict_table", "wall_time_markdown"]
