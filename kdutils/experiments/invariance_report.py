"""The report side of the invariance-KD chapter (Odagiu et al.): reading the recorded runs of
`invariance` and judging them: the results tables, the paper's Figure 1, the three verdicts, the KL-direction
tables and the KL gradient illustration.

It exists apart from `invariance` so that the experiment (what runs and how) and the reading of its records
(what the report notebook shows) can change independently; it imports the experiment's constants and recipes
from `invariance`, which never imports this module.
"""
from __future__ import annotations

import json
from typing import Any, Iterable

import numpy as np
import pandas as pd
import torch

from ..store import ResultStore
from ..verdict import Verdict
from .invariance import (COLLAPSE_FACTOR, DATASETS, K_FOLDS, PAIR_INFO, PAIRS, REVERSE_TAUS, ROLES, TAUS,
                         check_pair, experiment_name, recipe, resolve_dataset)

# ---------------------------------------------------------------------------------------------------------
# Tables


METRICS = ("accuracy", "nll", "ece", "agreement", "kl", "im_l1", "im_l2", "im_roll_l1", "im_roll_l2",
           "agreement_tprime", "kl_tprime")
METRIC_LABELS = {"accuracy": "accuracy", "nll": "NLL", "ece": "ECE", "im_l1": "IM (L1)", "im_l2": "IM (L2)",
                 "agreement": "top-1 agreement", "kl": "KL(P_t||P_s), T=1"}


def _student_lookup(pair: str, profile: str, dataset: str) -> dict[tuple[str, str], str]:
    rec = recipe(pair, profile, dataset)
    return {(net.model, json.dumps(dict(net.kwargs), sort_keys=True, default=list)): name
            for name, net in rec.students.items()}


def results_table(profile: str, pairs: Iterable[str] | None = None, dataset: str | None = None,
                  store: ResultStore | None = None) -> pd.DataFrame:
    """One row per recorded run of `profile` (each pair on its default dataset unless `dataset` is given)."""
    store = store or ResultStore()
    frames = []
    for pair in (PAIRS if pairs is None else tuple(pairs)):
        ds = resolve_dataset(pair, dataset) if dataset is None or dataset in check_pair(pair).datasets else None
        if ds is None:
            continue
        t = store.table(experiment_name(pair), profile=profile)
        if t.empty:
            continue
        t = t[t["config.data.dataset"] == ds].copy()
        if t.empty:
            continue
        lookup = _student_lookup(pair, profile, ds)
        kwargs = t["config.model_kwargs"].map(lambda s: json.dumps(json.loads(s), sort_keys=True))
        t["student"] = [lookup.get((m, k), "") if r not in ("teacher", "teacher_prime") else ""
                        for m, k, r in zip(t["config.model"], kwargs, t["config.role"])]
        t["pair"], t["dataset"] = pair, ds
        frames.append(t)
    if not frames:
        return pd.DataFrame(columns=["pair", "dataset", "student", "role", "tau", "direction", "fold",
                                     *METRICS, "collapsed"])
    t = pd.concat(frames, ignore_index=True)
    kd = t["config.alpha"] > 0
    out = pd.DataFrame({
        "pair": t["pair"], "dataset": t["dataset"], "student": t["student"], "role": t["config.role"],
        "tau": t["config.tau"].where(kd), "direction": t["config.kd_direction"].where(kd, ""),
        "fold": t["config.data.fold"], "model": t["config.model"],
    })
    for m in METRICS:
        out[m] = t[m] if m in t else np.nan
    chance = t["dataset"].map(lambda d: 1.0 / DATASETS[d].num_classes)
    out["collapsed"] = out["accuracy"] < COLLAPSE_FACTOR * chance
    for c in ("n_train", "n_test", "wall_time_s", "device", "commit", "status"):
        out[c] = t[c] if c in t else None
    order = {r: i for i, r in enumerate(ROLES)}
    return out.sort_values(["pair", "student", "role", "tau", "direction", "fold"],
                           key=lambda s: s.map(order) if s.name == "role" else s).reset_index(drop=True)


