"""The Hinton chapter's paper-scale results (profile `paper`): tables and figures built from the records alone.

`paper_plan` says which runs exist and reads them; `paper_claims` declares and judges the claims; this module presents
them, with the paper's number beside ours wherever the paper gives one. Every function copes with missing
records (it says "not yet run" or returns None), so the book renders while runs are still going.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from kdutils.chapters.hinton import paper_plan as P
from kdutils.chapters.hinton import paper_rules as C
from kdutils.chapters.hinton import plan as hinton
from kdutils.report import present
from kdutils.store.store import ResultStore

NOT_YET_RUN = "not yet run"


def _errors(runs: dict) -> list[float]:
    return [P.errors_of(r) for r in runs.values()]


def _wall_minutes(runs: dict) -> float:
    return float(np.mean([r["wall_time_s"] for r in runs.values()])) / 60 if runs else float("nan")


def main_frame(store: ResultStore | None = None) -> pd.DataFrame:
    """One row per arm of the main comparison and the transfer sets: our mean test errors, the paper's, runs,
    mean wall time per run (minutes) and the `cpu` profile's number beside them."""
    recs = P.paper_records(store)
    cpu = hinton.results_table("cpu", store)
    cpu_mean = {arm: pd.to_numeric(g["test errors"], errors="coerce").mean() for arm, g in cpu.groupby("arm")} \
        if not cpu.empty else {}
    rows = []

    def add(name, runs, paper, cpu_arm=None):
        e = _errors(runs)
        rows.append({"arm": name, "runs": len(e), "errors": present.fmt_series_mean_std(pd.Series(e), 1)
                     if len(e) > 1 else (f"{e[0]:.0f}" if e else present.MISSING), "paper": paper,
                     "cpu": cpu_mean.get(cpu_arm, float("nan")) if cpu_arm else float("nan"),
                     "minutes": _wall_minutes(runs)})
    add("teacher 2x1200", {0: recs.teacher} if recs.teacher else {}, hinton.PAPER_ERRORS["teacher"], "teacher")
    add("2x800 alone", recs.main.get("alone", {}), hinton.PAPER_ERRORS["student"], "alone")
    add("2x800 distilled, T=20", recs.main.get("T20", {}), hinton.PAPER_ERRORS["distilled"], "T20")
    for name, label, paper in (("no3", "no 3s in the transfer set (no shift)", C.NO3_PAPER["errors"]),
                               ("only78", "only 7s and 8s (no shift)", 10_000 * C.ONLY78_PAPER["error_rate"])):
        add(label, {s: r for s, r in recs.transfer.get(name, {}).items()}, paper)
    return pd.DataFrame(rows)


def main_view(store: ResultStore | None = None) -> present.Table:
    return present.results_table(
        main_frame(store), {"arm": "run", "runs": "runs", "errors": "test errors (ours, paper profile)",
                            "cpu": "ours, cpu profile", "minutes": "minutes per run"},
        paper={"errors": "paper"}, status=None, device=None,
        formats={"paper": lambda v: f"{v:.0f}", "cpu": lambda v: "—" if np.isnan(v) else f"{v:.1f}",
                 "minutes": lambda v: "—" if np.isnan(v) else f"{v:.0f}"},
        caption="Test errors out of 10,000 (mean ± std over seeds), the paper's number and the quick `cpu` "
                "profile's beside ours; minutes: recorded wall time per run on the shared CPU.")


def curves_figure(store: ResultStore | None = None):
    """Learning curves: the teacher's test errors and training accuracy, and the 2x800 students' mean test
    errors (alone, T=20) against epoch, with the paper's numbers as dashed lines. None before any run."""
    recs = P.paper_records(store)
    series = [("teacher", [recs.teacher] if recs.teacher else [], hinton.PAPER_ERRORS["teacher"], "C2"),
              ("2x800 alone", list(recs.main.get("alone", {}).values()), hinton.PAPER_ERRORS["student"], "C1"),
              ("2x800 T=20", list(recs.main.get("T20", {}).values()), hinton.PAPER_ERRORS["distilled"], "C0")]
    if not any(runs for _, runs, _, _ in series):
        return None
    fig, axes = present.page_figure(2, panel_height=2.8)
    for label, runs, paper, color in series:
        curves = [C.curve(r["history"]) for r in runs if r.get("history")]
        curves = [c for c in curves if len(c[0])]
        if not curves:
            continue
        n = min(len(e) for e, _ in curves)
        e, v = curves[0][0][:n], np.array([v[:n] for _, v in curves])
        ax = axes[0] if label == "teacher" else axes[1]
        ax.plot(e, v.mean(0), color=color, label=f"{label} ({len(curves)} run{'s' if len(curves) > 1 else ''})")
        if len(curves) > 1:
            ax.fill_between(e, v.min(0), v.max(0), color=color, alpha=0.2)
        ax.axhline(paper, ls="--", color=color, lw=0.8)
    if recs.teacher and recs.teacher.get("history"):
        twin = axes[0].twinx()
        h = recs.teacher["history"]
        twin.plot([x["epoch"] for x in h], [100 * x["train_acc"] for x in h], color="0.5", lw=0.8,
                  label="teacher training accuracy (jittered, dropout on)")
        twin.set_ylabel("training accuracy (%)")
    for ax, title in zip(axes, ("teacher (dashed: paper's 67)", "students (dashed: paper's 146 and 74)")):
        ax.set(xlabel="epoch", ylabel="test errors", yscale="log", title=title)
    present.shared_legend(fig, ncol=3)
    return fig


