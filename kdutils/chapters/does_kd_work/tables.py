"""Stanton et al.: the recorded runs as tables (students, baselines, teachers), the per-seed scores the claims
compare, and the scale sentence. Read from the records of the active recipe version only (nothing here trains).
Failed runs (diverged or at chance) are scored at chance level (accuracy and agreement 1/10, KL log(10)), never
dropped. The plain model of student seed i is teacher-recipe member i + 1 (never member 0, the teacher).
"""
from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from kdutils.chapters.does_kd_work import matched
from kdutils.chapters.does_kd_work import plan as dkw
if TYPE_CHECKING:  # the type checker reads pandas' own names; at run time pandas is imported on first use
    import pandas as pd
else:
    from kdutils.lazy import pandas as pd
from kdutils.report import present
from kdutils.store.store import ResultStore
from kdutils.verdicts import stats
from kdutils.verdicts.verdict import scores_by_key

PAPER = {"title": "Does Knowledge Distillation Really Work?",
         "authors": "Samuel Stanton, Pavel Izmailov, Polina Kirichenko, Alexander A. Alemi, Andrew Gordon Wilson",
         "venue": "NeurIPS 2021", "arxiv": "2106.05945", "url": "https://arxiv.org/abs/2106.05945"}
NUM_CLASSES = 10
CHANCE_ACC = 1.0 / NUM_CLASSES
CHANCE_KL = math.log(NUM_CLASSES)
DATASET_NAMES = {"fashion_mnist": "Fashion-MNIST", "mnist": "MNIST", "cifar100": "CIFAR-100"}
POLICY_NAMES = {"none": "none", "crop_flip": "crop/flip", "mixup_t1": "MixUp τ=1", "mixup_t4": "MixUp τ=4",
                "noise": "Gaussian noise", "ood": "crop/flip + OOD (MNIST)"}
# ------------------------------------------------------------------------------------------------- records
def _ms(values: pd.Series, digits: int = 1) -> str:
    """"mean ± std" with one decimal unless told (std over seeds; none with one value)."""
    return present.fmt_series_mean_std(values, digits)


