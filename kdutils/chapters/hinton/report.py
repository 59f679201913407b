"""The Hinton chapter's page: tables, figures and the prose that carries numbers, all built from the records.

`plan` defines the runs and `claims` the verdict; this module only presents them, so the report notebook stays a
list of calls. Every function works on a store with missing records and then says "not yet run" instead of
failing (the book build loads records and never trains).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from kdutils.chapters.hinton import claims, plan as hinton
from kdutils.report import present
from kdutils.store.store import ResultStore
from kdutils.verdicts.verdict import NOT_YET_RUN

_pm = present.fmt_series_mean_std  # "mean ± std" of a column of runs, fixed decimals


def _epochs(n: int) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")


def _fmt(x: float | None, digits: int = 0) -> str:
    return present.MISSING if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


# ---- the paper and the protocol ------------------------------------------------------------------------------------

def protocol_markdown(profile: str) -> str:
    """What each profile trains, from the recipe (so the prose cannot drift from the configs)."""
    r = hinton.recipe(profile)
    data = "The official MNIST split (60,000 training, 10,000 test images)" if r.n_train is None else \
        f"A {r.n_train:,}-image subset of MNIST's training split and {r.n_test:,} test images"
    lrs = ", ".join(f"{x:g}" for x in r.student_lrs)
    tlrs = ", ".join(f"{x:g}" for x in r.teacher_lrs)
    return (
        f"**Data.** {data}; {r.val_size:,} training images are held out as a validation split for learning-rate "
        "selection only; the final runs train on the whole training split.\n\n"
        f"**Teacher.** 2x1200 ReLU MLP, input dropout 0.2, hidden dropout 0.5, max-norm {hinton.MAX_NORM:g} on "
        "each hidden unit's incoming weights, inputs jittered by up to 2 pixels, SGD (momentum 0.9, batch "
        f"{r.batch_size}) with a cosine-decaying rate, {_epochs(r.teacher_epochs)}, one seed.\n\n"
        f"**Students.** 2x800 ReLU MLP, no regularisation, {_epochs(r.student_epochs)}, same optimiser: trained "
        "alone on the labels, or distilled at $T \\in \\{" + ", ".join(f"{t:g}" for t in hinton.TAUS) + "\\}$ "
        f"with weight $\\alpha = {hinton.DEFAULT_ALPHA:g}$ on the KD term "
        "$\\alpha T^2 \\mathrm{KL}(p_t^T \\| p_s^T) + (1-\\alpha)\\,\\mathrm{CE}$.\n\n"
        f"**Learning rates.** Chosen per arm on the validation split: the teacher from {{{tlrs}}} "
        f"({r.select_teacher_epochs}-epoch runs), each student arm from {{{lrs}}} ({r.select_student_epochs}-epoch "
        "runs), one seed, by validation accuracy (ties: validation NLL). The test set is never read by the "
        "selection.\n\n"
        f"**Seeds.** The student alone and $T=20$ (the verdict's arms): {len(r.seeds)} seeds "
        f"({', '.join(map(str, r.seeds))}), paired by seed; the other temperatures: "
        f"{len(r.sweep_seeds)} seed{'s' if len(r.sweep_seeds) > 1 else ''}.")


# ---- learning-rate selection -----------------------------------------------------------------------------------

def selection_view(profile: str, store: ResultStore | None = None) -> present.Table | str:
    """The selection runs: one row per (arm, lr) with the validation numbers and the chosen rate."""
    table = hinton.selection_table(profile, store)
    if table.empty:
        return NOT_YET_RUN
    table = table.assign(chosen=np.where(table.chosen, "chosen", ""))
    return present.results_table(
        table, {"arm": "arm", "lr": "lr", "epochs": "epochs", "val_accuracy": "val accuracy",
                "val_nll": "val NLL", "chosen": "chosen"}, formats={"lr": lambda v: f"{v:g}"}, max_rows=30,
        caption="Learning-rate selection on the validation split (one seed; test data never read).")


def selection_markdown(profile: str, store: ResultStore | None = None) -> str:
    """The chosen rate of every arm, in one sentence (from the selection records)."""
    table = hinton.selection_table(profile, store)
    if table.empty:
        return f"No selection runs are recorded for profile `{profile}` ({NOT_YET_RUN})."
    chosen = table[table.chosen]
    text = "Chosen rates: " + "; ".join(f"{r.arm} {r.lr:g}" for r in chosen.itertuples()) + "."
    failed = table[table.status != "ok"]
    if len(failed):
        text += f" {len(failed)} selection run(s) diverged and ranked last."
    return text


def selection_figure(profile: str, store: ResultStore | None = None):
    """Validation accuracy against lr, one line per arm, chosen rates circled. None when nothing is recorded."""
    table = hinton.selection_table(profile, store)
    if table.empty:
        return None
    fig, axes = present.page_figure(2, panel_height=2.8)
    for i, (arm, g) in enumerate(table.groupby("arm", sort=False)):
        ax = axes[0] if arm == "teacher" else axes[1]  # own panel: a diverging teacher rate squeezes the rest
        g = g.sort_values("lr")
        ax.plot(g.lr, 100 * g.val_accuracy, "o-", color=f"C{i}", label=arm)
        best = g[g.chosen]
        ax.plot(best.lr, 100 * best.val_accuracy, "o", ms=11, mfc="none", mec=f"C{i}")
    axes[0].set(xscale="log", xlabel="learning rate", ylabel="validation accuracy (%)", title="teacher")
    axes[1].set(xscale="log", xlabel="learning rate", title="students")
    for ax, lrs in zip(axes, (table[table.arm == "teacher"].lr, table[table.arm != "teacher"].lr)):
        ticks = sorted(set(lrs))
        ax.set_xticks(ticks, [f"{x:g}" for x in ticks])
        ax.minorticks_off()
    present.shared_legend(fig, ncol=4)
    return fig


# ---- results ---------------------------------------------------------------------------------------------------

ARM_ORDER = ["teacher", "alone"] + [hinton.arm_name(t) for t in hinton.TAUS]


def _paper_value(arm: str) -> float:
    e = hinton.PAPER_ERRORS
    return {"teacher": e["teacher"], "alone": e["student"], hinton.arm_name(hinton.VERDICT_TAU): e["distilled"]}.get(
        arm, float("nan"))


def arms_frame(profile: str, store: ResultStore | None = None) -> pd.DataFrame:
    """One row per arm: lr, runs, failed runs, test errors mean ± std (and the numbers behind), ECE, agreement."""
    table = hinton.results_table(profile, store)
    rows = []
    for arm in [a for a in ARM_ORDER if a in set(table.arm)]:
        g = table[table.arm == arm]
        ok = g[g.status == "ok"]
        e = pd.to_numeric(ok["test errors"], errors="coerce").dropna()
        rows.append({"arm": arm, "lr": float(g.lr.iloc[0]), "runs": len(g), "failed": int((g.status != "ok").sum()),
                     "errors_mean": e.mean() if len(e) else float("nan"),
                     "errors_std": e.std(ddof=1) if len(e) > 1 else float("nan"),
                     "test errors": _pm(e, 1) if len(e) > 1 else _fmt(e.mean() if len(e) else None),
                     "paper": _paper_value(arm),
                     "ECE": _pm(ok.ECE.dropna(), 4),
                     "agreement": (_pm(ok.agreement.dropna(), 4)
                                   if "agreement" in ok and ok.agreement.notna().any() else present.MISSING)})
    return pd.DataFrame(rows)


def arms_view(profile: str, store: ResultStore | None = None) -> present.Table | str:
    frame = arms_frame(profile, store)
    if frame.empty:
        return NOT_YET_RUN
    return present.results_table(
        frame, {"arm": "arm", "lr": "lr (selected)", "runs": "runs", "failed": "failed", "test errors":
                "test errors", "ECE": "ECE", "agreement": "agreement with teacher"},
        paper={"test errors": "paper"}, formats={"lr": lambda v: f"{v:g}", "paper": lambda v: f"{v:.0f}"},
        status=None, caption=f"Test errors out of 10,000 per arm, profile {profile} (paper's numbers beside ours).")


def runs_view(profile: str, store: ResultStore | None = None) -> present.Table | str:
    table = hinton.results_table(profile, store)
    if table.empty:
        return NOT_YET_RUN
    return present.results_table(
        table, {"arm": "arm", "seed": "seed", "lr": "lr", "epochs": "epochs", "test errors": "test errors",
                "accuracy": "accuracy", "NLL": "NLL", "ECE": "ECE", "agreement": "agreement", "device": "device",
                "wall time (s)": "wall time (s)", "status": "status"},
        formats={"lr": lambda v: f"{v:g}", "seed": lambda v: f"{v:.0f}", "epochs": lambda v: f"{v:.0f}",
                 "test errors": lambda v: f"{v:.0f}", "wall time (s)": lambda v: f"{v:.0f}"},
        max_rows=8, caption=f"Every final run of profile {profile}, one row per seed.")


def tau_figure(profile: str, store: ResultStore | None = None):
    """Test errors against temperature (mean ± std over seeds), with the student alone, the teacher and the
    paper's distilled point. None when no distilled run is recorded."""
    table = hinton.results_table(profile, store)
    kd = table[(table.role == "distilled") & (table.status == "ok")] if not table.empty else table
    if kd.empty:
        return None
    fig, axes = present.page_figure(2, panel_height=2.8)
    present.errorbar_lines(axes[0], kd.assign(tau=kd.tau.astype(float)), "tau", "test errors",
                           labels={"test errors": "2x800 distilled"})
    n_test = int(table.n_test.dropna().iloc[0])
    scale = n_test / 10_000
    for arm, color, label in (("alone", "C1", "2x800 alone"), ("teacher", "C2", "2x1200 teacher")):
        e = table[(table.arm == arm) & (table.status == "ok")]["test errors"]
        if len(e):
            axes[0].axhline(e.mean(), ls="--", color=color, label=label)
    axes[0].plot([hinton.VERDICT_TAU], [hinton.PAPER_ERRORS["distilled"] * scale], "k*", ms=11,
                 label="paper, distilled T=20")
    axes[0].set(xscale="log", xlabel="temperature T", ylabel="test errors")
    present.errorbar_lines(axes[1], kd.assign(tau=kd.tau.astype(float)), "tau", "agreement",
                           labels={"agreement": "top-1 agreement with the teacher"})
    axes[1].set(xscale="log", xlabel="temperature T", ylabel="agreement with the teacher")
    for ax in axes:
        ax.set_xticks(list(hinton.TAUS), [f"{t:g}" for t in hinton.TAUS])
        ax.minorticks_off()
    present.shared_legend(fig, axes=[axes[0]], ncol=2)
    return fig