def point_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The records of one point notebook as a table (one row per run)."""
    rows = []
    for r in records:
        cfg, m = r["config"], r.get("metrics", {})
        kd = cfg["alpha"] > 0
        rows.append({"role": cfg["role"], "model": cfg["model"], "tau": cfg["tau"] if kd else None,
                     "KL dir": cfg["kd_direction"] if kd else "", "fold": cfg["data"]["fold"],
                     **{k: m[k] for k in ("accuracy", "nll", "ece", "agreement", "kl", "im_l1", "im_l2",
                                          "im_roll_l1", "agreement_tprime") if k in m},
                     "status": r["status"], "train s": r.get("wall_time_s"),
                     "device": r.get("provenance", {}).get("device")})
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame, metrics: Iterable[str] = ("accuracy", "nll", "ece", "agreement", "kl", "im_l1",
                                                             "im_l2", "im_roll_l1")) -> pd.DataFrame:
    """Mean and standard deviation over folds per (pair, student, role, tau, direction); `n` = folds."""
    if table.empty:
        return pd.DataFrame()
    keys = ["pair", "student", "role", "tau", "direction"]
    t = table.copy()
    t["tau"] = t["tau"].fillna(0.0)
    metrics = [m for m in metrics if m in t]
    g = t.groupby(keys, dropna=False)
    out = g[metrics].mean().add_suffix("_mean").join(g[metrics].std(ddof=1).add_suffix("_std"))
    out["n"] = g.size()
    out["n_collapsed"] = g["collapsed"].sum()
    out = out.reset_index()
    out["tau"] = out["tau"].replace(0.0, np.nan)
    return out


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The results table as the chapter shows it: mean +- std over folds, one row per arm."""
    s = summary(table)
    if s.empty:
        return s
    rows = []
    for _, r in s.iterrows():
        row = {"pair": r["pair"], "student": r["student"], "arm": r["role"],
               "tau": "" if pd.isna(r["tau"]) else f"{r['tau']:g}", "KL dir": r["direction"], "folds": int(r["n"])}
        for m, label in (("accuracy", "acc"), ("nll", "NLL"), ("ece", "ECE"), ("im_l1", "IM L1"),
                         ("im_l2", "IM L2"), ("im_roll_l1", "IM roll L1"), ("agreement", "agree"), ("kl", "KL")):
            mean, std = r.get(f"{m}_mean"), r.get(f"{m}_std")
            row[label] = "" if mean is None or pd.isna(mean) else (
                f"{mean:.4f}" if pd.isna(std) else f"{mean:.4f} ± {std:.4f}")
        row["collapsed"] = f"{int(r['n_collapsed'])}/{int(r['n'])}" if r["n_collapsed"] else ""
        rows.append(row)
    return pd.DataFrame(rows)

# ---------------------------------------------------------------------------------------------------------
# Figure 1


def figure_rows(profile: str) -> list[tuple[str, str]]:
    """(pair, student) rows in the paper's order: DGCNN -> dsinv, DGCNN -> dsequiv, dsinv -> MLP, ResNet -> MLP."""
    rows = [("dgcnn_deepsets", s) for s in recipe("dgcnn_deepsets", profile).default_students]
    rows += [("deepsets_mlp", "mlp")]
    rows += [("resnet_mlp", s) for s in recipe("resnet_mlp", profile).default_students]
    return rows


FIGURE_METRICS = ("accuracy", "nll", "ece", "im_l1", "agreement", "kl")


def plot_figure1(table: pd.DataFrame, profile: str, metrics: Iterable[str] = FIGURE_METRICS):
    """The paper's Figure 1: a row per (pair, student), a panel per metric against tau; solid lines for the KD
    arms, dashed lines for independently trained models; error bars are one std over folds."""
    import matplotlib.pyplot as plt

    metrics = tuple(metrics)
    rows = figure_rows(profile)
    s = summary(table)
    fig, axes = plt.subplots(len(rows), len(metrics), figsize=(3.1 * len(metrics), 2.5 * len(rows)), squeeze=False)
    for i, (pair, student) in enumerate(rows):
        info = PAIR_INFO[pair]
        tl, sl = info.teacher_label, info.student_labels[student]
        sym = "trans" if info.symmetry == "translation" else "perm"
        sub = s[(s.pair == pair) & ((s.student == student) | (s.student == ""))] if not s.empty else s
        for j, m in enumerate(metrics):
            ax = axes[i, j]
            if sub.empty or f"{m}_mean" not in sub:
                ax.text(0.5, 0.5, "not yet run", ha="center", va="center", transform=ax.transAxes)
            else:
                _panel(ax, sub, m, tl, sl, sym)
            if i == 0:
                ax.set_title(METRIC_LABELS.get(m, m))
            if j == 0:
                ax.set_ylabel(f"{tl} -> {sl}\n({info.symmetry})", fontsize=9)
            ax.set_xscale("log", base=2)
            ax.set_xticks(TAUS, [f"{t:g}" for t in TAUS])
            if i == len(rows) - 1:
                ax.set_xlabel("temperature tau")
    handles, labels = [], []
    for ax in axes.flat:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), fontsize=8, frameon=False)
    fig.suptitle(f"Invariance KD, Figure 1 reproduction (profile {profile}; mean ± std over folds)")
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return fig


