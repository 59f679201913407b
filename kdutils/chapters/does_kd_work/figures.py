"""Stanton et al.: figures from the records (policies, distillation-set size, initialisation)."""
from __future__ import annotations


import pandas as pd

from kdutils.chapters.does_kd_work.tables import POLICY_NAMES, line_frame
from kdutils.report import present


# ------------------------------------------------------------------------------------------------- figures
def policy_figure(df: pd.DataFrame):
    """Test accuracy against test agreement per policy (mean ± std over seeds)."""
    if df.empty or df[df.claim == 3].empty:
        return None
    d = df[df.claim == 3]
    fig, (ax,) = present.page_figure(1, panel_height=3.2, width=6.5)
    for p, g in d.groupby("policy", sort=False):
        x, y = g["agreement"] * 100, g["accuracy"] * 100
        ax.errorbar(x.mean(), y.mean(), xerr=x.std(ddof=1), yerr=y.std(ddof=1), marker="o", capsize=3,
                    label=POLICY_NAMES[p])
    ax.set_xlabel("test agreement with the teacher (%)")
    ax.set_ylabel("student test accuracy (%)")
    present.shared_legend(fig, [ax], ncol=3)
    return fig


def size_figure(df: pd.DataFrame):
    """Train agreement (on the distillation data) against the share of the training set distilled on."""
    if df.empty or df[df.claim == 5].empty:
        return None
    d = df[df.claim == 5].assign(train_agreement_pct=lambda x: x["train_agreement"] * 100,
                                 agreement_pct=lambda x: x["agreement"] * 100,
                                 size=lambda x: x["n_distill"])
    fig, axes = present.page_figure(2, panel_height=2.8)
    present.errorbar_lines(axes[0], d, "size", "train_agreement_pct", "policy", labels=POLICY_NAMES)
    present.errorbar_lines(axes[1], d, "size", "agreement_pct", "policy", labels=POLICY_NAMES)
    axes[0].set_title("train agreement (distillation data)", fontsize=10)
    axes[1].set_title("test agreement", fontsize=10)
    for ax in axes:
        ax.set_xlabel("distillation images")
        ax.set_ylabel("%")
    present.shared_legend(fig, axes)
    return fig


def init_figure(df: pd.DataFrame, base: pd.DataFrame | None = None):
    """Left: test agreement against r after training, and (where recorded, recipe v2 on) before training, with
    the r = 0 ceiling (the teacher with BatchNorm recomputed) as a recorded point. Right: distillation loss along
    the line from each student (t=0) to the teacher (t=1), mean over seeds, one curve per r."""
    if df.empty or df[df.claim == 6].empty:
        return None
    d = df[df.claim == 6].assign(agreement_pct=lambda x: x["agreement"] * 100)
    fig, axes = present.page_figure(2, panel_height=2.8)
    present.errorbar_lines(axes[0], d, "r", "agreement_pct", labels={"agreement_pct": "after training"},
                           color="0.3")
    init = pd.DataFrame() if base is None or base.empty else base[base["kind"] == "init"]
    if not init.empty:
        start = init.assign(start_pct=lambda x: x["agreement"] * 100)
        present.errorbar_lines(axes[0], start[start.r > 0], "r", "start_pct", labels={"start_pct": "at initialisation"},
                               color="tab:blue")
        ceiling = start[start.r == 0.0]
        if not ceiling.empty:
            axes[0].plot([0.0], [float(ceiling["start_pct"].iloc[0])], "k*", ms=9,
                         label=f"r = 0 (teacher, BN recomputed): {float(ceiling['start_pct'].iloc[0]):.2f}%")
    axes[0].set_xlabel("r (0: teacher weights, 1: random init)")
    axes[0].set_ylabel("test agreement (%)")
    lines = line_frame(d)
    if not lines.empty:
        lines = lines.assign(r_label=lines["r"].map(lambda r: "random init (r=1)" if r == 1.0 else f"r={r:g}"))
        present.errorbar_lines(axes[1], lines, "t", "loss", "r_label")
        axes[1].set_yscale("log")
    axes[1].set_xlabel("t (0: student, 1: teacher)")
    axes[1].set_ylabel("τ² KL(teacher ‖ student)")
    present.shared_legend(fig, axes)
    return fig
