"""Chandrasegaran et al., recipe v3 on the page: the teachers' convergence (table and learning curves), the
students' accuracy against tau beside the paper's Table 2, and the diffusion index against the accuracy loss
(the causal claim's scatter). Everything is read from v3's records through `report_v3`; nothing is trained.

Why a module of its own: `report_v3` turns records into the claims' inputs and verdicts; this one only shows
them, so the verdict code stays free of plotting."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kdutils.chapters.ls_kd import claims_v3 as cv3
from kdutils.chapters.ls_kd.claims import MARGIN, MIN_DID, MIN_TEACHERS
from kdutils.chapters.ls_kd.plan_v3 import PlanV3
from kdutils.chapters.ls_kd.recipe_v3 import EARLIER_V3, RECIPES_V3
from kdutils.chapters.ls_kd.recipes import PAPER_TOP1_R18
from kdutils.chapters.ls_kd.report_v3 import (acc_maps, earlier_teacher_records, eta_frame, eta_table, frame,
                                             separation_table)
from kdutils.report import present
from kdutils.report.numbers import fmt_mean_std
from kdutils.store.store import ResultStore
from kdutils.verdicts import gates as shared_gates
from kdutils.verdicts.nested import nested_paired_difference

LS_COLORS = {0.0: "C0", 0.1: "C1"}


def _teacher_name(ls: float) -> str:
    return "plain teacher (LS 0)" if ls == 0.0 else f"LS {ls:g} teacher"


def _teacher_records(p: PlanV3, store: ResultStore) -> list[tuple[float, int, dict]]:
    return [(*u.teacher_of, rec) for u in p.finals("teacher") if (rec := store.get(u.cfg)) is not None]


def teacher_frame(p: PlanV3 | list[tuple[float, int, dict]], store: ResultStore) -> pd.DataFrame:
    """One row per recorded teacher (of plan ``p``, or the given (ls, pair, record) list): LS, pair, test and final
    training accuracy (%), the slope of training accuracy over the last 5 epochs (points per epoch) and whether it
    meets the book's convergence standard."""
    rows = []
    for ls, pair, rec in (_teacher_records(p, store) if isinstance(p, PlanV3) else p):
        hist = rec.get("history") or []
        g = shared_gates.converged(hist)
        slope = next((v for k, v in g.measured.items() if k.startswith("slope")), float("nan"))
        rows.append({"ls": ls, "pair": pair, "lr": rec["config"]["train"]["lr"], "epochs": len(hist),
                     "test accuracy (%)": 100.0 * rec["metrics"]["accuracy"],
                     "final training accuracy (%)": 100.0 * g.measured.get("final train_acc", float("nan")),
                     "slope, last 5 epochs (pts/epoch)": 100.0 * slope, "converged": "yes" if g.passed else "no",
                     "history": hist})
    return pd.DataFrame(rows)


def teacher_table(p: PlanV3 | list[tuple[float, int, dict]], store: ResultStore, which: str = "Recipe v3's teachers"):
    """The teachers' convergence, one row per teacher (the "teachers converged" gate reads the same numbers)."""
    t = teacher_frame(p, store)
    if t.empty:
        return present.markdown("No v3 teacher is recorded yet.")
    t = t.assign(teacher=t.ls.map(_teacher_name), seed=t.pair)
    cols = ["teacher", "seed", "lr", "epochs", "test accuracy (%)", "final training accuracy (%)",
            "slope, last 5 epochs (pts/epoch)", "converged"]
    return present.results_table(
        t[cols], cols, status=None, device=None, digits=3,
        caption=f"{which}. The book's convergence standard (`kdutils.verdicts.gates.converged`): final "
                f"training accuracy at least {100 * shared_gates.MIN_TRAIN_ACCURACY:g}% and a rise of at most "
                f"{100 * shared_gates.MAX_TRAIN_SLOPE:g} points per epoch over the last 5 epochs.")


def teacher_curves_figure(p: PlanV3, store: ResultStore):
    """Training accuracy per epoch of every v3 teacher (None before any is recorded)."""
    t = teacher_frame(p, store)
    if t.empty:
        return None
    fig, (ax,) = present.page_figure(1, panel_height=2.8)
    for r in t.itertuples():
        h = r.history
        ax.plot([x.get("epoch", i + 1) for i, x in enumerate(h)], [100.0 * x["train_acc"] for x in h], "o-",
                ms=3, lw=1, color=LS_COLORS.get(r.ls, "C2"), label=_teacher_name(r.ls))
    ax.axhline(100 * shared_gates.MIN_TRAIN_ACCURACY, color="0.5", ls=":", lw=1, label="convergence standard (90%)")
    ax.set(xlabel="epoch", ylabel="training accuracy (%)")
    present.shared_legend(fig, [ax], ncol=3)
    return fig