def headline_markdown(profile: str, store: ResultStore | None = None) -> str:
    """The results paragraph, every number read from the records."""
    frame = arms_frame(profile, store)
    if frame.empty or "teacher" not in set(frame.arm):
        return f"No runs are recorded for profile `{profile}` yet ({NOT_YET_RUN})."
    by = frame.set_index("arm")
    e = hinton.PAPER_ERRORS
    t = by.loc["teacher", "errors_mean"]
    parts = [f"Our teacher makes **{_fmt(t)}** test errors (paper {e['teacher']}: "
             f"{_fmt(t - e['teacher'])} more)."]
    if "alone" in by.index:
        parts.append(f"The 2x800 net alone makes **{_fmt(by.loc['alone', 'errors_mean'], 1)}** on average over "
                     f"{by.loc['alone', 'runs']} seeds (paper {e['student']}), at its selected rate "
                     f"{by.loc['alone', 'lr']:g}.")
    a20 = hinton.arm_name(hinton.VERDICT_TAU)
    if a20 in by.index:
        parts.append(f"Distilled at $T=20$ it makes **{_fmt(by.loc[a20, 'errors_mean'], 1)}** over "
                     f"{by.loc[a20, 'runs']} seeds (paper {e['distilled']}), at its selected rate "
                     f"{by.loc[a20, 'lr']:g}" + (f"; {by.loc[a20, 'failed']} run(s) failed"
                                                   if by.loc[a20, 'failed'] else "") + ".")
    others = [a for a in by.index if a.startswith("T") and a != a20]
    if others:
        best = min(others, key=lambda a: by.loc[a, "errors_mean"])
        worst = max(others, key=lambda a: by.loc[a, "errors_mean"])
        runs = sorted({int(by.loc[a, "runs"]) for a in others})
        parts.append(f"Across the other temperatures ({'/'.join(map(str, runs))} seed(s) each), mean errors range "
                     f"from {_fmt(by.loc[best, 'errors_mean'], 1)} ({best}) to "
                     f"{_fmt(by.loc[worst, 'errors_mean'], 1)} ({worst}).")
    return " ".join(parts)


