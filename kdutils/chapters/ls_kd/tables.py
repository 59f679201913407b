"""Chandrasegaran et al.: tables from the records (accuracy, lr selection, diffusion, agreement, entropy,
matched temperatures, lr sensitivity)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from kdutils.chapters.ls_kd import plan as ls_kd, recipes
from kdutils.chapters.ls_kd.claims import (CHANCE_PCT, CLASS_NAMES, MATCH_DIRECTION, _pm, _scores, _tau, analysis_of,
                                           diffusion_rows, results_frame, selection_frame)
if TYPE_CHECKING:  # the type checker reads pandas' own names; at run time pandas is imported on first use
    import pandas as pd
else:
    from kdutils.lazy import pandas as pd
from kdutils.report import present
from kdutils.store.store import ResultStore
from kdutils.verdicts import stats
from kdutils.verdicts.verdict import NOT_YET_RUN, beats


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
    row = {"row": f"teacher ({recipes.recipe(profile).teacher_model})"}
    for v in (0.0, 0.1):
        row[f"LS {v:g}"] = _pm(df[(df.kind == "teacher") & (df.ls == v)].accuracy)
        row[f"LS {v:g} (paper)"] = f"{recipes.PAPER_TEACHER_TOP1[v]:.2f}"
    rows.append(row)
    for model in recipes.recipe(profile).student_models:
        a = df[df.arm == recipes.alone_arm(model)].accuracy
        rows.append({"row": f"{model} alone", "LS 0": _pm(a), "LS 0 (paper)": "", "LS 0.1": "",
                     "LS 0.1 (paper)": ""})
        for tau in recipes.TAUS:
            row = {"row": f"{model}, tau = {_tau(tau)}"}
            for v in (0.0, 0.1):
                row[f"LS {v:g}"] = _pm(df[df.arm == recipes.student_arm(model, v, tau)].accuracy)
                row[f"LS {v:g} (paper)"] = f"{recipes.PAPER_TOP1_R18[(v, tau)]:.2f}"
            rows.append(row)
    frame = pd.DataFrame(rows)
    return present.results_table(
        frame, {"row": "", "LS 0": "plain teacher (LS 0)", "LS 0 (paper)": "paper, LS 0",
                "LS 0.1": "LS teacher (LS 0.1)", "LS 0.1 (paper)": "paper, LS 0.1"}, status=None, device=None,
        max_rows=30,
        caption="Test accuracy (%), mean ± std over seeds, students paired by seed; the paper's columns are "
                "ImageNet-1K top-1 (ResNet-50 -> ResNet-18, Table 2 A), for the shape of the trend only.")


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
    r = recipes.recipe(profile)
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
    model = recipes.recipe(profile).student_models[0]
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

    from kdutils.chapters.ls_kd.semantic_groups import agreement_table, mean_agreement, semantic_groups

    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    plain = analysis_of(p.teachers[0.0], store) if 0.0 in p.teachers else None
    if plain is None:
        return NOT_YET_RUN
    rows = agreement_table(semantic_groups(recipes.DATASET), torch.tensor(plain["centroids"], dtype=torch.float64))
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
    model = recipes.recipe(profile).student_models[0]
    a_ls = analysis_of(p.teachers[0.1], store) or {}
    rows = []
    for tau_ls, tau_plain in sorted(p.matched.items()):
        ls_s, _ = _scores(df, recipes.student_arm(model, 0.1, tau_ls))
        pl_s, _ = _scores(df, recipes.student_arm(model, 0.0, tau_plain))
        diff = stats.paired_difference(ls_s, pl_s)
        rows.append({"LS teacher tau": _tau(tau_ls), "plain teacher tau*": _tau(tau_plain),
                     "entropy (nats)": a_ls.get("entropy", {}).get(_tau(tau_ls), float("nan")),
                     "LS student (%)": _pm(df[df.arm == recipes.student_arm(model, 0.1, tau_ls)].accuracy),
                     "plain student (%)": _pm(df[df.arm == recipes.student_arm(model, 0.0, tau_plain)].accuracy),
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
    chosen = {ls: (p.selections.get(recipes.student_arm(recipes.recipe(profile).student_models[0], ls, 1.0)))
              for ls in (0.0, 0.1)}
    for lr, cfgs in ls_kd.sensitivity_configs(p).items():
        recs = [(c, r) for c in cfgs if (r := store.get(c)) is not None and c.teacher is not None]
        if len(recs) < len(cfgs):
            continue
        acc: dict[float, dict[int, float]] = {0.0: {}, 0.1: {}}
        for c, r in recs:
            ok = r["status"] == "ok"
            assert c.teacher is not None  # kept above: every sensitivity run is a distilled student
            acc[c.teacher.label_smoothing][c.seed] = 100 * r["metrics"]["accuracy"] if ok else CHANCE_PCT
        diff = stats.paired_difference(acc[0.1], acc[0.0])
        mark = {ls: " (chosen)" if (sel := chosen[ls]) is not None and sel.lr == lr else "" for ls in (0.0, 0.1)}
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
