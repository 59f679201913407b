"""The report side of the invariance-KD chapter (Odagiu et al.): reading the recorded runs of `invariance` and
judging them: the results tables, the learning-rate selection, the figures of the paper's Figure 1, the
testability and fidelity gates, the three verdicts (`chapter_verdicts`), and what the reverse-KL runs showed.

It exists apart from `invariance` so that the experiment (what runs and how) and the reading of its records
(what the report notebook shows) can change independently; it imports the experiment's constants and recipes
from `invariance`, which never imports this module. Nothing here trains: a missing record is "not yet run".

Every verdict uses the shared rules of `kdutils.verdict` (paired 95% t-intervals over folds, "inconclusive at
this scale" when an interval allows either side, "not testable at this scale" when the teacher is not clearly
better than the student, failed runs scored, never dropped). The chapter-specific rules are in the docstrings
of `verdict_transfer`, `verdict_augmentation` and `verdict_generalisation`.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import pandas as pd
import torch

from .. import stats
from ..store import ResultStore
from ..tuning import ROLE_PREFIX
from ..verdict import (FAILED_STATUSES, INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, NOT_YET_RUN, PARTLY,
                       REPRODUCED, Decision, Verdict, beats, gap_fractions, meets_threshold, min_testable_gap,
                       scores_by_key, testable)
from .invariance import (COLLAPSE_FACTOR, DATASETS, K_FOLDS, PAIR_INFO, PAIRS, REVERSE_TAUS, ROLES, TAUS,
                         check_pair, configs, experiment_name, recipe, resolve_dataset, select_lrs, tuned_datasets)

PAPER = {
    "title": "Knowledge Distillation for Teaching Symmetry Invariances",
    "authors": "Patrick Odagiu, Nicole Nobili, Fabian Dionys Schrag, Yves Bicker, Yuhui Ding",
    "venue": "NeurIPS 2024 Workshop on Symmetry and Geometry in Neural Representations (NeurReps), extended "
             "abstract track; also at the ICLR 2024-25 SciForDL workshop on OpenReview",
    "year": 2024,
    "url": "https://openreview.net/forum?id=ZADu3QclDN",
    "code": "https://github.com/Nicole-Nobili/distillinginvariances",
}
# The authors' MNIST numbers (4-seed means printed by their `processing_results.ipynb`; the paper itself shows
# them only as curves): the ResNet -> MLP row of Figure 1. IM there is the L2 norm under their 5-px roll.
PAPER_MNIST = {
    "teacher": {"accuracy": 0.991, "ece": 0.011, "im": 0.0056},
    "student": {"accuracy": 0.970, "ece": 0.033, "im": 0.877},
    "student_aug": {"accuracy": 0.971, "ece": 0.030, "im": 0.058},
    "distilled": {"accuracy": "0.974-0.980 (tau 4-16); about 0.10 at tau 1 (collapse)", "agreement": "0.97-0.98",
                  "im": "0.86-0.89"},
}
TRANSFER_THRESHOLD = 0.25  # claim 1: "distillation closes less than a quarter of the self-vs-teacher gap"
MEASURES = {"im_l1": "IM (L1)", "flip_rate": "flip rate"}
# Worst value of each metric: a failed run (diverged, or at chance) is scored at it in the arm being judged.
WORST = {"im_l1": 2.0, "flip_rate": 1.0}

# ---------------------------------------------------------------------------------------------------------
# Tables


METRICS = ("accuracy", "nll", "ece", "agreement", "kl", "im_l1", "im_l2", "flip_rate", "im_roll_l1", "im_roll_l2",
           "flip_roll", "agreement_tprime", "kl_tprime", "agreement_teacher", "kl_teacher", "val_accuracy",
           "val_nll")
METRIC_LABELS = {"accuracy": "accuracy", "nll": "NLL", "ece": "ECE", "im_l1": "IM (L1)", "im_l2": "IM (L2)",
                 "flip_rate": "flip rate", "agreement": "top-1 agreement", "kl": "KL(P_t||P_s), T=1"}


def _student_lookup(pair: str, profile: str, dataset: str) -> dict[tuple[str, str], str]:
    rec = recipe(pair, profile, dataset)
    return {(net.model, json.dumps(dict(net.kwargs), sort_keys=True, default=list)): name
            for name, net in rec.students.items()}


def current_keys(profile: str, pair: str, dataset: str | None = None,
                 store: ResultStore | None = None) -> set[str] | None:
    """Config keys of the runs the chapter shows for a pair now: the current recipe with the recorded rate
    selection (None while the selection is not recorded). Older records stay on disk but out of the tables."""
    ds = resolve_dataset(pair, dataset)
    lrs = None
    if ds in tuned_datasets(pair):
        sel = select_lrs(profile, pair, dataset=ds, store=store, train=False)
        if sel is None:
            return None
        lrs = {pair: {arm: s.lr for arm, s in sel.items()}}
    return {c.key() for c in configs(profile, (pair,), dataset=ds, lrs=lrs)}


def _empty_table() -> pd.DataFrame:
    return pd.DataFrame(columns=["pair", "dataset", "student", "role", "tau", "direction", "fold", "model", "lr", "key",
                                 *METRICS, "collapsed", "failed", "n_train", "n_test", "wall_time_s", "device",
                                 "commit", "status"])


def results_table(profile: str, pairs: Iterable[str] | None = None, dataset: str | None = None,
                  store: ResultStore | None = None, current_only: bool = True) -> pd.DataFrame:
    """One row per recorded run of `profile` (each pair on its default dataset unless `dataset` is given):
    by default only the current recipe's runs (`current_keys`), never the selection runs; failed runs
    (status "diverged" or "chance") are rows like any other (`failed` is True). `current_only=False`: every
    final run on disk, earlier recipes included (for the record of what those showed)."""
    store = store or ResultStore()
    frames = []
    for pair in (PAIRS if pairs is None else tuple(pairs)):
        ds = resolve_dataset(pair, dataset) if dataset is None or dataset in check_pair(pair).datasets else None
        if ds is None:
            continue
        t = store.table(experiment_name(pair), profile=profile)
        if t.empty:
            continue
        t = t[(t["config.data.dataset"] == ds) & ~t["config.role"].astype(str).str.startswith(ROLE_PREFIX)].copy()
        if current_only and not t.empty:
            keys = current_keys(profile, pair, ds, store)
            t = t[t["key"].isin(keys or set())]
        if t.empty:
            continue
        lookup = _student_lookup(pair, profile, ds)
        kwargs = t["config.model_kwargs"].map(lambda s: json.dumps(json.loads(s), sort_keys=True))
        t["student"] = [lookup.get((m, k), "") if r not in ("teacher", "teacher_prime") else ""
                        for m, k, r in zip(t["config.model"], kwargs, t["config.role"])]
        t["pair"], t["dataset"] = pair, ds
        frames.append(t)
    if not frames:
        return _empty_table()
    t = pd.concat(frames, ignore_index=True)
    kd = t["config.alpha"] > 0
    out = pd.DataFrame({
        "pair": t["pair"], "dataset": t["dataset"], "student": t["student"], "role": t["config.role"],
        "tau": t["config.tau"].where(kd), "direction": t["config.kd_direction"].where(kd, ""),
        "fold": t["config.data.fold"], "model": t["config.model"], "lr": t["config.train.lr"], "key": t["key"],
    })
    for m in METRICS:
        out[m] = pd.to_numeric(t[m], errors="coerce") if m in t else np.nan
    chance = t["dataset"].map(lambda d: 1.0 / DATASETS[d].num_classes)
    out["collapsed"] = out["accuracy"] < COLLAPSE_FACTOR * chance
    for c in ("n_train", "n_test", "wall_time_s", "device", "commit", "status"):
        out[c] = t[c] if c in t else None
    out["failed"] = out["status"].isin(FAILED_STATUSES)
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
                     "lr": cfg["train"]["lr"],
                     **{k: m.get(k) for k in ("accuracy", "nll", "ece", "agreement", "kl", "im_l1", "flip_rate",
                                              "im_roll_l1", "agreement_tprime", "agreement_teacher")},
                     "status": r["status"], "train s": r.get("wall_time_s"),
                     "device": r.get("provenance", {}).get("device")})
    return pd.DataFrame(rows)


def show_point_table(records: list[dict[str, Any]]):
    """`point_table` as the book shows it (readable names, no NaN cells, statuses visible)."""
    from ..present import results_table as present

    t = point_table(records)
    return present(t, {c: c for c in t.columns if c != "status"}, caption="The runs of this point.")


def summary(table: pd.DataFrame, metrics: Iterable[str] = ("accuracy", "nll", "ece", "agreement", "kl", "im_l1",
                                                             "im_l2", "flip_rate", "im_roll_l1")) -> pd.DataFrame:
    """Mean and standard deviation over folds per (pair, student, role, tau, direction); `n` = folds,
    `n_failed` = runs with status "diverged" or "chance" (their metrics, where they have any, are included)."""
    if table.empty:
        return pd.DataFrame()
    keys = ["pair", "student", "role", "tau", "direction"]
    t = table.copy()
    t["tau"] = t["tau"].fillna(0.0)
    metrics = [m for m in metrics if m in t]
    g = t.groupby(keys, dropna=False)
    out = g[metrics].mean().add_suffix("_mean").join(g[metrics].std(ddof=1).add_suffix("_std"))
    out["n"] = g.size()
    out["n_failed"] = g["failed"].sum()
    out["lr"] = g["lr"].first()
    out = out.reset_index()
    out["tau"] = out["tau"].replace(0.0, np.nan)
    return out


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The results table as the chapter shows it: mean ± std over folds, one row per arm, failed runs counted."""
    from ..present import fmt_mean_std

    s = summary(table)
    if s.empty:
        return s
    rows = []
    for _, r in s.iterrows():
        row = {"row": _row_label(r["pair"], r["student"]) if r["student"] else PAIR_INFO[r["pair"]].title,
               "arm": r["role"], "tau": "" if pd.isna(r["tau"]) else f"{r['tau']:g}", "KL dir": r["direction"],
               "lr": f"{r['lr']:g}", "folds": int(r["n"])}
        for m, label in (("accuracy", "acc"), ("nll", "NLL"), ("ece", "ECE"), ("im_l1", "IM L1"),
                         ("flip_rate", "flip"), ("agreement", "agree")):
            mean, std = r.get(f"{m}_mean"), r.get(f"{m}_std")
            row[label] = "—" if mean is None or pd.isna(mean) else fmt_mean_std(mean, None if pd.isna(std) else std)
        row["failed"] = f"{int(r['n_failed'])}/{int(r['n'])}"
        rows.append(row)
    return pd.DataFrame(rows)