def _panel(ax, sub: pd.DataFrame, m: str, tl: str, sl: str, sym: str) -> None:
    """One panel; the labels are generic (the row's y label names the models) so one legend serves all rows."""
    solid = [("distilled", "forward", "teacher -> student", "C0", "o", "-"),
             ("distilled_prime", "forward", "teacher' -> student", "C1", "s", "-"),
             ("self", "forward", "self-distillation", "C2", "^", "-"),
             ("self_aug", "forward", "self-distillation from the augmented student", "C3", "v", "-"),
             ("distilled", "reverse", "teacher -> student, reverse KL", "C4", "x", ":")]
    for role, direction, label, color, marker, ls in solid:
        d = sub[(sub.role == role) & (sub.direction == direction)].sort_values("tau")
        if d.empty or d[f"{m}_mean"].isna().all():
            continue
        ax.errorbar(d.tau, d[f"{m}_mean"], yerr=d[f"{m}_std"].fillna(0), color=color, marker=marker, ms=4,
                    lw=1.2, ls=ls, capsize=2, label=label)
    dashed = [("teacher", "teacher (independent)", "k"), ("teacher_prime", "teacher' (independent)", "0.55"),
              ("student", "student alone", "C5"), ("student_aug", f"student on transformed data ({sym})", "C6")]
    for role, label, color in dashed:
        d = sub[sub.role == role]
        if d.empty or d[f"{m}_mean"].isna().all():
            continue
        ax.axhline(float(d[f"{m}_mean"].iloc[0]), ls="--", lw=1, color=color, label=label)


# ---------------------------------------------------------------------------------------------------------
# Verdicts. Every rule below is stated in the report notebook; they use fold means and ignore collapsed runs.


def _scale(table: pd.DataFrame, profile: str) -> str:
    devices = ", ".join(sorted(str(d) for d in set(table["device"].dropna()))) or "unknown device"
    folds = sorted(int(f) for f in set(table["fold"].dropna()))
    n_train = sorted(int(n) for n in set(table["n_train"].dropna()))
    return (f"profile `{profile}`, folds {folds} of {K_FOLDS}, {'/'.join(map(str, n_train))} training examples "
            f"per run, on {devices}")


def _means(table: pd.DataFrame, pair: str, student: str, metric: str,
           keep_collapsed: bool = False) -> dict[tuple[str, float, str], float]:
    """Fold-mean of `metric` per (role, tau, direction) of one row of Figure 1, collapsed runs left out."""
    t = table[(table.pair == pair) & ((table.student == student) | (table.student == ""))]
    if not keep_collapsed:
        t = t[~t.collapsed.astype(bool)]
    t = t.assign(tau=t.tau.fillna(0.0))
    return {k: float(v) for k, v in t.groupby(["role", "tau", "direction"])[metric].mean().items()}


def _combine(labels: list[str]) -> str:
    if not labels:
        return "not yet run"
    if all(lb == "reproduced" for lb in labels):
        return "reproduced"
    if all(lb == "not reproduced" for lb in labels):
        return "not reproduced"
    return "partly reproduced"


def transfer_gaps(table: pd.DataFrame, profile: str, metric: str = "im_l1") -> pd.DataFrame:
    """Per row of Figure 1 and tau: how much of the IM gap between the self-distilled student and the teacher
    distillation from the teacher closes, g = (IM_self - IM_distilled) / (IM_self - IM_teacher)."""
    rows = []
    for pair, student in figure_rows(profile):
        means = _means(table, pair, student, metric)
        agree = _means(table, pair, student, "agreement")
        im_t = means.get(("teacher", 0.0, ""))
        for tau in TAUS:
            im_self, im_kd = means.get(("self", tau, "forward")), means.get(("distilled", tau, "forward"))
            if im_t is None or im_self is None or im_kd is None:
                continue
            gap = im_self - im_t
            rows.append({"pair": pair, "student": student, "tau": tau, "IM teacher": im_t, "IM self": im_self,
                         "IM distilled": im_kd, "agreement": agree.get(("distilled", tau, "forward")),
                         "gap closed": (im_self - im_kd) / gap if gap > 0 else float("nan")})
    return pd.DataFrame(rows)


