"""Odagiu et al.: the paper's Figure 1 from our records, one figure per row of it."""
from __future__ import annotations

from typing import Iterable

import pandas as pd

from kdutils.chapters.invariance.recipes import DATASETS, PAIR_INFO, TAUS, check_pair, _row_label
from kdutils.chapters.invariance.tables import METRIC_LABELS, summary, figure_rows


# ---------------------------------------------------------------------------------------------------------
# Figures: the paper's Figure 1, one figure per row of it


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
    from kdutils.report.present import page_figure, shared_legend

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
