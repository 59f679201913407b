"""Chandrasegaran et al.: figures from the records (accuracy against tau, penultimate-layer projections)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kdutils.chapters.ls_kd import plan as ls_kd, recipes
from kdutils.chapters.ls_kd.claims import CLASS_NAMES, _tau, analysis_of, results_frame
from kdutils.chapters.ls_kd.tables import _scored
from kdutils.report import present
from kdutils.store.store import ResultStore


def accuracy_figure(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None):
    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    df = results_frame(profile, store, p)
    df = df[(df.kind == "student") & df.matched.isna()] if not df.empty else df
    if df.empty:
        return None
    df = _scored(df)
    fig, axes = present.page_figure(2, panel_height=2.6)
    df = df.assign(tau_pos=df.tau.map({t: i for i, t in enumerate(recipes.TAUS)}),
                   teacher=df.ls.map(lambda v: f"LS {v:g} teacher"))
    present.errorbar_lines(axes[0], df, "tau_pos", "accuracy", "teacher")
    axes[0].set(xlabel="tau", ylabel="student test accuracy (%)", title="ours (Fashion-MNIST)")
    paper = pd.DataFrame([{"tau_pos": i, "acc": recipes.PAPER_TOP1_R18[(v, t)], "teacher": f"LS {v:g} teacher"}
                          for i, t in enumerate(recipes.TAUS) for v in (0.0, 0.1)])
    for j, (name, g) in enumerate(paper.groupby("teacher")):
        axes[1].plot(g.tau_pos, g.acc, "o-", color=f"C{j}", label=name)
    axes[1].set(xlabel="tau", ylabel="top-1 (%)", title="paper (ImageNet, R50 -> R18)")
    for ax in axes:
        ax.set_xticks(range(len(recipes.TAUS)), [_tau(t) for t in recipes.TAUS])
    present.shared_legend(fig, axes, ncol=2)
    return fig


# ---- projections ---------------------------------------------------------------------------------------------

def projection_panels(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None,
                      taus=(1.0, 64.0)) -> list[tuple[str, dict[str, Any]]]:
    """(title, recorded projection) for teacher without / with LS and their seed-0 students at ``taus``."""
    store = store or ResultStore()
    p = p or ls_kd.plan(profile, store)
    model = recipes.recipe(profile).student_models[0]
    panels = []
    for ls in (0.0, 0.1):
        if ls not in p.teachers:
            continue
        a = analysis_of(p.teachers[ls], store)
        if a and "projection" in a:
            panels.append((f"teacher, LS {ls:g}", a["projection"]))
        for tau in taus:
            cfgs = sorted(p.finals.get(recipes.student_arm(model, ls, tau), []), key=lambda c: c.seed)
            a = analysis_of(cfgs[0], store) if cfgs else None
            if a and "projection" in a:
                panels.append((f"student of LS {ls:g}, tau {_tau(tau)}", a["projection"]))
    return panels


def projection_figure(profile: str, store: ResultStore | None = None, p: ls_kd.Plan | None = None,
                      split: str = "train", taus=(1.0, 64.0)):
    panels = projection_panels(profile, store, p, taus)
    if not panels:
        return None
    fig, axes = present.page_figure(len(panels), ncols=3, panel_height=2.4)
    # one colour per class in every panel (not per position in a panel's class list, which may differ)
    shown = sorted({int(c) for _, proj in panels for c in proj["classes"]})
    palette = ("tab:red", "tab:green", "tab:blue", "tab:orange", "tab:purple", "tab:brown", "tab:pink",
               "tab:gray", "tab:olive", "tab:cyan")
    color_of = {c: palette[i % len(palette)] for i, c in enumerate(shown)}
    for ax, (title, proj) in zip(axes, panels):
        pts = np.asarray(proj[f"{split}_points"])
        lab = np.asarray(proj[f"{split}_labels"])
        cents = np.asarray(proj[f"{split}_centroids"])
        for j, c in enumerate(proj["classes"]):
            sel = lab == c
            ax.scatter(pts[sel, 0], pts[sel, 1], s=5, alpha=0.45, color=color_of[int(c)], label=CLASS_NAMES[c])
            ax.scatter(cents[j, 0], cents[j, 1], s=160, marker="*", color=color_of[int(c)], edgecolors="black",
                       linewidths=0.7, zorder=3)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=9)
    present.shared_legend(fig, axes, ncol=3, markerscale=3)
    return fig
