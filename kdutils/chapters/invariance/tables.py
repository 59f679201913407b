"""Odagiu et al.: the recorded runs as tables (one row per run or per arm), read from the results store only."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from kdutils.chapters.invariance.plan import configs, select_lrs, tuned_datasets
from kdutils.chapters.invariance.recipes import (COLLAPSE_FACTOR, DATASETS, K_FOLDS, PAIR_INFO, PAIRS, ROLES,
                                                 check_pair, experiment_name, recipe, resolve_dataset, _row_label)
if TYPE_CHECKING:  # the type checker reads pandas' own names; at run time pandas is imported on first use
    import pandas as pd
else:
    from kdutils.lazy import pandas as pd
from kdutils.store.store import ResultStore
from kdutils.sweeps.tuning import ROLE_PREFIX, Selection
from kdutils.verdicts.verdict import FAILED_STATUSES


# ---------------------------------------------------------------------------------------------------------
# Tables


METRICS = ("accuracy", "nll", "ece", "agreement", "kl", "im_l1", "im_l2", "flip_rate", "im_roll_l1", "im_roll_l2",
           "flip_roll", "agreement_tprime", "kl_tprime", "agreement_teacher", "kl_teacher", "val_accuracy",
           "val_nll", "val_agreement", "val_agreement_teacher")
METRIC_LABELS = {"accuracy": "accuracy", "nll": "NLL", "ece": "ECE", "im_l1": "IM (L1)", "im_l2": "IM (L2)",
                 "flip_rate": "flip rate", "agreement": "top-1 agreement", "kl": "KL(P_t||P_s), T=1"}


def _student_lookup(pair: str, profile: str, dataset: str) -> dict[tuple[str, str], str]:
    rec = recipe(pair, profile, dataset)
    return {(net.model, json.dumps(dict(net.kwargs), sort_keys=True, default=list)): name
            for name, net in rec.students.items()}


def recipe_in_use(profile: str, pair: str, store: ResultStore | None = None) -> str:
    """"v2" once recipe v2 has recorded every run of at least as many folds as v1 ran (the pair's runs go fold
    by fold), else "v1": the page keeps showing v1's records until v2's can replace them."""
    from kdutils.chapters.invariance.plan_v2 import final_configs
    from kdutils.chapters.invariance.recipes import FOLDS

    store = store or ResultStore()
    cfgs = final_configs(profile, pair, store)
    need = [c for c in cfgs or [] if c.data.fold in FOLDS[profile]]
    return "v2" if need and all(store.get(c) is not None for c in need) else "v1"


def recipe_sentence(profile: str, store: ResultStore | None = None) -> str:
    """Which recipe each pair's numbers on the page come from."""
    from kdutils.chapters.invariance.recipe_v2 import FOLDS_V2

    used = {pair: recipe_in_use(profile, pair, store) for pair in PAIRS}
    parts = [f"{PAIR_INFO[p].title}: recipe {v}" for p, v in used.items()]
    tail = ("" if all(v == "v2" for v in used.values()) else
            f" Recipe v2 (issue 24: longer-trained students on more transfer data, folds {list(FOLDS_V2[profile])}, "
            "rates inside the grid) replaces v1 pair by pair as its records land "
            "(`python -m kdutils.chapters.invariance.run_v2 --dry-run` prints its plan and cost).")
    return "Numbers on this page come from: " + "; ".join(parts) + "." + tail


def current_keys(profile: str, pair: str, dataset: str | None = None,
                 store: ResultStore | None = None) -> set[str] | None:
    """Config keys of the runs the chapter shows for a pair now: recipe v2's where its runs are recorded
    (`recipe_in_use`), else v1's with the recorded rate selection (None while the selection is not recorded).
    Older records stay on disk but out of the tables."""
    ds = resolve_dataset(pair, dataset)
    if ds == check_pair(pair).default_dataset and recipe_in_use(profile, pair, store) == "v2":
        from kdutils.chapters.invariance.plan_v2 import final_configs

        return {c.key() for c in final_configs(profile, pair, store) or []}
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


def _folds_text(folds: list[int]) -> str:
    """ "folds 0-4" for a run of folds, else "folds 0, 2" """
    if len(folds) > 2 and folds == list(range(folds[0], folds[-1] + 1)):
        return f"folds {folds[0]}-{folds[-1]}"
    return ("fold " if len(folds) == 1 else "folds ") + ", ".join(map(str, folds))


def _pair_scale(t: pd.DataFrame, pair: str) -> str:
    """One pair's folds and training-set sizes (teachers' and students' apart where they differ: recipe v2's
    students train on a larger transfer set than its teachers)."""
    folds = sorted(int(f) for f in set(t["fold"].dropna()))
    teacher = t["role"].astype(str).str.startswith("teacher")

    def sizes(rows: pd.DataFrame) -> str:
        return "/".join(f"{int(n):,}" for n in sorted(set(rows["n_train"].dropna())))
    tn, sn = sizes(t[teacher]), sizes(t[~teacher])
    n = f"{sn} training examples" if tn in ("", sn) else f"{tn} training examples for teachers, {sn} for students"
    return f"{check_pair(pair).title.split(' (')[0]}: {_folds_text(folds)} of {K_FOLDS}, {n}"


