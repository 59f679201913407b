"""Tables and figures of the cross-fitted recipe (`recipe_cf`, run by `campaign`), read from its records only,
for the chapter page once those records exist: every arm's accuracy, the KD-room gate, the cross-fitted
teachers, and the learned alpha over training (mean and share above 0.99, overall and per motivation group).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kdutils.chapters.tgeo import recipe_cf as rc
from kdutils.chapters.tgeo.campaign import final_configs, resolved
from kdutils.chapters.tgeo.crossfit import part_configs
from kdutils.store.store import ResultStore

__all__ = ["alpha_epochs", "alpha_epochs_figure", "arms_table", "heldout_teacher_table", "room_table",
           "teachers_table"]

TGEO_SHOWN = ("tgeo_both", "tgeo_both_sgdstep", "tgeo_const")


def _finals(profile: str, store: ResultStore, attempt: int = 1) -> dict[str, Any] | None:
    res = resolved(profile, store, attempt)
    if res.teacher_lr is None:
        return None
    return final_configs(profile, res, rc.teacher_config(profile, res.teacher_lr, attempt)) | {"_vanilla": res.vanilla}


def heldout_teacher_table(profile: str, store: ResultStore | None = None, attempt: int = 2) -> pd.DataFrame:
    """The held-out teacher of `attempt` (one row): its pool, its accuracy there, on the student's labelled images
    (out of sample: the logits the students learn from), on validation and on the test set."""
    store = store or ResultStore()
    res = resolved(profile, store, attempt)
    if res.teacher_lr is None:
        return pd.DataFrame()
    c = rc.teacher_config(profile, res.teacher_lr, attempt)
    rec = store.get(c)
    if rec is None or rec.get("status") != "ok":
        return pd.DataFrame()
    h = rec["heldout"]
    return pd.DataFrame([{"lr": c.train.lr, "epochs": c.train.epochs, "pool images": h["pool"],
                          "acc. on its pool (%)": 100 * h["pool_accuracy"],
                          "acc. on the student's images (%)": 100 * h["student_train_accuracy"],
                          "val. acc. (%)": 100 * rec["metrics"].get("val_accuracy", float("nan")),
                          "test acc. (%)": 100 * rec["metrics"]["accuracy"]}])


def teachers_table(profile: str, store: ResultStore | None = None, attempt: int = 1) -> pd.DataFrame:
    """One row per cross-fitted part: images it trained on and predicts out of fold, its accuracy there, on its
    own folds and on the test set (an attempt with a held-out teacher: `heldout_teacher_table`)."""
    store = store or ResultStore()
    if rc.cf_recipe(profile, attempt).teacher_logits == "heldout":
        return heldout_teacher_table(profile, store, attempt)
    res = resolved(profile, store, attempt)
    if res.teacher_lr is None:
        return pd.DataFrame()
    rows = []
    for c in part_configs(rc.teacher_part0(profile, res.teacher_lr)):
        rec = store.get(c)
        if rec is None or rec.get("status") != "ok":
            continue
        cf = rec["crossfit"]
        rows.append({"part": cf["part"], "lr": c.train.lr, "epochs": c.train.epochs, "images fitted": cf["n_fit"],
                     "images predicted out of fold": cf["n_oof"], "acc. own folds (%)": 100 * cf["fit_accuracy"],
                     "acc. out of fold (%)": 100 * cf["oof_accuracy"],
                     "test acc. (%)": 100 * rec["metrics"]["accuracy"]})
    return pd.DataFrame(rows)


def arms_table(profile: str, store: ResultStore | None = None, attempt: int = 1) -> pd.DataFrame:
    """Per arm (main, capacity and heterogeneous runs): recorded runs, failed ones (diverged / at chance), and
    mean and std over the others of test accuracy in pts (the verdicts score failed runs at chance instead)."""
    store = store or ResultStore()
    fc = _finals(profile, store, attempt)
    if fc is None:
        return pd.DataFrame()
    groups = {"main": {"": fc["main"]}, "capacity": fc["capacity"], "hetero": fc["hetero"]}
    rows = []
    for group, tags in groups.items():
        for tag, arms in tags.items():
            for arm, by_seed in arms.items():
                recs = [r for c in by_seed.values() if (r := store.get(c)) is not None]
                accs = [100 * r["metrics"]["accuracy"] for r in recs if r.get("status") == "ok"]
                if recs:
                    rows.append({"group": group, "student": tag or "main", "arm": arm, "runs": len(recs),
                                 "failed": len(recs) - len(accs),
                                 "mean": float(np.mean(accs)) if accs else float("nan"),
                                 "std": float(np.std(accs, ddof=1)) if len(accs) > 1 else float("nan"),
                                 "chosen on validation": arm == fc["_vanilla"]})
    return pd.DataFrame(rows)


#: Every arm whose α comes from f_w (trained, constant-input or frozen), in the order the page lists them.
ALPHA_ARMS = ("tgeo_intra", "tgeo_inter", "tgeo_both", "tgeo_both_sgdstep", "tgeo_const", "tgeo_frozen")


def alpha_by_arm(profile: str, store: ResultStore | None = None, attempt: int = 1) -> pd.DataFrame:
    """Per f_w arm of the main student, from its finals' records: f_w's rate, the final mean α_i and share of α_i
    above 0.99 over the training samples (mean over seeds, and in how many seeds that share is above one half),
    and the test accuracy. Shows whether α saturates in every arm or only where f_w is trained, and how the
    lookahead's step changes it."""
    store = store or ResultStore()
    fc = _finals(profile, store, attempt)
    rows = []
    for arm in ALPHA_ARMS if fc else ():
        assert fc is not None  # the loop runs only when the finals are resolved
        recs = [r for c in fc["main"].get(arm, {}).values() if (r := store.get(c)) is not None
                and r.get("status") == "ok" and "tgeo" in r]
        if not recs:
            continue
        share = np.array([r["tgeo"]["alpha_share_above_0.99"] for r in recs], dtype=float)
        spec = recs[0]["config"]["model_kwargs"].get("arm_spec") or {}
        rows.append({"arm": arm, "f_w rate": spec.get("fusion_lr"), "seeds": len(recs),
                     "mean α": float(np.mean([r["tgeo"]["alpha_mean"] for r in recs])),
                     "share α > 0.99": float(share.mean()), "seeds mostly saturated": int((share > 0.5).sum()),
                     "test acc. (%)": 100 * float(np.mean([r["metrics"]["accuracy"] for r in recs]))})
    return pd.DataFrame(rows)