def untuned_markdown(store: ResultStore | None = None) -> str:
    """What the chapter's first cpu runs showed, all at the untuned lr 0.05 (numbers from those records)."""
    old = hinton.untuned_records(store)
    if old.empty:
        return "The earlier untuned runs (lr 0.05) are not in the results store."
    teacher = old[old.role == "teacher"]
    alone = old[old.role == "student"]
    t20 = old[(old.role == "distilled") & (old.tau == 20.0)]
    sweep = old[(old.role == "distilled") & (old.tau != 20.0) & (old.status == "ok")]
    div = t20[t20.status != "ok"]

    def rng(s: pd.Series) -> str:
        s = pd.to_numeric(s, errors="coerce").dropna()
        return f"{s.min():.0f}-{s.max():.0f}" if len(s) > 1 else (f"{s.iloc[0]:.0f}" if len(s) else present.MISSING)
    text = ("**The untuned learning rate.** The chapter's first `cpu` runs trained every net at SGD lr 0.05 "
            f"(students {int(alone.epochs.iloc[0]) if len(alone) else '?'} epochs")
    if len(teacher):
        text += (f", with an earlier teacher: {int(teacher.epochs.iloc[0])} epochs, no input dropout, no max-norm, "
                 f"{rng(teacher['test errors'])} test errors")
    text += (f"). The net alone made {rng(alone['test errors'])} errors over {len(alone)} seeds; distilled at "
             f"$T=20$, {len(t20) - len(div)} of {len(t20)} seeds finished, with {rng(t20['test errors'])} errors")
    if len(div):
        text += f", and {len(div)} diverged (non-finite loss)"
    text += (f"; at $T \\in \\{{{', '.join(f'{t:g}' for t in sorted(sweep.tau.unique()))}\\}}$ (one seed) "
             f"{rng(sweep['test errors'])} errors. ")
    a_mean = pd.to_numeric(alone["test errors"], errors="coerce").mean()
    d_mean = pd.to_numeric(t20["test errors"], errors="coerce").mean()
    if d_mean >= a_mean:
        text += (f"At that shared rate the finished $T=20$ runs were no better than the net alone (mean "
                 f"{d_mean:.1f} against {a_mean:.1f}). ")
    text += ("The KD term's gradient is $\\alpha T (q_s - q_t)$ in the logits, which at high "
             "$T$ tends to $\\alpha (z_s - z_t)/N$ (Hinton et al., Sec. 2.1): its size grows with the "
             "teacher's logit scale, not with $1/T$, so a rate that suits hard labels can be too large for the "
             "distilled student. These records stay in `results/hinton_mnist/` and in no table or verdict above.")
    return text