def show_results(table: pd.DataFrame, caption: str = ""):
    """`display_table` through `kdutils.present` (no index, long table behind a toggle)."""
    from ..present import results_table as present

    d = display_table(table)
    if d.empty:
        return d
    return present(d, list(d.columns), caption=caption, max_rows=12, status=None)


def selection_table(profile: str, store: ResultStore | None = None) -> pd.DataFrame:
    """Every arm's learning-rate selection: one row per candidate (validation metrics only, never test), the
    chosen one marked. Pairs whose selection is not recorded are absent."""
    rows = []
    for pair in PAIRS:
        sel = select_lrs(profile, pair, store=store, train=False)
        if sel is None:
            continue
        for arm, s in sel.items():
            for r in s.rows:
                rows.append({"pair": pair, "arm": arm, "lr": r["lr"], "epochs": r["epochs"], "status": r["status"],
                             "val accuracy": r.get("val_accuracy"), "val NLL": r.get("val_nll"),
                             "chosen": "✔" if r["chosen"] else ""})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------
# Figures: the paper's Figure 1, one figure per row of it


def figure_rows(profile: str) -> list[tuple[str, str]]:
    """(pair, student) rows in the paper's order: DGCNN -> dsinv, DGCNN -> dsequiv, dsinv -> MLP, ResNet -> MLP."""
    rows = [("dgcnn_deepsets", s) for s in recipe("dgcnn_deepsets", profile).default_students]
    rows += [("deepsets_mlp", "mlp")]
    rows += [("resnet_mlp", s) for s in recipe("resnet_mlp", profile).default_students]
    return rows