def accuracy_frame(p: PlanV3, store: ResultStore) -> pd.DataFrame:
    """Per tau: each teacher's students (mean ± std over teacher pairs and seeds, and n), LS minus plain with its
    two-level interval, and the paper's Table 2 A difference."""
    df = frame(p, store)
    if df.empty:
        return pd.DataFrame()
    acc = acc_maps(df)
    rows = []
    for tau in sorted({t for _, t in acc}):
        plain, ls = acc.get((0.0, tau), {}), acc.get((0.1, tau), {})
        row: dict[str, Any] = {"tau": f"{tau:g}"}
        for name, s in (("plain teacher's students (%)", plain), ("LS teacher's students (%)", ls)):
            v = list(s.values())
            row[name] = fmt_mean_std(float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else None, 2,
                                     n=len(v)) if v else "—"
        row["LS − plain (pts)"] = nested_paired_difference(ls, plain).describe("pts", 2) if ls and plain else "—"
        paper = cv3.PAPER_SAME_TAU.get(tau)
        row["paper: LS − plain (pts)"] = f"{paper:+.2f}" if paper is not None else "—"
        rows.append(row)
    alone = df[df.kind == "alone"].accuracy.tolist()
    if alone:
        rows.append({"tau": "student alone (labels)", "plain teacher's students (%)":
                     fmt_mean_std(float(np.mean(alone)), float(np.std(alone, ddof=1)) if len(alone) > 1 else None,
                                  2, n=len(alone))})
    return pd.DataFrame(rows)


def accuracy_table(p: PlanV3, store: ResultStore):
    """The same-temperature comparison per tau beside the paper's (the table the first claim reads)."""
    t = accuracy_frame(p, store)
    return _table(
        t, "No v3 student is recorded yet.", wrap=list(t.columns[1:]),
        caption="Recipe v3's students at the common rate: test accuracy (mean ± std over teacher pairs and seeds, "
                "n units). LS − plain is paired on (teacher pair, student seed), its 95% interval two-level (over "
                "teacher pairs, student seeds within). The paper's column is Table 2 A (ImageNet, ResNet-50 -> "
                "ResNet-18), a difference of one teacher pair.")


def accuracy_figure(p: PlanV3, store: ResultStore):
    """Student accuracy against tau per teacher, one thin line per teacher pair (mean over its student seeds) and
    the mean over pairs; beside it the paper's Table 2 A. None before any student is recorded."""
    df = frame(p, store)
    if df.empty:
        return None
    acc = acc_maps(df)
    taus = sorted({t for _, t in acc})
    fig, axes = present.page_figure(2, panel_height=2.7)
    ax = axes[0]
    for ls in (0.0, 0.1):
        per_pair: dict[int, dict[float, list[float]]] = {}
        for tau in taus:
            for (pair, _seed), a in acc.get((ls, tau), {}).items():
                per_pair.setdefault(pair, {}).setdefault(tau, []).append(a)
        for pair, d in per_pair.items():
            xs = [i for i, t in enumerate(taus) if t in d]
            ax.plot(xs, [np.mean(d[taus[i]]) for i in xs], "-", color=LS_COLORS[ls], lw=0.7, alpha=0.45)
        means = [np.mean(list(acc[(ls, t)].values())) if acc.get((ls, t)) else np.nan for t in taus]
        ax.plot(range(len(taus)), means, "o-", color=LS_COLORS[ls], lw=2, label=_teacher_name(ls))
    alone = df[df.kind == "alone"].accuracy
    if len(alone):
        ax.axhline(float(alone.mean()), color="0.4", ls="--", lw=1, label="student alone (labels)")
    ax.set(xlabel="tau", ylabel="student test accuracy (%)", title="ours (Fashion-MNIST, recipe v3)")
    paper_taus = [t for t in taus if (0.0, t) in PAPER_TOP1_R18]
    for ls in (0.0, 0.1):
        axes[1].plot([taus.index(t) for t in paper_taus], [PAPER_TOP1_R18[(ls, t)] for t in paper_taus], "o-",
                     color=LS_COLORS[ls], label=_teacher_name(ls))
    axes[1].set(xlabel="tau", ylabel="top-1 (%)", title="paper (ImageNet, R50 -> R18)")
    for a in axes:
        a.set_xticks(range(len(taus)), [f"{t:g}" for t in taus])
    present.shared_legend(fig, axes, ncol=3)
    return fig