def shorter_teachers_markdown(profile: str, store: ResultStore | None = None) -> str:
    """Teachers of this profile with the chapter's regularisation but another length, recorded before the
    current one (e.g. a first, shorter cpu teacher), read from their records; "" when there are none."""
    store = store or ResultStore()
    table = store.table(hinton.EXPERIMENT, profile=profile)
    if table.empty or "config.model_kwargs" not in table:
        return ""
    p = hinton.plan(profile, store)
    if p.teacher is None:
        return ""
    current = p.teacher.key()
    same_reg = table["config.model_kwargs"] == table.loc[table.key == current, "config.model_kwargs"].squeeze() \
        if (table.key == current).any() else table["config.model_kwargs"].str.contains("max_norm", na=False)
    old = table[(table["config.role"] == "teacher") & (table.key != current) & same_reg & (table.status == "ok")]
    if old.empty:
        return ""
    runs = "; ".join(f"{int(r['config.train.epochs'])} epochs at lr {r['config.train.lr']:g}: {int(r['errors'])} "
                     "test errors" for _, r in old.sort_values("config.train.epochs").iterrows())
    return (f"- **Teacher length.** A first `{profile}` teacher with the same regularisation ({runs}) was too far "
            "from the paper's 67 errors to serve as the chapter's teacher, so it was lengthened to "
            f"{hinton.recipe(profile).teacher_epochs} epochs before the final students were trained (only "
            "short selection runs had used it). Its records stay in the store, outside the tables.")