FIGURE_METRICS = ("accuracy", "nll", "ece", "im_l1", "flip_rate", "agreement")
_SOLID = [("distilled", "forward", "teacher -> student", "C0", "o", "-"),
          ("distilled_prime", "forward", "teacher' -> student", "C1", "s", "-"),
          ("self", "forward", "self-distillation", "C2", "^", "-"),
          ("self_aug", "forward", "self-distillation from the augmented student", "C3", "v", "-"),
          ("distilled", "reverse", "teacher -> student, reverse KL", "C4", "x", ":")]


def plot_row(table: pd.DataFrame, profile: str, pair: str, student: str,
             metrics: Iterable[str] = FIGURE_METRICS):
    """One row of the paper's Figure 1 as its own figure: a panel per metric against tau; solid lines for the
    KD arms, dashed lines for independently trained models; error bars are one std over folds."""
    from ..present import page_figure, shared_legend

    metrics = tuple(metrics)
    info = PAIR_INFO[pair]
    sym = "trans" if info.symmetry == "translation" else "perm"
    s = summary(table)
    sub = s[(s.pair == pair) & ((s.student == student) | (s.student == ""))] if not s.empty else s
    fig, axes = page_figure(len(metrics), ncols=3, panel_height=2.2)
    for ax, m in zip(axes, metrics):
        if sub.empty or f"{m}_mean" not in sub or sub[f"{m}_mean"].isna().all():
            ax.text(0.5, 0.5, "not yet run", ha="center", va="center", transform=ax.transAxes)
        else:
            _panel(ax, sub, m, sym)
        ax.set_title(METRIC_LABELS.get(m, m), fontsize=10)
        ax.set_xscale("log", base=2)
        ax.set_xticks(TAUS, [f"{t:g}" for t in TAUS])
        ax.set_xlabel("temperature tau", fontsize=9)
        ax.tick_params(labelsize=8)
    shared_legend(fig, axes, ncol=3, fontsize=8)
    return fig


def plot_figure1(table: pd.DataFrame, profile: str, metrics: Iterable[str] = FIGURE_METRICS) -> list:
    """Figure 1 split into one readable figure per row (see `plot_row`)."""
    return [plot_row(table, profile, pair, student, metrics) for pair, student in figure_rows(profile)]


def figure_caption(profile: str, pair: str, student: str) -> str:
    info = PAIR_INFO[pair]
    return (f"{_row_label(pair, student)} ({info.symmetry}, {DATASETS[check_pair(pair).default_dataset].label}), "
            f"profile `{profile}`: each metric against the KD temperature. Solid lines: the KD arms; dotted: "
            "teacher -> student with the reverse KL; dashed: the independently trained teacher, teacher', student "
            "alone and student on transformed data. Mean ± one standard deviation over folds; agreement is with "
            "each run's own teacher.")


def _panel(ax, sub: pd.DataFrame, m: str, sym: str) -> None:
    for role, direction, label, color, marker, ls in _SOLID:
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
# Verdict machinery: per-fold scores of one arm, with failed runs scored


def _num_classes(pair: str) -> int:
    return DATASETS[check_pair(pair).default_dataset].num_classes


def failed_value(metric: str, pair: str) -> float:
    """The score of a failed run (status "diverged" or "chance") in `metric`: chance-level accuracy and
    agreement, the NLL of a uniform guess, the largest ECE a guess can have, the worst IM and flip rate."""
    c = _num_classes(pair)
    values = {"accuracy": 1.0 / c, "agreement": 1.0 / c, "agreement_teacher": 1.0 / c, "val_accuracy": 1.0 / c,
              "nll": math.log(c), "ece": 1.0 - 1.0 / c, **WORST}
    if metric not in values:
        raise ValueError(f"no failed-run score for metric {metric!r}; known: {', '.join(values)}")
    return values[metric]


def _rows(table: pd.DataFrame, pair: str, student: str, role: str, tau: float | None = None,
          direction: str | None = None) -> pd.DataFrame:
    t = table[(table.pair == pair) & (table.role == role)]
    if role not in ("teacher", "teacher_prime"):
        t = t[t.student == student]
    if tau is not None:
        t = t[t.tau == tau]
    if direction is not None:
        t = t[t.direction == direction]
    return t


@dataclass(frozen=True)
class Scores:
    """Per-fold scores of one arm in one metric, and how many of its runs failed."""

    values: dict
    failed: int

    @property
    def n(self) -> int:
        return len(self.values)


def arm_scores(table: pd.DataFrame, pair: str, student: str, role: str, metric: str, tau: float | None = None,
               direction: str | None = None, failed: float | None = None) -> Scores:
    """Per-fold values of `metric` for one arm; failed runs are scored at `failed` (default `failed_value`).
    A finished run without the metric (an older record) leaves the arm without that score: empty Scores."""
    t = _rows(table, pair, student, role, tau, direction)
    if t.empty or metric not in t:
        return Scores({}, 0)
    score = failed_value(metric, pair) if failed is None else failed
    try:
        values, n_failed = scores_by_key(t[["fold", metric, "status"]], "fold", metric, score)
    except ValueError:
        return Scores({}, 0)
    return Scores({int(k): v for k, v in values.items()}, n_failed)