def causal_figure(p: PlanV3, store: ResultStore):
    """Each (LS value, teacher pair, seed, tau): the diffusion index tau 1 -> tau against the accuracy lost from
    tau = 1 (the causal claim reads the LS teacher's points, rho per teacher pair). None before records exist."""
    df = frame(p, store)
    e = eta_frame(p, store, "test")
    if df.empty or e.empty:
        return None
    acc = acc_maps(df)
    fig, (ax,) = present.page_figure(1, panel_height=3.0, width=6.0)
    markers = {2.0: "o", 3.0: "s", 64.0: "^"}
    for r in e[e.kind == "tau"].itertuples():
        a1, at = acc.get((r.ls, 1.0), {}).get((r.pair, r.seed)), acc.get((r.ls, r.tau1), {}).get((r.pair, r.seed))
        if a1 is None or at is None:
            continue
        ax.scatter(r.eta_similar, a1 - at, color=LS_COLORS.get(r.ls, "C2"), marker=markers.get(r.tau1, "x"),
                   s=22, label=f"{_teacher_name(r.ls)}, tau 1 -> {r.tau1:g}")
    ax.axvline(0, color="0.6", lw=0.8)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set(xlabel="eta_similar, tau 1 -> tau (%)", ylabel="accuracy lost from tau = 1 (pts)")
    present.shared_legend(fig, [ax], ncol=2)
    return fig


def plan_or_none(profile: str, store: ResultStore) -> PlanV3 | None:
    """Recipe v3's plan from the records, or None where v3 does not define ``profile`` (the page then says so)."""
    from kdutils.chapters.ls_kd.plan_v3 import build

    return build(profile, store) if profile in RECIPES_V3 else None


def no_v3(profile: str):
    return present.markdown(f"Recipe v3 has no `{profile}` profile (it has {', '.join(RECIPES_V3)}); this "
                            "profile's verdicts come from recipe v2, below.")


def _table(t: pd.DataFrame, empty: str, caption: str, **kwargs: Any):
    """``t`` as a results table with its caption, or the sentence ``empty`` while nothing is recorded."""
    if t.empty:
        return present.markdown(empty)
    return present.results_table(t, list(t.columns), status=None, device=None, caption=caption, **kwargs)


def eta_view(p: PlanV3, store: ResultStore):
    """The diffusion index of every teacher and tau, on both splits, beside its noise floor."""
    return _table(
        eta_table(p, store), "No v3 diffusion index is recorded yet.", wrap=["eta_similar (%)"], max_rows=40,
        caption="Diffusion index of the semantic similar set (%), tau 1 -> tau, same teacher pair and student seed; "
                "two-level 95% interval over teacher pairs. The noise floor is the same index between the two "
                "student seeds of one teacher at one tau and rate (root mean square over teachers): an |eta| "
                "inside it is what a change of seed alone gives. eta_dissimilar > 0 follows by construction.")


def separation_view(p: PlanV3, store: ResultStore):
    """Similar- and dissimilar-pair separation of the teachers and their tau = 1 students."""
    return _table(
        separation_table(p, store), "No v3 class separation is recorded yet.", max_rows=20,
        caption="Distance between class centroids in units of the pooled class spread, mean over the similar "
                "pairs (semantic groups) and the dissimilar pairs, per teacher LS value and split.")


def selection_view(p: PlanV3, store: ResultStore) -> list[Any]:
    """Every v3 rate selection (teachers per LS value, the common student rate): its candidates on the held-out
    images and the chosen one, then a sentence per choice at an edge of its grid."""
    from kdutils.sweeps.tuning import edge_notes, load_selection

    rows = [row for arm, cfgs in p.selection_runs.items() if (sel := load_selection(arm, cfgs, store)) is not None
            for row in sel.rows]
    if not rows:
        return [present.markdown("No v3 rate selection is recorded yet.")]
    t = pd.DataFrame(rows)
    t = t.assign(chosen=t.chosen.map({True: "chosen", False: ""}))
    notes = edge_notes(rows)
    return [present.results_table(
        t, {"arm": "arm", "lr": "rate", "epochs": "epochs", "val_accuracy": "validation accuracy",
            "val_nll": "validation NLL", "chosen": "chosen"}, device=None, max_rows=20,
        caption="Recipe v3's rate selections (seed 0, trained on the training images minus the held-out ones, "
                "judged on the held-out ones; the test set is never read)."),
        present.markdown("**At a grid edge:** " + "; ".join(notes) + "." if notes else
                         "Every chosen rate lies inside its grid.")]