def temperature_frame(store: ResultStore | None = None) -> pd.DataFrame:
    """Mean test errors per width and temperature (alone as T = none), with the selected rate."""
    recs = P.paper_records(store)
    rows = []
    for width, arms in recs.sweep.items():
        for tau, runs in arms.items():
            e = _errors(runs)
            if e:
                rows.append({"width": width, "tau": np.nan if tau is None else tau, "arm": P.sweep_arm(width, tau),
                             "lr": recs.lrs.get(P.sweep_arm(width, tau)), "runs": len(e), "mean": np.mean(e),
                             "std": np.std(e, ddof=1) if len(e) > 1 else np.nan})
    return pd.DataFrame(rows)


def temperature_figure(store: ResultStore | None = None):
    """Test errors against T for the 2x300 and 2x30 students (mean ± std), alone as a dashed line, the bands
    the claims name shaded. None before any distilled sweep run."""
    frame = temperature_frame(store)
    if frame.empty or frame.tau.notna().sum() == 0:
        return None
    fig, axes = present.page_figure(2, panel_height=2.8)
    for ax, width in zip(axes, ("2x300", "2x30")):
        g = frame[(frame.width == width) & frame.tau.notna()].sort_values("tau")
        ax.errorbar(g.tau, g["mean"], yerr=g["std"].fillna(0), fmt="o-", capsize=3, label="distilled")
        alone = frame[(frame.width == width) & frame.tau.isna()]
        if len(alone):
            ax.axhline(float(alone["mean"].iloc[0]), ls="--", color="C1", label="alone")
        band = C.FLAT_TAUS if width == "2x300" else C.BAND_TAUS
        ax.axvspan(min(band) * 0.95, max(band) * 1.05, color="0.9")
        ax.set(xscale="log", xlabel="temperature T", ylabel="test errors", title=f"{width} student")
        ticks = list(P.SWEEP_TAUS)
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    present.shared_legend(fig, axes=[axes[0]], ncol=2)
    return fig


def bias_shift_figure(store: ResultStore | None = None):
    """Mean test errors (all, and on the left-out classes) against the bias shift, per transfer set, with the
    validation-chosen shift (solid) and the paper's shift (dotted). None before any transfer run."""
    recs = P.paper_records(store)
    sets = [(n, runs) for n, runs in recs.transfer.items() if any("bias_shift" in r for r in runs.values())]
    if not sets:
        return None
    fig, axes = present.page_figure(len(sets), panel_height=2.8)
    for ax, (name, runs) in zip(axes, sets):
        bias = [r["bias_shift"] for r in runs.values() if "bias_shift" in r]
        shifts = np.asarray(bias[0]["shifts"])
        for key, label, color in (("errors", "all test images", "C0"), ("errors_in", "left-out classes", "C3")):
            ax.plot(shifts, np.mean([b["test"][key] for b in bias], axis=0), color=color, label=label)
        paper_shift = C.NO3_PAPER["shift"] if name == "no3" else C.ONLY78_PAPER["shift"]
        chosen = np.mean([C.bias_shift_summary(b, paper_shift)["val_shift"] for b in bias])
        ax.axvline(chosen, color="k", lw=0.8, label="chosen on validation (mean)")
        ax.axvline(paper_shift, color="k", ls=":", lw=0.8, label="paper's shift")
        what = "raise class 3" if name == "no3" else "lower 7 and 8"
        ax.set(xlabel=f"bias shift ({what})", ylabel="test errors", yscale="log",
               title=f"{name}: {len(bias)} seed(s)", xlim=(0, min(float(shifts.max()), 3 * max(float(chosen), float(paper_shift)))))
    present.shared_legend(fig, axes=[axes[0]], ncol=4)
    return fig


def rank_check_frame(store: ResultStore | None = None) -> pd.DataFrame:
    """The rank-order check: validation accuracy of the 2x30 student alone at each rate, after the selection
    length and after the full length, with each length's rank (1 = best)."""
    store = store or ResultStore()
    rows = []
    for length, cfgs in P.rank_check_configs(P.PROFILE).items():
        for c in cfgs:
            rec = store.get(c)
            if rec is not None:
                rows.append({"length": length, "epochs": c.train.epochs, "lr": c.train.lr,
                             "val_accuracy": rec["metrics"].get("val_accuracy", np.nan)})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["rank"] = frame.groupby("length").val_accuracy.rank(ascending=False, method="min")
    return frame.pivot(index="lr", columns="length", values=["val_accuracy", "rank"])


def rank_check_markdown(store: ResultStore | None = None) -> str:
    frame = rank_check_frame(store)
    if frame.empty or ("rank", "full") not in frame or ("rank", "selection") not in frame:
        return f"The rank-order check (2x30 student alone, selection length vs full length) is {NOT_YET_RUN}."
    both = frame.dropna()
    same = (both[("rank", "full")] == both[("rank", "selection")]).all()
    order = lambda col: " > ".join(f"{lr:g}" for lr in both.sort_values(("rank", col)).index)  # noqa: E731
    r = hinton.recipe(P.PROFILE)
    best = {col: set(both.index[both[("rank", col)] == 1]) for col in ("selection", "full")}
    if same:
        verdict = "the same order"
    elif best["selection"] == best["full"]:
        verdict = (f"a different order, but the same best rate ({', '.join(f'{lr:g}' for lr in sorted(best['full']))}), "
                   "the only one the selection uses")
    else:
        verdict = "a different order and a different best rate: the selection length does not pick the rate full runs would"
    return (f"**Rank-order check** (2x30 student alone, validation accuracy): after {r.select_student_epochs} "
            f"epochs the rates rank {order('selection')}; after {r.student_epochs} epochs {order('full')} "
            f"({verdict}).")


__all__ = ["bias_shift_figure", "curves_figure", "main_frame", "main_view", "rank_check_frame",
           "rank_check_markdown", "temperature_figure", "temperature_frame"]