def verdict_transfer(table: pd.DataFrame, profile: str) -> Verdict:
    """Claim 1. Per row of Figure 1, take the largest fraction g of the self-vs-teacher IM gap that distillation
    closes over the temperatures: reproduced if g < 0.25 (the student stays about as non-invariant as a
    self-distilled one), partly if 0.25 <= g < 0.5, not reproduced if g >= 0.5."""
    claim = ("KD does not transfer the teacher's invariance: the distilled student's IM is about that of a "
             "self-distilled student and far from the teacher's, at every temperature, even at high fidelity.")
    gaps = transfer_gaps(table, profile)
    if gaps.empty:
        return Verdict(claim, "not yet run", "no recorded teacher, self-distilled and distilled runs", profile)
    labels, parts = [], []
    for (pair, student), g in gaps.groupby(["pair", "student"], sort=False):
        worst = g["gap closed"].max()
        labels.append("reproduced" if worst < 0.25 else "partly reproduced" if worst < 0.5 else "not reproduced")
        best = g.loc[g["gap closed"].idxmax()]
        parts.append(f"{_row_label(pair, student)}: IM teacher {best['IM teacher']:.3g}, self {best['IM self']:.3g}, "
                     f"distilled {best['IM distilled']:.3g} at tau={best['tau']:g} (agreement "
                     f"{best['agreement']:.3f}); largest gap closed {worst:.0%}")
    return Verdict(claim, _combine(labels), "; ".join(parts) + ".", _scale(table, profile))


def verdict_augmentation(table: pd.DataFrame, profile: str) -> Verdict:
    """Claim 2. Per row: reproduced if the student trained on transformed data has a lower IM than every
    distilled student (from teacher or teacher', any tau); not reproduced otherwise, and also when the augmented
    student collapsed (below twice chance accuracy in every fold: a near-constant predictor is trivially
    invariant, so its low IM shows nothing); overall reproduced if every row is."""
    claim = ("Training the student on transformed data gives the best invariance; KD adds nothing beyond "
             "augmentation.")
    labels, parts = [], []
    for pair, student in figure_rows(profile):
        means = _means(table, pair, student, "im_l1")
        aug = means.get(("student_aug", 0.0, ""))
        kd = {k: v for k, v in means.items() if k[0] in ("distilled", "distilled_prime")}
        if aug is None and kd:
            acc = _means(table, pair, student, "accuracy", keep_collapsed=True).get(("student_aug", 0.0, ""))
            if acc is not None:
                labels.append("not reproduced")
                parts.append(f"{_row_label(pair, student)}: the augmented student did not learn (accuracy {acc:.3f}), "
                             "so augmentation gives no usable invariant student here")
            continue
        if aug is None or not kd:
            continue
        best_key = min(kd, key=kd.get)
        ok = aug < kd[best_key]
        labels.append("reproduced" if ok else "not reproduced")
        parts.append(f"{_row_label(pair, student)}: augmented student IM {aug:.3g} vs best KD student "
                     f"{kd[best_key]:.3g} ({best_key[0]}, tau={best_key[1]:g}, {best_key[2]})")
    if not labels:
        return Verdict(claim, "not yet run", "no recorded augmented and distilled students", profile)
    return Verdict(claim, _combine(labels), "; ".join(parts) + ".", _scale(table, profile))