def _n_test(table: pd.DataFrame, pair: str) -> int:
    n = table.loc[table.pair == pair, "n_test"].dropna()
    return int(n.max()) if not n.empty else 0


def testability(table: pd.DataFrame, pair: str, student: str) -> tuple[Decision, stats.Interval, float]:
    """Is the teacher clearly better than the student alone (`kdutils.verdict.testable`)? The gap is the
    paired accuracy difference teacher - student over folds (failed runs at chance); the minimum testable gap
    is two binomial standard errors of the student's test error."""
    teacher = arm_scores(table, pair, student, "teacher", "accuracy")
    alone = arm_scores(table, pair, student, "student", "accuracy")
    gap = stats.paired_difference(teacher.values, alone.values)
    n_test = _n_test(table, pair)
    if not alone.values or n_test < 1:
        return Decision(NOT_TESTABLE, "no recorded teacher and student alone"), gap, math.nan
    err = 1.0 - float(np.mean(list(alone.values.values())))
    min_gap = min_testable_gap(min(max(err, 0.0), 1.0), n_test)
    return testable(gap, min_gap), gap, min_gap


def testability_table(table: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Per row of Figure 1: teacher and student accuracy, the paired gap with its interval, the minimum
    testable gap and the decision."""
    rows = []
    for pair, student in figure_rows(profile):
        d, gap, min_gap = testability(table, pair, student)
        t = arm_scores(table, pair, student, "teacher", "accuracy")
        a = arm_scores(table, pair, student, "student", "accuracy")
        if not t.values and not a.values:
            continue
        rows.append({"row": _row_label(pair, student),
                     "teacher acc": float(np.mean(list(t.values.values()))) if t.values else math.nan,
                     "student acc": float(np.mean(list(a.values.values()))) if a.values else math.nan,
                     "gap (teacher - student)": gap.describe(digits=2, scale=100, unit="pts"),
                     "min testable gap": f"{min_gap * 100:.2f} pts" if math.isfinite(min_gap) else "—",
                     "testable": "yes" if d.label == REPRODUCED else "no: " + d.reason})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------
# Claim 1: no invariance transfer, with the fidelity gate and two invariance measures


def fidelity_gate(table: pd.DataFrame, pair: str, student: str, tau: float) -> tuple[Decision, stats.Interval]:
    """Does the student distilled at `tau` agree with its teacher clearly more than the student alone does?
    Paired interval over folds of agreement(distilled, teacher) - agreement(student alone, teacher); failed
    runs at chance agreement. REPRODUCED means "passes"."""
    kd = arm_scores(table, pair, student, "distilled", "agreement", tau, "forward")
    alone = arm_scores(table, pair, student, "student", "agreement_teacher")
    diff = stats.paired_difference(kd.values, alone.values)
    return beats(diff, "greater"), diff


def _gap_closed(table: pd.DataFrame, pair: str, student: str, tau: float, measure: str) -> tuple[dict, int]:
    """Per fold, g = (M_self - M_distilled) / (M_self - M_teacher) for measure M (IM or flip rate). A failed
    distilled run counts as "nothing transferred" (g = 0, it is not evidence of transfer); a failed
    self-distilled run is replaced by the student alone (the self arm's own teacher)."""
    nan = math.nan
    teacher = arm_scores(table, pair, student, "teacher", measure, failed=nan).values
    self_ = arm_scores(table, pair, student, "self", measure, tau, "forward", failed=nan).values
    alone = arm_scores(table, pair, student, "student", measure, failed=nan).values
    kd_scores = arm_scores(table, pair, student, "distilled", measure, tau, "forward", failed=nan)
    ref = {k: (v if not math.isnan(v) else alone.get(k, nan)) for k, v in self_.items()}
    kd = {k: (v if not math.isnan(v) else ref.get(k, nan)) for k, v in kd_scores.values.items()}
    keep = {k for k in set(ref) & set(kd) & set(teacher)
            if not any(math.isnan(x) for x in (ref[k], kd[k], teacher[k]))}
    g = gap_fractions({k: ref[k] for k in keep}, {k: kd[k] for k in keep}, {k: teacher[k] for k in keep})
    return g, kd_scores.failed


def transfer_table(table: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Claim 1 in detail: per row and temperature, the fidelity gate and the fraction of the self-vs-teacher gap
    that distillation closes in IM and in flip rate, each with its interval and decision."""
    rows = []
    for pair, student in figure_rows(profile):
        for tau in TAUS:
            if _rows(table, pair, student, "distilled", tau, "forward").empty:
                continue
            gate, diff = fidelity_gate(table, pair, student, tau)
            row = {"row": _row_label(pair, student), "tau": tau,
                   "agreement gain over alone": diff.describe(digits=1, scale=100, unit="pts"),
                   "fidelity gate": "passes" if gate.label == REPRODUCED else "fails"}
            labels = []
            for m, name in MEASURES.items():
                g, failed = _gap_closed(table, pair, student, tau, m)
                iv = stats.t_interval(list(g.values()))
                d = meets_threshold(iv, TRANSFER_THRESHOLD, "less")
                labels.append(d.label)
                row[f"gap closed ({name})"] = iv.describe(digits=1, scale=100, unit="%")
                row[f"decision ({name})"] = d.label
                row[f"_g_{m}"] = iv.mean
            row["failed KD runs"] = failed
            row["label"] = (INCONCLUSIVE if gate.label != REPRODUCED else
                            labels[0] if labels[0] == labels[1] else INCONCLUSIVE)
            rows.append(row)
    return pd.DataFrame(rows)


def _combine(labels: list[str]) -> str:
    """Rows -> claim. All rows alike: that label; any row reproduced (or partly) beside others: partly;
    otherwise not reproduced if a row says so; inconclusive if nothing is conclusive; not testable if no row is."""
    if not labels:
        return NOT_YET_RUN
    if all(lb == labels[0] for lb in labels):
        return labels[0]
    if any(lb in (REPRODUCED, PARTLY) for lb in labels):
        return PARTLY
    if NOT_REPRODUCED in labels:
        return NOT_REPRODUCED
    if all(lb == NOT_TESTABLE for lb in labels if lb != NOT_YET_RUN):
        return NOT_TESTABLE
    return INCONCLUSIVE


def _scale(table: pd.DataFrame, profile: str) -> str:
    from ..present import short_device

    devices = ", ".join(sorted({short_device(d) for d in table["device"].dropna()})) or "unknown device"
    folds = sorted(int(f) for f in set(table["fold"].dropna()))
    n_train = sorted(int(n) for n in set(table["n_train"].dropna()))
    n_test = sorted(int(n) for n in set(table["n_test"].dropna()))
    return (f"profile `{profile}`, MNIST and set-MNIST, folds {folds} of {K_FOLDS}, "
            f"{'/'.join(map(str, n_train))} training and {'/'.join(map(str, n_test))} test examples per run, "
            f"on {devices}")


def _not_yet(claim: str, profile: str) -> Verdict:
    return Verdict(claim, NOT_YET_RUN, "no recorded runs of the current recipe for this profile (run "
                   f"`python -m kdutils run invariance --profile {profile}`)", f"profile `{profile}`")


CLAIMS = {
    "transfer": "KD does not transfer the teacher's invariance: the distilled student is about as non-invariant "
                "as a self-distilled one, at every temperature, even at high fidelity.",
    "augmentation": "Training the student on transformed data gives the best invariance; KD adds nothing beyond "
                    "augmentation.",
    "generalisation": "KD still improves the student's generalisation (accuracy, NLL, ECE).",
}


def verdict_transfer(table: pd.DataFrame, profile: str) -> Verdict:
    """Claim 1. Per row of Figure 1: (a) the row must be testable (`testability`); (b) per temperature, the
    fidelity gate (`fidelity_gate`) must pass, else that temperature is inconclusive (a student that did not
    learn its teacher cannot show whether the invariance transfers); (c) per gated temperature, the fraction g
    of the self-vs-teacher gap that distillation closes (`_gap_closed`), per fold, in IM and in flip rate:
    "reproduced" if the whole 95% interval of g lies below 0.25, "not reproduced" if it lies above, otherwise
    inconclusive; the two measures must agree, else inconclusive. A row is "not reproduced" if any gated
    temperature is, "reproduced" if every gated temperature is (and at least one passed the gate), otherwise
    inconclusive. Rows combine by `_combine`."""
    claim = CLAIMS["transfer"]
    tt = transfer_table(table, profile)
    if tt.empty:
        return _not_yet(claim, profile)
    labels, parts, effects = [], [], []
    for pair, student in figure_rows(profile):
        rows = tt[tt.row == _row_label(pair, student)]
        if rows.empty:
            continue
        test, gap, _ = testability(table, pair, student)
        name = _row_label(pair, student)
        if test.label != REPRODUCED:
            labels.append(NOT_TESTABLE)
            parts.append(f"{name}: not testable ({test.reason})")
            continue
        gated = rows[rows["fidelity gate"] == "passes"]
        if gated.empty:
            label = INCONCLUSIVE
            why = "no temperature passes the fidelity gate (the KD student never agrees with its teacher " \
                  "clearly more than the student alone does)"
        elif (gated.label == NOT_REPRODUCED).any():
            label, why = NOT_REPRODUCED, "distillation closes more than a quarter of the gap"
        elif (gated.label == REPRODUCED).all():
            label, why = REPRODUCED, "distillation closes less than a quarter of the gap in IM and flip rate"
        else:
            label, why = INCONCLUSIVE, "the intervals of the gap closed include 25% (or the measures disagree)"
        labels.append(label)
        failed = int(rows["failed KD runs"].sum())
        taus = ", ".join(f"{t:g}" for t in gated.tau) or "none"
        best = rows.loc[rows["_g_im_l1"].fillna(-math.inf).idxmax()]
        parts.append(f"{name}: {label} ({why}); fidelity gate passed at tau {taus}; largest IM gap closed at "
                     f"tau={best.tau:g}: {best['gap closed (IM (L1))']} (flip rate: {best['gap closed (flip rate)']})"
                     + (f"; {failed} failed KD run(s) counted" if failed else ""))
        effects.append(f"{name}: {best['gap closed (IM (L1))']} of the IM gap at tau={best.tau:g}")
    return Verdict(claim, _combine(labels), "; ".join(parts) + ".", _scale(table, profile), "; ".join(effects))


def augmentation_table(table: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Claim 2 in detail: per row and measure, the augmented student against the most invariant KD student
    (teacher or teacher' -> student, any temperature or KL direction), paired over folds."""
    rows = []
    for pair, student in figure_rows(profile):
        aug_rows = _rows(table, pair, student, "student_aug")
        if aug_rows.empty:
            continue
        for m, name in MEASURES.items():
            aug = arm_scores(table, pair, student, "student_aug", m)
            kd_arms = {}
            for role in ("distilled", "distilled_prime"):
                for (tau, direction), _ in _rows(table, pair, student, role).groupby(["tau", "direction"]):
                    s = arm_scores(table, pair, student, role, m, tau, direction)
                    if s.values:
                        kd_arms[(role, tau, direction)] = s
            if not kd_arms or not aug.values:
                continue
            best = min(kd_arms, key=lambda k: np.mean(list(kd_arms[k].values.values())))
            diff = stats.paired_difference(kd_arms[best].values, aug.values)
            d = beats(diff, "greater")
            rows.append({"row": _row_label(pair, student), "measure": name,
                         "augmented student": float(np.mean(list(aug.values.values()))),
                         "most invariant KD student": float(np.mean(list(kd_arms[best].values.values()))),
                         "KD arm": f"{best[0]}, tau={best[1]:g}, {best[2]}",
                         "KD - augmented": diff.describe(digits=3), "decision": d.label,
                         "failed augmented runs": aug.failed})
    return pd.DataFrame(rows)


def verdict_augmentation(table: pd.DataFrame, profile: str) -> Verdict:
    """Claim 2. Per testable row and per measure (IM, flip rate): the paired difference (most invariant KD
    student - augmented student) over folds, where the most invariant KD student is the teacher or teacher'
    arm (any tau, either KL direction) with the lowest mean. "Reproduced" if the interval lies above 0 (the
    augmented student is more invariant), "not reproduced" if below, else inconclusive; the two measures must
    agree. A failed run (an augmented MLP that never learns is "chance") is scored at the worst value (IM 2,
    flip rate 1): a near-constant predictor is trivially invariant, and its low IM must not count as success."""
    claim = CLAIMS["augmentation"]
    at = augmentation_table(table, profile)
    if at.empty:
        return _not_yet(claim, profile)
    labels, parts, effects = [], [], []
    for pair, student in figure_rows(profile):
        name = _row_label(pair, student)
        rows = at[at.row == name]
        if rows.empty:
            continue
        test, _, _ = testability(table, pair, student)
        if test.label != REPRODUCED:
            labels.append(NOT_TESTABLE)
            parts.append(f"{name}: not testable ({test.reason})")
            continue
        ds = list(rows.decision)
        label = ds[0] if all(x == ds[0] for x in ds) else INCONCLUSIVE
        labels.append(label)
        im = rows[rows.measure == MEASURES["im_l1"]].iloc[0]
        fr = rows[rows.measure == MEASURES["flip_rate"]]
        failed = int(im["failed augmented runs"])
        parts.append(f"{name}: {label}; IM augmented {im['augmented student']:.3g} vs best KD "
                     f"{im['most invariant KD student']:.3g} ({im['KD arm']}), KD - augmented {im['KD - augmented']}"
                     + (f"; flip rate KD - augmented {fr.iloc[0]['KD - augmented']}" if not fr.empty else "")
                     + (f"; {failed} augmented run(s) failed and are scored at the worst IM" if failed else ""))
        effects.append(f"{name}: IM KD - augmented {im['KD - augmented']}")
    return Verdict(claim, _combine(labels), "; ".join(parts) + ".", _scale(table, profile), "; ".join(effects))


def chosen_tau(table: pd.DataFrame, pair: str, student: str) -> float | None:
    """The temperature of the teacher -> student arm with the best mean validation accuracy (the held-out
    fold, never the test set): claim 3 judges that arm."""
    best, best_acc = None, -math.inf
    for tau in TAUS:
        s = arm_scores(table, pair, student, "distilled", "val_accuracy", tau, "forward")
        if s.values and np.mean(list(s.values.values())) > best_acc:
            best, best_acc = tau, float(np.mean(list(s.values.values())))
    return best


def generalisation_table(table: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Claim 3 in detail: per row, the teacher -> student arm at the validation-chosen tau against the student
    alone, paired over folds, in accuracy, NLL and ECE."""
    rows = []
    for pair, student in figure_rows(profile):
        tau = chosen_tau(table, pair, student)
        if tau is None:
            continue
        row = {"row": _row_label(pair, student), "tau (chosen on validation)": tau}
        for m, claimed in (("accuracy", "greater"), ("nll", "less"), ("ece", "less")):
            kd = arm_scores(table, pair, student, "distilled", m, tau, "forward")
            alone = arm_scores(table, pair, student, "student", m)
            diff = stats.paired_difference(kd.values, alone.values)
            row[f"{m} KD - alone"] = diff.describe(digits=2 if m == "accuracy" else 3,
                                                   scale=100 if m == "accuracy" else 1,
                                                   unit="pts" if m == "accuracy" else "")
            row[f"{m} decision"] = beats(diff, claimed).label
            row[f"{m} failed"] = kd.failed + alone.failed
        rows.append(row)
    return pd.DataFrame(rows)


def verdict_generalisation(table: pd.DataFrame, profile: str) -> Verdict:
    """Claim 3. Per testable row, the teacher -> student arm at the temperature with the best validation
    accuracy against the student alone, paired over folds (failed runs at chance accuracy, uniform NLL, worst
    ECE): "reproduced" if accuracy rises (interval above 0) and NLL or ECE falls (interval below 0); "partly"
    if only accuracy does; "not reproduced" if accuracy falls (interval below 0); otherwise inconclusive."""
    claim = CLAIMS["generalisation"]
    gt = generalisation_table(table, profile)
    if gt.empty:
        return _not_yet(claim, profile)
    labels, parts, effects = [], [], []
    for pair, student in figure_rows(profile):
        name = _row_label(pair, student)
        rows = gt[gt.row == name]
        if rows.empty:
            continue
        r = rows.iloc[0]
        test, _, _ = testability(table, pair, student)
        if test.label != REPRODUCED:
            labels.append(NOT_TESTABLE)
            parts.append(f"{name}: not testable ({test.reason})")
            continue
        acc, nll_d, ece_d = r["accuracy decision"], r["nll decision"], r["ece decision"]
        if acc == REPRODUCED:
            label = REPRODUCED if REPRODUCED in (nll_d, ece_d) else PARTLY
        elif acc == NOT_REPRODUCED:
            label = NOT_REPRODUCED
        else:
            label = INCONCLUSIVE
        labels.append(label)
        failed = int(r["accuracy failed"])
        parts.append(f"{name}: {label} at tau={r['tau (chosen on validation)']:g}; accuracy KD - alone "
                     f"{r['accuracy KD - alone']}, NLL {r['nll KD - alone']}, ECE {r['ece KD - alone']}"
                     + (f"; {failed} failed run(s) counted" if failed else ""))
        effects.append(f"{name}: accuracy {r['accuracy KD - alone']}")
    return Verdict(claim, _combine(labels), "; ".join(parts) + ".", _scale(table, profile), "; ".join(effects))


def chapter_verdicts(profile: str, store: ResultStore | None = None) -> list[Verdict]:
    """Every verdict of the chapter, computed from the recorded runs of `profile` (never trains; a profile
    without records gives "not yet run")."""
    table = results_table(profile, store=store)
    return [verdict_transfer(table, profile), verdict_augmentation(table, profile),
            verdict_generalisation(table, profile)]


def _row_label(pair: str, student: str) -> str:
    info = PAIR_INFO[pair]
    return f"{info.teacher_label} -> {info.student_labels[student]}"

# ---------------------------------------------------------------------------------------------------------
# The KL direction: what the reverse-KL runs showed


def direction_table(table: pd.DataFrame) -> pd.DataFrame:
    """Teacher -> student runs at the temperatures where both KL directions ran: fold means of accuracy,
    agreement, KL and IM, how many runs failed (diverged or at chance) and how many are below twice chance."""
    t = table[(table.role == "distilled") & table.tau.isin(REVERSE_TAUS)]
    if t.empty:
        return pd.DataFrame()
    g = t.groupby(["pair", "student", "tau", "direction"])
    out = g[["accuracy", "agreement", "kl", "im_l1"]].mean()
    out["failed"] = g["failed"].sum().astype(int).astype(str) + "/" + g.size().astype(str)
    out["below 2x chance"] = g["collapsed"].sum().astype(int).astype(str) + "/" + g.size().astype(str)
    return out.reset_index()


def reverse_kl_account(profile: str, store: ResultStore | None = None) -> dict[str, Any]:
    """Counted from the records (every recipe ever recorded at `profile`, current and earlier): how many
    reverse-KL teacher -> student runs there are, how many failed or sat below twice chance, and the paired
    accuracy difference reverse - forward per (row, tau) over folds."""
    everything = results_table(profile, store=store, current_only=False)
    current = results_table(profile, store=store)
    out: dict[str, Any] = {"rows": []}
    for name, t in (("all", everything), ("current", current)):
        rev = t[(t.role == "distilled") & (t.direction == "reverse")]
        out[name] = {"runs": int(len(rev)), "failed": int(rev.failed.sum()), "collapsed": int(rev.collapsed.sum()),
                     "by_tau": {float(k): int(v) for k, v in rev.groupby("tau").size().items()}}
    for pair, student in figure_rows(profile):
        for tau in REVERSE_TAUS:
            fwd = arm_scores(current, pair, student, "distilled", "accuracy", tau, "forward")
            rev = arm_scores(current, pair, student, "distilled", "accuracy", tau, "reverse")
            if not rev.values:
                continue
            diff = stats.paired_difference(rev.values, fwd.values)
            out["rows"].append({"row": _row_label(pair, student), "tau": tau,
                                "accuracy reverse - forward": diff.describe(digits=2, scale=100, unit="pts"),
                                "decision (reverse worse)": beats(diff, "less").label,
                                "failed reverse runs": rev.failed})
    return out


def reverse_kl_markdown(profile: str, store: ResultStore | None = None) -> str:
    """The reverse-KL finding as prose, every number from `reverse_kl_account`."""
    a = reverse_kl_account(profile, store)
    if a["all"]["runs"] == 0:
        return "No reverse-KL run is recorded at this profile yet."
    cur, allr = a["current"], a["all"]
    worse = sum(r["decision (reverse worse)"] == REPRODUCED for r in a["rows"])
    better = sum(r["decision (reverse worse)"] == NOT_REPRODUCED for r in a["rows"])
    text = (f"At profile `{profile}` the records hold {allr['runs']} reverse-KL teacher -> student runs "
            f"(current and earlier recipes); {allr['failed']} of them failed (diverged or at chance) and "
            f"{allr['collapsed']} ended below twice chance accuracy. ")
    if cur["runs"]:
        text += (f"Of the current recipe's {cur['runs']} reverse-KL runs, {cur['failed']} failed. Against the "
                 f"forward KL at the same temperature (paired over folds), the reverse KL's accuracy is clearly "
                 f"lower in {worse} of {len(a['rows'])} (row, tau) comparisons and clearly higher in {better}; "
                 "the rest are within noise. ")
    text += ("So the collapse of the authors' tau = 1 students to chance is **not** reproduced by the reverse KL "
             "alone in our runs." if allr["failed"] == 0 and allr["collapsed"] == 0 else
             "Some reverse-KL runs did fail: see the table.")
    return text


def training_curves(profile: str, store: ResultStore | None = None) -> pd.DataFrame:
    """Per-epoch training loss and training accuracy (against the labels) of the current teacher -> student
    runs at the temperatures where both KL directions ran: shows whether a failed run ever learned."""
    store = store or ResultStore()
    rows = []
    for pair in PAIRS:
        keys = current_keys(profile, pair, store=store) or set()
        for rec in store.records(experiment_name(pair)):
            cfg = rec["config"]
            if (rec.get("key") not in keys or cfg["role"] != "distilled" or cfg["tau"] not in REVERSE_TAUS):
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

# ---------------------------------------------------------------------------------------------------------
# Prose and small tables for the notebooks: every number comes from the records


def summary_markdown(profile: str, store: ResultStore | None = None) -> str:
    """The chapter's one-paragraph summary of what we found, from the records of `profile`."""
    table = results_table(profile, store=store)
    if table.empty:
        return (f"**Our reproduction** at profile `{profile}`: not yet run (no records of the current recipe). "
                f"Run `python -m kdutils run invariance --profile {profile}` to produce them.")
    verdicts = [verdict_transfer(table, profile), verdict_augmentation(table, profile),
                verdict_generalisation(table, profile)]
    failed = int(table.failed.sum())
    tests = testability_table(table, profile)
    testable_rows = int((tests["testable"] == "yes").sum()) if not tests.empty else 0
    names = ("KD does not transfer the invariance", "augmentation is what works", "KD improves generalisation")
    claims = "; ".join(f"*{n}*: **{v.label}**" for n, v in zip(names, verdicts))
    return (f"**Our reproduction** ({_scale(table, profile)}; {len(table)} runs of the current recipe, "
            f"{failed} of them failed and counted as such; every arm's learning rate chosen on a validation "
            f"split): {testable_rows} of {len(tests)} teacher -> student rows have a teacher clearly better "
            f"than the student alone. Claims: {claims}. Each verdict below gives its paired 95% intervals over "
            "folds.")


def invariance_check(records: list[dict[str, Any]], pair: str) -> str:
    """The structural check a point notebook states: the invariant teachers' IM is float rounding next to the
    students' (a sentence that says whether it holds, with the numbers)."""
    teachers = [r["metrics"].get("im_l1") for r in records if r["config"]["role"] in ("teacher", "teacher_prime")]
    students = [r["metrics"].get("im_l1") for r in records if r["config"]["role"] == "student"]
    teachers = [x for x in teachers if x is not None]
    students = [x for x in students if x is not None]
    if not teachers or not students:
        return "Not yet run: no teacher and student records to compare."
    ok = max(teachers) < 0.01 * min(students)
    what = {"resnet_mlp": "APS-ResNet teachers under circular shifts", "dgcnn_deepsets": "DGCNN teachers under "
            "translation", "deepsets_mlp": "DeepSets teachers under permutations"}[pair]
    return (f"{what}: largest IM {max(teachers):.4e}, against the students' smallest {min(students):.4e}; the "
            f"teachers' IM is {'below' if ok else 'NOT below'} 1% of the students' "
            f"({'as their architecture guarantees' if ok else 'check the run'}).")


def paper_beside_ours(table: pd.DataFrame) -> pd.DataFrame:
    """The ResNet -> MLP row beside the authors' published MNIST numbers: accuracy, ECE and IM. The authors'
    IM is the L2 norm under their 5-px roll (our `im_roll_l2`); our headline IM (L1, circular shifts) is
    shown too."""
    rows = []
    arms = (("teacher", None, "APS-ResNet18 teacher"), ("student", None, "MLP alone"),
            ("student_aug", None, "MLP on shifted images"), ("distilled", (4.0, 8.0, 16.0), "distilled, tau 4-16"))
    for role, taus, label in arms:
        t = table[(table.pair == "resnet_mlp") & (table.role == role)]
        if taus is not None:
            t = t[t.tau.isin(taus) & (t.direction == "forward")]
        if t.empty:
            continue
        paper = PAPER_MNIST[role]
        rows.append({"model": label, "accuracy": t.accuracy.mean(), "accuracy (paper)": paper["accuracy"],
                     "ECE": t.ece.mean(), "ECE (paper)": paper.get("ece", "—"),
                     "IM roll L2": t.im_roll_l2.mean() if "im_roll_l2" in t else math.nan,
                     "IM roll L2 (paper)": paper["im"], "IM L1 (ours, circular)": t.im_l1.mean(),
                     "flip rate": t.flip_rate.mean(), "runs": len(t), "failed": int(t.failed.sum())})
    return pd.DataFrame(rows)


def previous_recipe_markdown(profile: str, store: ResultStore | None = None) -> str:
    """What the earlier recipe's records (on disk, out of the tables) gave the teachers and students alone,
    beside the current recipe: why the set-MNIST teachers were strengthened."""
    everything = results_table(profile, store=store, current_only=False)
    current = results_table(profile, store=store)
    if everything.empty:
        return ""
    old = everything[~everything.key.isin(set(current.key))]
    lines = []
    for pair in PAIRS:
        o = old[(old.pair == pair) & (old.role == "teacher")]
        c = current[(current.pair == pair) & (current.role == "teacher")]
        if o.empty:
            continue
        now = (f"{c.accuracy.mean():.3f} ({int(c.n_train.max())} examples, {len(c)} fold{'s' * (len(c) != 1)})"
               if not c.empty
               else "not yet run")
        lines.append(f"- {PAIR_INFO[pair].title}: teacher accuracy {o.accuracy.mean():.3f} with the earlier recipe "
                     f"({int(o.n_train.max())} training examples per run, {len(o)} folds), {now} now.")
    return "\n".join(lines)


def selection_markdown(profile: str, store: ResultStore | None = None) -> str:
    """Where the selected rates fall in the grid, from the recorded selections: a rate at the grid's edge means
    the best rate may lie beyond it."""
    from .invariance import LR_GRID

    sel = selection_table(profile, store)
    if sel.empty:
        return "No selection is recorded at this profile yet."
    chosen = sel[sel.chosen == "✔"]
    grid = LR_GRID[profile]
    top, bottom = int((chosen.lr == max(grid)).sum()), int((chosen.lr == min(grid)).sum())
    failed = int((sel.status != "ok").sum())
    text = (f"{len(chosen)} arms were selected from {len(sel)} candidates ({failed} of them failed). "
            f"{top} arms chose the largest rate of the grid ({max(grid):g}) and {bottom} the smallest "
            f"({min(grid):g}).")
    if top:
        text += (" A rate at the top edge says the best rate may lie above the grid; the selection runs are also "
                 "shorter than the final runs, and short runs favour larger rates, so these arms may train at "
                 "a rate somewhat too high for their full length.")
    return text