def alpha_epochs(profile: str, store: ResultStore | None = None, arms=TGEO_SHOWN, attempt: int = 1) -> pd.DataFrame:
    """Long table: arm, seed, epoch, group ("all" or g1..g5, g'1..g'5), mean alpha, share above 0.99."""
    store = store or ResultStore()
    fc = _finals(profile, store, attempt)
    rows = []
    for arm in arms if fc else ():
        assert fc is not None  # the loop runs only when the finals are resolved
        for seed, c in fc["main"].get(arm, {}).items():
            rec = store.get(c)
            for h in (rec or {}).get("history", []):
                rows.append({"arm": arm, "seed": seed, "epoch": h["epoch"], "group": "all", "mean": h["alpha_mean"],
                             "share_above_0.99": h.get("alpha_share_above_0.99", float("nan"))})
                for g, d in (h.get("alpha_groups") or {}).items():
                    rows.append({"arm": arm, "seed": seed, "epoch": h["epoch"], "group": g, "mean": d["mean"],
                                 "share_above_0.99": d["share_above_0.99"]})
    return pd.DataFrame(rows, columns=["arm", "seed", "epoch", "group", "mean", "share_above_0.99"])


def alpha_epochs_figure(profile: str, store: ResultStore | None = None, arm: str = "tgeo_both", attempt: int = 1):
    """Mean alpha_i (left) and its share above 0.99 (right) per epoch, mean over seeds, for the whole training
    set and for the teacher-right / teacher-wrong groups of lowest and highest ST; None without records."""
    import matplotlib.pyplot as plt

    df = alpha_epochs(profile, store, (arm,), attempt)
    if df.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
    for g in [x for x in ("all", "g1", "g5", "g'1", "g'5") if x in set(df.group)]:
        d = df[df.group == g].groupby("epoch")[["mean", "share_above_0.99"]].mean()
        for ax, col in zip(axes, ("mean", "share_above_0.99")):
            ax.plot(d.index, d[col], label=g, lw=2 if g == "all" else 1)
    axes[0].set(xlabel="epoch", ylabel="mean learned alpha_i", ylim=(0, 1))
    axes[1].set(xlabel="epoch", ylabel="share of alpha_i above 0.99", ylim=(0, 1))
    axes[1].legend(title="group", fontsize=8)
    fig.suptitle(f"{arm}: learned alpha over training (mean over seeds)", fontsize=10)
    return fig


def room_table(profile: str, store: ResultStore | None = None, attempt: int = 1) -> pd.DataFrame:
    """The KD-room gate for every student the recipe trains (main, each capacity width, each conv student): the
    vanilla arm chosen on validation minus the student alone, paired over seeds, against the +1 pt margin. The
    attempts at a setting with room, recorded whether or not the gate passes."""
    from kdutils.chapters.tgeo.claims_cf import _scores, room_gate

    store = store or ResultStore()
    fc = _finals(profile, store, attempt)
    if fc is None or fc["_vanilla"] is None:
        return pd.DataFrame()
    v = fc["_vanilla"]
    students = {"main": fc["main"], **fc["capacity"], **{f"het:{m}": a for m, a in fc["hetero"].items()}}
    rows = []
    for name, arms in students.items():
        if "alone" not in arms or v not in arms:
            continue
        gate = room_gate(_scores({"alone": arms["alone"], v: arms[v]}, store), v)
        m = gate.measured
        rows.append({"student": name, "vanilla minus alone (pts)": m["mean"], "low": m["low"], "high": m["high"],
                     "n": m["n"], "margin": m["margin"], "room": gate.passed})
    return pd.DataFrame(rows)