def earlier_attempts(profile: str, store: ResultStore) -> list[tuple[str, Any]]:
    """For each earlier attempt at ``profile``: a heading-free sentence, its teachers' convergence table, and the
    power the current attempt has from that attempt's spread (markdown)."""
    from kdutils.chapters.ls_kd.power_v3 import power_lines

    out: list[tuple[str, Any]] = []
    for r in EARLIER_V3.get(profile, ()):
        teachers = earlier_teacher_records(r, store)
        n_bad = int((teacher_frame(teachers, store).converged == "no").sum()) if teachers else 0
        text = (f"**Attempt {r.attempt}** ({r.notes}): {n_bad} of its {len(teachers)} recorded teachers fail the "
                "convergence standard, so every claim read \"not testable at this scale\" and the scale changed "
                "(its records stay in `results/`).")
        out.append((text, teacher_table(teachers, store, f"Attempt {r.attempt}'s teachers")))
        current = RECIPES_V3[profile]
        lines = power_lines(r, current, store, cv3.MIN_SAME_TAU)
        power = ("**Power of the current attempt, as planned**: " + lines[0].removeprefix("power: ") + ":\n\n"
                 + "\n".join(f"- {x.strip()}" for x in lines[1:]))
        seen = power_lines(current, current, store, cv3.MIN_SAME_TAU)
        if any("detects" in x for x in seen[1:]):  # the current attempt's students are recorded: its own spread
            power += ("\n\n**As recorded** (the same computation from the current attempt's own records):\n\n"
                      + "\n".join(f"- {x.strip()}" for x in seen[1:]))
        out.append(("", present.markdown(power)))
    return out



def deviations_markdown(profile: str) -> str:
    """Recipe v3's deviations from the paper at ``profile``, every setting read from the recipe (v2's are listed
    in its own section)."""
    if profile not in RECIPES_V3:
        return f"Recipe v3 has no `{profile}` profile; recipe v2's deviations are listed in its section."
    r = RECIPES_V3[profile]
    t, st = r.teacher_kwargs.get("widths"), r.student_kwargs.get("widths")
    teacher = f"ResNet-8 ({'-'.join(map(str, t))})" if t else "ResNet-8 (16-32-64)"
    student = f"ResNet-8 ({'-'.join(map(str, st))})" if st else "ResNet-8"
    images = f"{r.n_train:,}" if r.n_train else "all 60,000"
    return "\n".join([
        f"- **Data and networks.** Fashion-MNIST ({images} training images), not ImageNet-1K or CUB (not obtainable "
        f"here); {teacher} teachers and {student} students, not ResNet-50 / ResNet-18. The compact students "
        "(MobileNetV2, EfficientNet-B0) and the translation experiments are not run (listed above).",
        f"- **Schedule.** Teachers {r.teacher_epochs} epochs, students {r.student_epochs}, SGD with momentum 0.9, "
        "weight decay 5e-4 and the rate / 10 at 40% and 80% of the epochs; the paper trains for 90-200 epochs.",
        f"- **Rates.** Each LS value's teachers at the rate chosen on {r.val_size:,} held-out training images from "
        f"{', '.join(f'{x:g}' for x in r.teacher_lrs)} ({r.select_teacher_epochs}-epoch runs); every student at "
        f"one common rate chosen the same way from {', '.join(f'{x:g}' for x in r.student_lrs)} "
        f"({r.select_epochs}-epoch runs). The paper trains its KD runs at one initial rate after a grid search.",
        f"- **Teachers.** {len(r.teacher_seeds)} per LS value and {len(r.student_seeds)} student seeds per teacher, so "
        "teacher-to-teacher variance is inside every interval; the paper repeats each experiment three times.",
        f"- **Augmentation.** {'None' if r.teacher_augment == 'none' else r.teacher_augment} for teachers and "
        f"{'none' if r.student_augment == 'none' else r.student_augment} for students (each teacher's logits are "
        "computed once); the paper augments both.",
        "- **The student alone** is ours (the testable gate); the paper has no such arm.",
        "- **Diffusion index.** Our reading of Eq. 1 (formula in the recipe-v2 section): the normaliser sums over the "
        "union of the similar and dissimilar sets, which makes $\\eta_{S_d} > 0$ follow almost by construction once "
        "$\\eta_{S_s} < 0$; the evidence is $\\eta_{S_s}$, on the test and the training split.",
        "- **Matched entropy.** The paper reads approximate matches off Table H.1; we solve for the matching "
        "temperature of each teacher pair.",
    ])


