"""Chandrasegaran et al.: records as frames, the testability gate, and the chapter's claims declared with their
gates and minimum effects (recipe v2's, and recipe v3's: section "recipe v3"), judged by the shared rules (`kdutils.verdicts.rules`) from the recorded runs only.
Accuracies in percentage points, paired by seed (the same seed gives a student the same initial weights and
data order whichever teacher it learns from); failed runs scored at chance (10%).

Gates: both teachers clearly better than the student alone and label smoothing made the teacher's targets
smoother (`gate`, every claim); at least 3 teachers per label-smoothing value, since the claims contrast two
teachers and one teacher per condition leaves teacher-to-teacher variance out of the intervals; and, per
comparison, a control: every arm compared trained at one learning rate
(`gates.same_setting`). A comparison of arms trained at different rates is "not testable": the rate alone moves
accuracy and the diffusion index by as much as the effects claimed. Every part of a claim is core (each is
one of the conditions the claim covers: "at every tau", "better than every other arm").
Minimum effects and margins, from the paper's Table 2 (ImageNet R50 -> R18): "at least as good" and the
practitioner rule use a 0.5-pt non-inferiority margin (above the paper's tau = 1 difference of 0.07, well below
its drops of 3-6 pts at tau >= 2); "loses more accuracy" needs a difference in differences of at least 0.4 pts
(half the paper's smallest, 0.83 at tau = 64). The diffusion index and the matched-entropy pairs carry no number
to take a minimum from: any effect counts. eta_dissimilar > 0 follows from eta_similar < 0 by the index's
normalisation (see `kdutils.chapters.ls_kd.diffusion`) and is not counted.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from kdutils.chapters.ls_kd import plan as ls_kd, recipes
if TYPE_CHECKING:  # the type checker reads pandas' own names; at run time pandas is imported on first use
    import pandas as pd
else:
    from kdutils.lazy import pandas as pd
from kdutils.report import present
from kdutils.store.provenance import code_status_sentence
from kdutils.store.store import ResultStore
from kdutils.verdicts import gates, stats
from kdutils.verdicts.rules import Claim, compare, find, gated, judge, stability, subset, to_verdict
from kdutils.verdicts.verdict import (NOT_TESTABLE, NOT_YET_RUN, Decision, Verdict, min_testable_gap, scores_by_key,
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


def _failures(df: pd.DataFrame) -> str:
    bad = df[df.status != "ok"]
    if bad.empty:
        return " No run failed."
    return f" Failed runs (scored at chance, {CHANCE_PCT:g}%): " + ", ".join(
        f"{r.arm} seed {r.seed} ({r.status})" for r in bad.itertuples()) + "."


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


# ---- the declared claims and their verdicts -------------------------------------------------------------------
MARGIN = 0.5  # pts, non-inferiority
MIN_TEACHERS = 3  # per label-smoothing value (the verdict-rules issue's control for claims that contrast teachers)
MIN_DID = 0.4  # pts

C1 = Claim(CLAIMS[0], "not_below", MARGIN, "pts", key="LS - plain at tau = 1")
C2 = Claim(CLAIMS[1], parts=tuple(Claim(f"drop(LS) - drop(plain) at tau = {_tau(t)}", "greater", MIN_DID,
                                            "pts", key=f"tau {_tau(t)}") for t in HIGH_TAUS),
           core=tuple(f"tau {_tau(t)}" for t in HIGH_TAUS))
C3 = Claim(CLAIMS[2], parts=tuple(Claim(f"eta_similar, LS teacher, tau 1 -> {_tau(t)}", "less", unit="%",
                                            key=f"tau 1 -> {_tau(t)}") for t in HIGH_TAUS),
           core=tuple(f"tau 1 -> {_tau(t)}" for t in HIGH_TAUS))
C4_KEYS = {1.0: "tau 1", 3.0: "tau 3"}
C5_PART = "LS tau = 1 vs {arm}"
DECLARED = (C1, C2, C3)  # claims 4 and 5 have parts that depend on the recorded plan (`_claim`)


# ---- recipe v3 (issue 22): declared before its runs; judged by `claims_v3` from v3's records -------------------
# Units (teacher pair i, student seed j), two-level intervals (teachers and student seeds), every student at one
# rate. Minimum effects from the paper: the same-temperature comparison as Table 2 A states it (tau = 1: LS better,
# any effect, the paper's +0.07 pts being below what this scale resolves; tau >= 2: LS worse by at least half the
# paper's smallest gap there, 0.76 pts at tau = 64); diffusion at least the paper's smallest |eta_similar| in
# Table 3 (0.39%); the causal link a Spearman rho below -0.3 (the paper gives no number); inherited enlargement any
# increase (the paper shows a figure only). The drop-from-tau-1 reading is kept as an unscored extra.
# Added after the teachers were recorded (the book's shared standard, `gates.converged`, with its default
# thresholds; nothing here was tuned to these teachers): every teacher must have finished learning.
V3_GATES = ("teachers converged", "teachers beat alone", "LS smooths", "one learning rate", "teachers per condition")
TAUS_V3 = (1.0,) + HIGH_TAUS
PAPER_SAME_TAU = {t: recipes.PAPER_TOP1_R18[(0.1, t)] - recipes.PAPER_TOP1_R18[(0.0, t)] for t in TAUS_V3}
MIN_SAME_TAU = round(0.5 * min(abs(PAPER_SAME_TAU[t]) for t in HIGH_TAUS), 2)  # 0.38 pts
MIN_ETA = 0.39
MIN_RHO = 0.3


SAME_TAU_V3 = Claim(
    "Table 2 as stated: at tau = 1 the LS teacher's student is better than the plain teacher's; at tau >= 2 it is "
    "worse than the plain teacher's student at the same tau.",
    parts=(Claim("LS - plain at tau = 1", "greater", 0.0, "pts", key="tau 1"),)
    + tuple(Claim(f"LS - plain at tau = {_tau(t)}", "less", MIN_SAME_TAU, "pts", key=f"tau {_tau(t)}")
            for t in HIGH_TAUS),
    core=tuple(f"tau {_tau(t)}" for t in TAUS_V3), gates=V3_GATES,
    source="Table 2 A: LS - plain = +0.07 / -2.92 / -3.00 / -0.76 pts at tau = 1 / 2 / 3 / 64")
DROP_V3 = Claim(
    "As tau grows, the LS teacher's students lose more accuracy than the plain teacher's (drop from tau = 1).",
    parts=tuple(Claim(f"drop(LS) - drop(plain) at tau = {_tau(t)}", "greater", MIN_DID, "pts",
                      key=f"tau {_tau(t)}") for t in HIGH_TAUS), core=tuple(f"tau {_tau(t)}" for t in HIGH_TAUS), scored=False,
    gates=V3_GATES)
DIFFUSION_V3 = Claim(
    "Systematic diffusion: with an LS teacher, distillation at a higher tau moves the student's class centroids "
    "towards semantically similar classes (eta_similar < 0; eta_dissimilar > 0 follows by construction).",
    parts=tuple(Claim(f"eta_similar, LS teacher, tau 1 -> {_tau(t)}", "less", MIN_ETA, "%",
                      key=f"tau 1 -> {_tau(t)}") for t in HIGH_TAUS), core=tuple(f"tau 1 -> {_tau(t)}" for t in HIGH_TAUS),
    gates=V3_GATES, source="Table 3: |eta_similar| >= 0.39%")
CAUSAL_V3 = Claim(
    "The diffusion cancels the LS teacher's benefit: across arms and seeds, the more negative the diffusion index "
    "(tau 1 -> tau), the larger the accuracy loss from tau = 1.", "less", MIN_RHO, "Spearman rho",
    gates=V3_GATES,
    source="Sec. 5 and App. H ('in all 34 experiments'); no number: 0.3 pre-registered here")
INHERIT_V3 = Claim(
    "The student inherits the LS teacher's distance enlargement: at tau = 1, similar classes lie farther apart (in "
    "units of their spread) in the LS teacher's student than in the plain teacher's.", "greater", 0.0, "radii",
    gates=V3_GATES + ("LS teachers enlarge",), source="Table 1, Fig. 1 obs. 2")
MATCHED_V3 = {1.0: "greater", 3.0: "less"}  # LS at tau vs plain at tau* of equal target entropy (App. H)


def _lr_gate(df, arms: list[str]) -> gates.Gate:
    return gates.same_setting("one learning rate", {a: df[df.arm == a].lr.dropna().tolist() for a in arms})


def _fmt(iv: stats.Interval, unit: str = "pts") -> str:
    return iv.describe(unit, digits=2)


def _c1(df, model, keys=None):
    s = (lambda x: x) if keys is None else (lambda x: subset(x, keys))
    a, b = recipes.student_arm(model, 0.1, 1.0), recipes.student_arm(model, 0.0, 1.0)
    f = compare(C1, s(_scores(df, a)[0]), s(_scores(df, b)[0]), _fmt)
    return [gated(f, [_lr_gate(df, [a, b])])]


def _c2(df, model, keys=None):
    s = (lambda x: x) if keys is None else (lambda x: subset(x, keys))
    out = []
    b_ls, b_p = recipes.student_arm(model, 0.1, 1.0), recipes.student_arm(model, 0.0, 1.0)
    base_ls, base_p = s(_scores(df, b_ls)[0]), s(_scores(df, b_p)[0])
    for part, tau in zip(C2.parts, HIGH_TAUS):
        a_ls, a_p = recipes.student_arm(model, 0.1, tau), recipes.student_arm(model, 0.0, tau)
        ls_t, p_t = s(_scores(df, a_ls)[0]), s(_scores(df, a_p)[0])
        ks = sorted(set(base_ls) & set(base_p) & set(ls_t) & set(p_t))
        iv = stats.t_interval([(base_ls[k] - ls_t[k]) - (base_p[k] - p_t[k]) for k in ks])
        out.append(gated(find(part, iv, effect=_fmt(iv)), [_lr_gate(df, [b_ls, b_p, a_ls, a_p])]))
    return out


def _c3(rows, df, model, keys=None):
    out = []
    for part, tau in zip(C3.parts, HIGH_TAUS):
        r = rows[(rows.ls == 0.1) & (rows.tau1 == tau)]
        if keys is not None:
            r = r[r.seed.isin(keys)]
        iv = stats.t_interval(r.groupby("seed").eta_similar.mean().tolist())
        arms = [recipes.student_arm(model, 0.1, 1.0), recipes.student_arm(model, 0.1, tau)]
        out.append(gated(find(part, iv, effect=iv.describe("%", digits=1)), [_lr_gate(df, arms)]))
    return out


def _c4(df, p, model, keys=None):
    s = (lambda x: x) if keys is None else (lambda x: subset(x, keys))
    out = []
    for tau_ls, tau_plain in sorted(p.matched.items()):
        a, b = recipes.student_arm(model, 0.1, tau_ls), recipes.student_arm(model, 0.0, tau_plain)
        part = Claim(f"LS at tau {_tau(tau_ls)} minus plain at tau* {_tau(tau_plain)} (equal target entropy)",
                     MATCH_DIRECTION.get(float(tau_ls), "greater"), unit="pts",
                     key=f"tau {_tau(tau_ls)} vs {_tau(tau_plain)}")
        out.append(gated(compare(part, s(_scores(df, a)[0]), s(_scores(df, b)[0]), _fmt),
                         [_lr_gate(df, [a, b])]))
    return out


def _c5(df, p, model, keys=None):
    s = (lambda x: x) if keys is None else (lambda x: subset(x, keys))
    best_arm = recipes.student_arm(model, 0.1, 1.0)
    best = s(_scores(df, best_arm)[0])
    out = []
    for arm, desc in p.arms.items():
        if desc["kind"] != "student" or desc["model"] != model or arm == best_arm:
            continue
        part = Claim(f"LS tau = 1 minus {arm}", "not_below", MARGIN, "pts", key=arm)
        out.append(gated(compare(part, best, s(_scores(df, arm)[0]), _fmt), [_lr_gate(df, [best_arm, arm])]))
    return out


def _claim(n: int, p: Any) -> Claim:
    """Claims 4 and 5 have one part per recorded arm of the plan; every part is core (each is one of the
    conditions the claim covers: "at every tau", "better than every other arm")."""
    if n == 4:
        keys = tuple(f"tau {_tau(a)} vs {_tau(b)}" for a, b in sorted(p.matched.items()))
        return Claim(CLAIMS[3], parts=tuple(Claim("", key=k) for k in keys), core=keys)
    if n == 5:
        keys = tuple(a for a, d in p.arms.items()
                     if d["kind"] == "student" and a != recipes.student_arm(d["model"], 0.1, 1.0))
        return Claim(CLAIMS[4], parts=tuple(Claim("", key=k) for k in keys), core=keys)
    return DECLARED[n - 1]


def _arms_needed(n: int, p: Any, model: str) -> list[str]:
    """The student arms claim n compares (all must be recorded, else the claim is "not yet run")."""
    ls1, p1 = recipes.student_arm(model, 0.1, 1.0), recipes.student_arm(model, 0.0, 1.0)
    if n == 1:
        return [ls1, p1]
    if n in (2, 3):
        return [ls1, p1] + [recipes.student_arm(model, ls, t) for t in HIGH_TAUS for ls in (0.1, 0.0)]
    if n == 4:
        return [recipes.student_arm(model, ls, t) for a, b in p.matched.items() for ls, t in ((0.1, a), (0.0, b))]
    return [a for a, d in p.arms.items() if d["kind"] == "student" and d["model"] == model]


CONTEXT = {1: "(Paper, ImageNet R50 -> R18: LS 71.62 vs plain 71.55 at tau = 1.) ",
           2: "(Paper, ImageNet R50 -> R18, drop(LS) - drop(plain) = 2.99 / 3.07 / 0.83 pts at tau = 2 / 3 / 64.) ",
           3: "eta_similar per seed averaged over the target classes (semantic sets); eta_dissimilar > 0 follows "
              "from eta_similar < 0 by the index's normalisation and is not counted. ",
           4: "LS teacher at tau against the plain teacher at the tau* of equal average target entropy; the paper's "
              "direction: LS better at tau = 1, poorer at tau = 3. ",
           5: "LS tau = 1 student against every other distilled arm, 0.5-pt non-inferiority margin. "}


def claim1_effect(df: pd.DataFrame, model: str) -> str:
    """"LS minus plain at tau = 1: +0.54 pts [...]" at the selected rates (the page's prose quotes it)."""
    ls1, p1 = (_scores(df, recipes.student_arm(model, ls, 1.0))[0] for ls in (0.1, 0.0))
    return f"LS minus plain at tau = 1: {_fmt(stats.paired_difference(ls1, p1))}"


def chapter_verdicts(profile: str, store: ResultStore | None = None, model: str | None = None) -> list[Verdict]:
    """One verdict per declared claim, from the records only (nothing is trained)."""
    store = store or ResultStore()
    p = ls_kd.plan(profile, store)
    model = model or recipes.recipe(profile).student_models[0]
    df = results_frame(profile, store, p)
    scale = _scale(profile, df)
    g, gate_text = gate(profile, df, store, p, model) if not df.empty else (
        Decision(NOT_YET_RUN, "nothing is recorded"), "")
    if g.label == NOT_YET_RUN:
        return [Verdict(c, NOT_YET_RUN, f"Not yet run: {g.reason} for profile `{profile}`.", scale) for c in CLAIMS]
    chapter_gate = gates.Gate("teachers clearly better than the student alone, LS smoother", g.label != NOT_TESTABLE,
                              g.reason)
    # claims contrast two teachers: an interval over one teacher per condition leaves out teacher-to-teacher variance
    teachers = gates.at_least("teachers per condition", {f"LS {ls:g}": len(t) if isinstance(t, (list, tuple)) else 1
                                                         for ls, t in p.teachers.items()}, MIN_TEACHERS, "teachers")
    recs = [r for r in store.records(recipes.EXPERIMENT) if r.get("config", {}).get("profile") == profile]
    code = code_status_sentence(recs)
    rows = diffusion_rows(profile, store, p)
    rows = rows[rows.model == model] if not rows.empty else rows
    parts = {1: lambda k: _c1(df, model, k), 2: lambda k: _c2(df, model, k),
             3: lambda k: _c3(rows, df, model, k), 4: lambda k: _c4(df, p, model, k), 5: lambda k: _c5(df, p, model, k)}
    seeds = sorted(set(df[df.kind == "student"].seed))
    out = []
    for n, text in enumerate(CLAIMS, start=1):
        missing = [a for a in _arms_needed(n, p, model) if not _scores(df, a)[0]]
        if missing or (n == 3 and rows.empty) or (n == 4 and not p.matched):
            what = f"arm(s) {', '.join(missing)} not recorded" if missing else "no recorded centroids or matched pairs"
            out.append(Verdict(text, NOT_YET_RUN, f"Not yet run: {what}.", scale))
            continue
        claim = _claim(n, p)

        def label_on(k, n=n, claim=claim):
            return judge(claim, parts[n](k), [chapter_gate, teachers]).label

        j = judge(claim, parts[n](None), [chapter_gate, teachers])
        stab = None if j.label in (NOT_TESTABLE, NOT_YET_RUN) else stability(seeds, lambda k: label_on(set(k)), j.label)
        effect = {3: "eta_similar (LS teacher) ", 4: "LS minus plain at matched entropy, "}.get(n, "") + "; ".join(
            f"{f.key}: {f.effect}" for f in j.parts if f.effect)
        out.append(to_verdict(j, f"{CONTEXT[n]}Gate: {gate_text}{_failures(df)}", scale, effect, stab, code))
    return out