def deviations_markdown(profile: str, store: ResultStore | None = None) -> str:
    r = hinton.recipe(profile)
    shorter = shorter_teachers_markdown(profile, store)
    return "\n".join(([shorter] if shorter else []) + [
        "- **Optimiser and length are ours.** The paper gives no optimiser, schedule or epoch count for MNIST. "
        f"Our `{profile}` teacher trains for {_epochs(r.teacher_epochs)} and the students for "
        f"{_epochs(r.student_epochs)}; "
        "the dropout paper the KD paper cites trains its MNIST nets for far longer, so our teacher is weaker "
        "than the paper's (see the results).",
        "- **Regularisation.** Input dropout 0.2, hidden dropout 0.5 and a max-norm constraint of "
        f"{hinton.MAX_NORM:g} (projected after every step) follow the dropout paper's MNIST nets; the KD paper "
        "only names dropout, weight constraints and jitter. The constant 3.5 was not tuned.",
        "- **Jitter** is a random integer shift of up to 2 pixels per axis with zero fill, drawn per image and "
        "step; the paper does not define it further.",
        "- **Transfer set.** The distilled student trains on un-jittered training images, so the teacher's "
        "logits are computed once and reused for every temperature (the paper's transfer set is also the "
        "training set).",
        f"- **$\\alpha = {hinton.DEFAULT_ALPHA:g}$** is ours (the paper says a considerably lower weight on the hard "
        "targets worked best, without a number).",
        "- **Selection.** Each arm's learning rate is chosen on one seed with short runs on a held-out "
        "validation split, then the chosen rate trains on all training images. The distilled candidates learn "
        "from the final teacher, which has seen the validation images during its own training (the candidates "
        "see its outputs only on the images left in their training split).",
        "- **One teacher.** The teacher is one seed, so the teacher-student gap's interval reflects the students' "
        "seed-to-seed spread only.",
        "- **Failed runs.** A run that diverges or ends at chance level keeps its record and status; the verdict "
        "scores it at chance level (9,000 errors out of 10,000) in its arm instead of dropping it.",
    ])


def scales_markdown() -> str:
    rows = []
    for name, r in hinton.RECIPES.items():
        rows.append(f"- **`{name}`**: {r.notes}. " + {
            "smoke": "Shows only that the code runs; its numbers mean nothing.",
            "cpu": "Can show whether distillation at $T=20$ beats the student alone by more than seed noise, "
                   f"with {len(r.seeds)} paired seeds. It cannot reach the paper's teacher, so the fraction of "
                   "the gap closed is measured against a weaker teacher; the temperature sweep has "
                   f"{len(r.sweep_seeds)} seed(s) per temperature and no verdict, so differences between "
                   "temperatures are descriptive only.",
            "gpu": "Can show what `cpu` shows with twice the paired seeds; `python -m kdutils gpu` may run fewer "
                   "seeds to fit its time budget, and its report says how many.",
            "full": "Not the paper's recipe (the paper gives little beyond the regularisation), but one that runs "
                    f"at every temperature with tuned rates: {len(r.seeds)} seeds per verdict arm, "
                    f"{len(r.sweep_seeds)} per other temperature; `python -m kdutils run hinton --profile full`.",
            "paper": "The chapter's main result: the paper's section 3 at its own scale on a CPU (teacher, 2x800 "
                     f"alone and at T=20 with {len(r.seeds)} seeds each, learning curves that show convergence, "
                     "the temperature sweep of the 2x300 and 2x30 students and the two transfer sets without "
                     "some classes); `python scripts/hinton_paper_runs.py teacher alone kd-main kd-sweep`.",
        }[name])
    return "\n".join(rows)


def verdict_markdown(profile: str, store: ResultStore | None = None) -> str:
    return "\n\n".join(v.to_markdown() for v in claims.chapter_verdicts(profile, store))


__all__ = ["arms_frame", "arms_view", "deviations_markdown", "headline_markdown", "selection_markdown",
           "protocol_markdown", "runs_view", "scales_markdown", "selection_figure", "selection_view", "tau_figure",
           "untuned_markdown", "verdict_markdown"]