def verdict_generalisation(table: pd.DataFrame, profile: str) -> Verdict:
    """Claim 3. Per row, average over the temperatures (non-collapsed forward-KL runs) the change from the
    student alone to the student distilled from the teacher in accuracy, NLL and ECE: reproduced if accuracy
    rises and NLL or ECE falls, partly if exactly one of the three improves or accuracy is not among those
    that do, not reproduced if none improves. Overall: all rows reproduced -> reproduced, none -> not."""
    claim = "KD still improves the student's generalisation (accuracy, NLL, ECE)."
    labels, parts = [], []
    for pair, student in figure_rows(profile):
        d = {m: _means(table, pair, student, m) for m in ("accuracy", "nll", "ece")}
        alone = {m: d[m].get(("student", 0.0, "")) for m in d}
        kd = {m: [v for k, v in d[m].items() if k[0] == "distilled" and k[2] == "forward"] for m in d}
        if any(v is None for v in alone.values()) or not kd["accuracy"]:
            continue
        delta = {m: float(np.mean(kd[m])) - alone[m] for m in d}
        better = {"accuracy": delta["accuracy"] > 0, "nll": delta["nll"] < 0, "ece": delta["ece"] < 0}
        n = sum(better.values())
        label = ("reproduced" if better["accuracy"] and n >= 2 else "not reproduced" if n == 0
                 else "partly reproduced")
        labels.append(label)
        parts.append(f"{_row_label(pair, student)}: accuracy {alone['accuracy']:.4f} -> "
                     f"{alone['accuracy'] + delta['accuracy']:.4f}, NLL {alone['nll']:.3f} -> "
                     f"{alone['nll'] + delta['nll']:.3f}, ECE {alone['ece']:.4f} -> {alone['ece'] + delta['ece']:.4f} "
                     f"(mean over {len(kd['accuracy'])} temperatures)")
    if not labels:
        return Verdict(claim, "not yet run", "no recorded students alone and distilled students", profile)
    return Verdict(claim, _combine(labels), "; ".join(parts) + ".", _scale(table, profile))


def _row_label(pair: str, student: str) -> str:
    info = PAIR_INFO[pair]
    return f"{info.teacher_label} -> {info.student_labels[student]}"

# ---------------------------------------------------------------------------------------------------------
# The KL direction at low temperature


def direction_table(table: pd.DataFrame) -> pd.DataFrame:
    """Teacher -> student runs at the temperatures where both KL directions ran: fold means of accuracy,
    agreement, KL and IM, and how many folds collapsed to (about) chance."""
    t = table[(table.role == "distilled") & table.tau.isin(REVERSE_TAUS)]
    if t.empty:
        return pd.DataFrame()
    g = t.groupby(["pair", "student", "tau", "direction"])
    out = g[["accuracy", "agreement", "kl", "im_l1"]].mean()
    out["collapsed"] = g["collapsed"].sum().astype(int).astype(str) + "/" + g.size().astype(str)
    return out.reset_index()


def training_curves(profile: str, store: ResultStore | None = None) -> pd.DataFrame:
    """Per-epoch training loss and training accuracy (against the labels) of the teacher -> student runs at the
    temperatures where both KL directions ran: shows whether a collapsed run ever learned."""
    store = store or ResultStore()
    rows = []
    for pair in PAIRS:
        for rec in store.records(experiment_name(pair)):
            cfg = rec["config"]
            if (cfg["profile"] != profile or cfg["role"] != "distilled" or cfg["tau"] not in REVERSE_TAUS
                    or cfg["data"]["dataset"] != check_pair(pair).default_dataset):
                continue
            for h in rec.get("history", []):
                rows.append({"pair": pair, "model": cfg["model"], "tau": cfg["tau"], "direction": cfg["kd_direction"],
                             "fold": cfg["data"]["fold"], "epoch": h["epoch"], "loss": h["loss"],
                             "train_acc": h["train_acc"]})
    return pd.DataFrame(rows)


def kl_gradients(p_teacher: torch.Tensor, student_logits: torch.Tensor) -> dict[str, float]:
    """Norm of the gradient of KL(P_t||P_s) (forward) and KL(P_s||P_t) (reverse) with respect to the student
    logits, for one example. The forward gradient is P_s - P_t; the reverse one is P_s * (log P_s - log P_t - KL),
    which vanishes with P_s itself on every class the student has (wrongly) ruled out."""
    out = {}
    log_t = torch.log_softmax(p_teacher.double().clamp_min(1e-300).log(), -1)  # renormalised in float64
    for direction in ("forward", "reverse"):
        z = student_logits.detach().double().clone().requires_grad_(True)
        log_s = torch.log_softmax(z, -1)
        if direction == "forward":
            loss = (log_t.exp() * (log_t - log_s)).sum()
        else:
            loss = (log_s.exp() * (log_s - log_t)).sum()
        loss.backward()
        out[direction] = float(z.grad.norm())
    return out