def _spec_row(claim: int, spec: dkw.DistillSpec, rec: dict[str, Any]) -> dict[str, Any]:
    row = {"claim": claim, "key": spec.key(), "seed": spec.seed, "policy": spec.policy, "k": spec.ensemble_size,
           "r": 1.0 if spec.r is None else spec.r, "fraction": spec.distill_fraction,
           "distill_data": spec.distill_data, "n_unlabelled": spec.n_unlabelled, "lr": spec.lr, "lr_used": rec.get("lr_used"),
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
def baseline_table(profile: str, dataset: str = "fashion_mnist", store: ResultStore | None = None) -> pd.DataFrame:
    """One row per recorded baseline of the current plan (plain model vs teacher; agreement at initialisation
    and the r = 0 ceiling), with ``kind`` ("plain", "init") and ``plain_member``; empty before v2."""
    store = store or ResultStore()
    rows = []
    for spec in dkw.plan(profile, dataset, store).baselines():
        rec = store.get(spec)
        if rec is not None:
            rows.append({**_spec_row(spec.claim, spec, rec), "kind": spec.evaluate, "plain_member": spec.plain_member})
    return pd.DataFrame(rows)


def version_of(profile: str, store: ResultStore | None = None) -> str:
    """The recipe version the page shows (`plan.active_version`)."""
    return dkw.active_version(profile, store or ResultStore())


@_memo
def teacher_table(profile: str, dataset: str = "fashion_mnist", store: ResultStore | None = None) -> pd.DataFrame:
    """The recorded teacher-recipe runs at the chosen rate: members 0.. (member i+1 is plain model i) and halves."""
    store = store or ResultStore()
    p = dkw.plan(profile, dataset, store)
    if p.teacher is None:
        return pd.DataFrame()
    rows = []
    for cfg in dkw.teacher_configs(profile, dataset, p.teacher_lr, p.version):
        rec = store.get(cfg)
        if rec is None:
            continue
        rows.append({"member": cfg.seed, "half": None if cfg.data.fold is None else 1 - cfg.data.fold,
                     "status": rec["status"], "n_test": rec.get("n_test"), "n_train": rec.get("n_train"),
                     "wall_time_s": rec.get("wall_time_s"), "device": rec.get("provenance", {}).get("device"),
                     "lr": cfg.train.lr, "epochs": cfg.train.epochs,
                     "final_train_acc": (rec.get("history") or [{}])[-1].get("train_acc"), **rec.get("metrics", {})})
    return pd.DataFrame(rows)


def plain_scores(profile: str, dataset: str = "fashion_mnist", store: ResultStore | None = None,
                 metric: str = "accuracy") -> dict[int, float]:
    """Plain model i's score (teacher-recipe member i + 1), keyed by student seed i; failed at chance."""
    t = teacher_table(profile, dataset, store)
    seeds = dkw.recipe(profile, dataset, version_of(profile, store)).seeds
    if t.empty:
        return {}
    full = t[t["half"].isna()].set_index("member")
    out = {}
    for i, s in enumerate(seeds):
        if 1 + i in full.index:
            row = full.loc[1 + i]
            out[s] = CHANCE_ACC if row["status"] != "ok" else float(row[metric])
    return out


def matched_scores(profile: str, dataset: str = "fashion_mnist", store: ResultStore | None = None,
                   metric: str = "accuracy") -> dict[int, float]:
    """The plain models at the students' budget (`matched`), keyed by student seed; failed at chance; empty until
    all are recorded."""
    store = store or ResultStore()
    version = version_of(profile, store)
    recs = matched.records(profile, dataset, store, version)
    if recs is None:
        return {}
    seeds = dkw.recipe(profile, dataset, version).seeds
    return {s: CHANCE_ACC if r["status"] != "ok" else float(r["metrics"][metric]) for s, r in zip(seeds, recs)}


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


def scale(profile: str, dataset: str = "fashion_mnist", df: pd.DataFrame | None = None,
          version: str | None = None) -> str:
    r = dkw.recipe(profile, dataset, version)
    devices = ""
    if df is not None and "device" in df and df["device"].notna().any():
        devices = ", ".join(sorted({present.short_device(d) for d in df["device"].dropna()}))
    model = r.student_model if r.widths is None else f"{r.student_model} (widths {'-'.join(map(str, r.widths))})"
    train = "all" if r.n_train is None else f"{r.n_train:,}"
    test = "all" if r.n_test is None else f"{r.n_test:,}"
    return (f"profile `{profile}` (recipe {r.version}), {DATASET_NAMES[dataset]} ({train} training, {test} test images), {model}, "
            f"teachers {r.teacher_epochs} / students {r.student_epochs} epochs, {devices or 'device unknown'}")


def _failures(df: pd.DataFrame) -> str:
    bad = df[df["status"] != "ok"] if not df.empty else df
    if bad.empty:
        return " No run failed."
    return (f" Failed runs (scored at chance level): {len(bad)} "
            f"({', '.join(f'{k} {v}' for k, v in bad['status'].value_counts().items())}).")


def _complete(df: pd.DataFrame, claim: int, profile: str, dataset: str, version: str | None = None) -> bool:
    want = len(dkw.claim_specs(claim, profile, dataset, version=version))
    return want > 0 and not df.empty and len(df[df.claim == claim]) == want


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




__all__ = ["CHANCE_ACC", "CHANCE_KL", "DATASET_NAMES", "NUM_CLASSES", "PAPER", "POLICY_NAMES", "arm", "baseline_table",
           "line_barrier", "line_frame", "matched_scores", "pct", "pct_plain", "plain_scores", "scale", "student_table",
           "teacher_table", "version_of"]