def rules_markdown() -> str:
    """How recipe v3's verdicts are decided, with every threshold read from the declarations in `claims`."""
    paper = " / ".join(f"{cv3.PAPER_SAME_TAU[t]:+.2f}" for t in cv3.TAUS)
    taus = " / ".join(f"{t:g}" for t in cv3.TAUS)
    return rf"""How each verdict is decided: the book's shared rules (`kdutils.verdicts.rules`, see the methods page)
with the claims declared in `kdutils.chapters.ls_kd.claims` (section "recipe v3"), written before v3's runs; the
convergence gate was added after the teachers were recorded, with the book's shared thresholds. The unit of a
comparison is (teacher pair, student seed): LS teacher *i* and plain teacher *i* share seed *i*, and their students
of seed *j* share initial weights and data order. Intervals are 95% and two-level (a t interval over the teacher
pairs' means), so teacher-to-teacher variance is inside them. A failed run counts at chance (10%), never dropped.

- **Gates** (every claim): every teacher converged (final training accuracy at least
  {100 * shared_gates.MIN_TRAIN_ACCURACY:g}%, a rise of at most {100 * shared_gates.MAX_TRAIN_SLOPE:g} points per
  epoch over its last 5 epochs); every teacher better than the student alone by at least two binomial standard
  errors; LS made every LS teacher's targets smoother than its plain partner's; every student at one learning
  rate; at least {MIN_TEACHERS} teachers per LS value. A failed gate reads "not testable at this scale".
- **Same temperature (Table 2 as stated)**: LS minus plain must lie above 0 at $\tau = 1$ and below
  $-{cv3.MIN_SAME_TAU:g}$ pts at each $\tau \ge 2$ (half the paper's smallest gap there). Paper, $\tau$ = {taus}:
  {paper} pts.
- **Systematic diffusion**: $\eta$ of the similar set for the LS teacher's students ($\tau = 1 \to \tau$) below
  $-{cv3.MIN_ETA:g}\%$ for each $\tau \ge 2$ (the paper's smallest, Table 3); the index's noise floor (the same
  index between two student seeds at one $\tau$) is shown beside it.
- **Causal link**: across arms and seeds of one teacher pair, Spearman's $\rho$ between $\eta$ and the accuracy lost
  from $\tau = 1$; the interval over pairs must lie below $-{cv3.MIN_RHO:g}$.
- **Inherited enlargement**: at $\tau = 1$, similar classes farther apart (centroid distance in units of the class
  spread) in the LS teacher's students than in the plain teacher's; gate: the LS teachers themselves enlarge it.
- **Smoothness does not explain it**: LS at $\tau$ against plain at the $\tau^*$ of equal target entropy, in the
  paper's direction (LS better at $\tau = 1$, worse at $\tau = 3$).
- **Practitioner rule**: the LS $\tau = 1$ student is non-inferior ({MARGIN:g}-pt margin) to every other distilled arm.
- **Drop from $\tau = 1$** (an extra, not scored): $(\mathrm{{LS}}_1 - \mathrm{{LS}}_\tau) - (\mathrm{{plain}}_1 -
  \mathrm{{plain}}_\tau)$ above {MIN_DID:g} pts."""


def v2_robustness(profile: str, store: ResultStore):
    """Recipe v2's verdicts (each arm at its own tuned rate, MLP students, one teacher per LS value) as one compact
    table: the robustness row beside v3, not counted on the scorecard."""
    from kdutils.chapters.ls_kd.claims import chapter_verdicts as v2_verdicts

    rows = [{"claim (recipe v2's wording)": v.claim, "verdict": v.label, "effect": str(getattr(v, "effect", "") or "")}
            for v in v2_verdicts(profile, store)]
    return present.results_table(
        pd.DataFrame(rows), status=None, device=None, wrap=["claim (recipe v2's wording)", "effect"],
        caption="Recipe v2's verdicts, for robustness only (not on the scorecard): MLP-64 students, each arm at its "
                "own validation-chosen rate, one teacher per LS value. Its sections below show the runs.")


__all__ = ["accuracy_figure", "accuracy_frame", "accuracy_table", "causal_figure", "deviations_markdown",
           "earlier_attempts", "eta_view", "no_v3", "plan_or_none", "rules_markdown", "selection_view",
           "separation_view",
           "teacher_curves_figure", "teacher_frame", "teacher_table", "v2_robustness"]