def scale_text(table: pd.DataFrame, profile: str) -> str:
    """The scale of a verdict: per pair its folds and training sizes (the pairs can come from different
    recipes, `tables.recipe_in_use`), then the test size and the devices."""
    from kdutils.report.present import short_device

    devices = ", ".join(sorted({short_device(d) for d in table["device"].dropna()})) or "unknown device"
    n_test = "/".join(f"{int(n):,}" for n in sorted(set(table["n_test"].dropna())))
    pairs = "; ".join(_pair_scale(table[table.pair == p], p) for p in PAIRS if (table.pair == p).any())
    data = " and ".join(sorted({DATASETS[d].label if d in DATASETS else str(d) for d in table["dataset"].dropna()}))
    return f"profile `{profile}`, {data} ({pairs}), {n_test} test examples per run, on {devices}"


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
    from kdutils.report.present import results_table as present

    t = point_table(records)
    # Columns that say nothing per run leave the table (it must fit the page): one value for every run is said in
    # the caption, a column with no value at all is dropped; the device is the page's (its scale line says it).
    keep = ("role", "status", "device")
    empty = [c for c in t.columns if c not in keep and t[c].isna().all()]
    same = [c for c in t.columns if c not in keep + tuple(empty) and len(t) > 1 and t[c].notna().all()
            and t[c].astype(str).nunique() == 1]
    caption = "The runs of this point." + (" The same for every run: " + ", ".join(
        f"{c.replace('_', ' ')} {t[c].iloc[0]}" for c in same) + "." if same else "")
    t = t.drop(columns=same + empty).assign(**{c: t[c].astype(str).str.replace("_", " ") for c in ("role", "model")
                                       if c in t and c not in same})
    names = {"nll": "NLL", "ece": "ECE", "kl": "KL", "im_l1": "IM (L1)", "flip_rate": "flip rate",
             "im_roll_l1": "IM roll (L1)", "agreement_tprime": "agreement (teacher′)",
             "agreement_teacher": "agreement (teacher)", "train s": "train (s)"}
    return present(t, {c: names.get(c, c.replace("_", " ")) for c in t.columns if c not in ("status", "device")},
                   caption=caption, device=None)


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
    from kdutils.report.present import fmt_mean_std

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
    """`display_table` through `kdutils.report.present` (no index, long table behind a toggle)."""
    from kdutils.report.present import results_table as present

    d = display_table(table)
    if d.empty:
        return d
    return present(d, list(d.columns), caption=caption, max_rows=12, status=None)


def selection_table(profile: str, store: ResultStore | None = None) -> pd.DataFrame:
    """Every arm's learning-rate selection (of the recipe the page shows for the pair): one row per candidate
    (validation metrics only, never test), the chosen one marked. Pairs whose selection is not recorded are
    absent."""
    from kdutils.chapters.invariance.plan_v2 import select_v2

    rows = []
    for pair in PAIRS:
        sel: dict[str, Selection] | None  # arm -> its selection; None while v1's is not recorded
        if recipe_in_use(profile, pair, store) == "v2":  # v2's candidates, extensions included
            sel = {arm: a.selection for arm, a in (select_v2(profile, pair, store) or {}).items()}
        else:
            sel = select_lrs(profile, pair, store=store, train=False)
        if sel is None:
            continue
        for arm, s in sel.items():
            for r in s.rows:
                rows.append({"pair": pair, "arm": arm, "lr": r["lr"], "epochs": r["epochs"], "status": r["status"],
                             "val accuracy": r.get("val_accuracy"), "val NLL": r.get("val_nll"),
                             "chosen": "✔" if r["chosen"] else ""})
    return pd.DataFrame(rows)


def edge_table(profile: str, store: ResultStore | None = None) -> pd.DataFrame:
    """Every selected arm whose chosen rate sits at an edge of the grid it was chosen from (the best rate may lie
    beyond it): per pair, the recipe in use, the arm, its rate and the edge. v1's grid is fixed; v2's arms have
    already been extended up to `recipe_v2.MAX_EXTENSIONS` times, so an edge there is what remained."""
    from kdutils.chapters.invariance.plan import LR_GRID
    from kdutils.chapters.invariance.plan_v2 import edge_of, select_v2

    rows = []
    for pair in PAIRS:
        if recipe_in_use(profile, pair, store) == "v2":
            for arm, s in (select_v2(profile, pair, store) or {}).items():
                if s.edge:
                    rows.append({"pair": pair, "recipe": "v2", "arm": arm, "lr": s.lr, "edge": s.edge,
                                 "grid": ", ".join(f"{x:g}" for x in s.grid)})
            continue
        sel = select_lrs(profile, pair, store=store, train=False)
        for arm, s in (sel or {}).items():
            edge = edge_of(s.lr, LR_GRID[profile])
            if edge:
                rows.append({"pair": pair, "recipe": "v1", "arm": arm, "lr": s.lr, "edge": edge,
                             "grid": ", ".join(f"{x:g}" for x in LR_GRID[profile])})
    return pd.DataFrame(rows, columns=["pair", "recipe", "arm", "lr", "edge", "grid"])


def figure_rows(profile: str) -> list[tuple[str, str]]:
    """(pair, student) rows in the paper's order: DGCNN -> dsinv, DGCNN -> dsequiv, dsinv -> MLP, ResNet -> MLP."""
    rows = [("dgcnn_deepsets", s) for s in recipe("dgcnn_deepsets", profile).default_students]
    rows += [("deepsets_mlp", "mlp")]
    rows += [("resnet_mlp", s) for s in recipe("resnet_mlp", profile).default_students]
    return rows
