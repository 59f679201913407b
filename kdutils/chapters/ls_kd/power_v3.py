"""Chandrasegaran et al., recipe v3: how many teacher pairs and student seeds an attempt needs, from the spread
measured in an earlier attempt's records.

Why: a comparison's unit is (teacher pair, student seed), and its interval is a t interval over the pairs' means
(`kdutils.verdicts.nested`). The variance of one pair's mean is sigma_teacher^2 + sigma_seed^2 / m (m seeds), so
the smallest difference the design detects (two-sided 5% t test over n pairs, 80% power) is the one whose
noncentral t (n - 1 degrees of freedom, noncentrality difference / sqrt((sigma_teacher^2 + sigma_seed^2 / m) / n))
exceeds the critical value with probability 0.8: solved exactly, since the usual (t_0.975 + t_0.8) x SE
shortcut overstates the power at 3-5 pairs. The two sigmas come from a one-way analysis of variance of LS minus plain over the earlier attempt's (pair, seed) units.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from scipy import stats

from kdutils.chapters.ls_kd.recipe_v3 import RecipeV3
from kdutils.chapters.ls_kd.recipes import EXPERIMENT
from kdutils.store.store import ResultStore


def variance_components(diffs: Mapping[tuple[int, int], float]) -> tuple[float, float, int]:
    """(sigma_teacher, sigma_seed, number of pairs) of ``diffs`` {(pair, seed): value} by one-way ANOVA (the
    between-pair component floored at 0). Needs at least two pairs with at least two seeds each."""
    groups: dict[int, list[float]] = {}
    for (pair, _seed), v in diffs.items():
        groups.setdefault(pair, []).append(float(v))
    groups = {k: g for k, g in groups.items() if len(g) >= 2}
    if len(groups) < 2:
        raise ValueError(f"need two or more pairs with two or more seeds each, got {len(groups)} pair(s)")
    within = float(np.mean([np.var(g, ddof=1) for g in groups.values()]))
    m = float(np.mean([len(g) for g in groups.values()]))
    between = float(np.var([np.mean(g) for g in groups.values()], ddof=1))
    return math.sqrt(max(between - within / m, 0.0)), math.sqrt(within), len(groups)


def detectable_effect(sigma_teacher: float, sigma_seed: float, n_pairs: int, n_seeds: int,
                      power: float = 0.8, confidence: float = 0.95) -> float:
    """The smallest true difference the (n_pairs x n_seeds) design finds with probability ``power``."""
    if n_pairs < 2 or n_seeds < 1:
        raise ValueError(f"need n_pairs >= 2 and n_seeds >= 1, got {n_pairs} and {n_seeds}")
    from scipy.optimize import brentq

    df = n_pairs - 1
    se = math.sqrt((sigma_teacher ** 2 + sigma_seed ** 2 / n_seeds) / n_pairs)
    crit = stats.t.ppf(0.5 + confidence / 2, df)

    def short(nc: float) -> float:
        return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)) - power

    hi = 1.0
    while short(hi) < 0:  # widen the bracket until the power passes the target (nct is NaN for huge values)
        hi *= 2.0
    return float(brentq(short, 0.0, hi) * se)


def recorded_differences(r: RecipeV3, store: ResultStore) -> dict[float, dict[tuple[int, int], float]]:
    """{tau: {(pair, seed): LS minus plain test accuracy (points)}} from the recorded tau-sweep students of the
    attempt ``r`` describes (matched by data size, student model and widths, and the teachers' epochs and seeds)."""
    acc: dict[tuple[float, float, int, int], float] = {}
    widths = list(r.student_kwargs.get("widths", []))
    for rec in store.records(EXPERIMENT):
        c = rec.get("config", {})
        t = c.get("teacher") or {}
        if (c.get("role") != "student" or c.get("profile") is None or rec.get("status") != "ok"
                or c.get("data", {}).get("n_train") != r.n_train or c.get("model") != r.student_model
                or list((c.get("model_kwargs") or {}).get("widths", [])) != widths
                or t.get("train", {}).get("epochs") != r.teacher_epochs or t.get("seed") not in r.teacher_seeds
                or c.get("train", {}).get("epochs") != r.student_epochs):
            continue
        acc[(float(t.get("label_smoothing", 0.0)), float(c["tau"]), int(t["seed"]), int(c["seed"]))] = \
            100.0 * rec["metrics"]["accuracy"]
    out: dict[float, dict[tuple[int, int], float]] = {}
    for (ls, tau, pair, seed), a in acc.items():
        if ls == 0.1 and (0.0, tau, pair, seed) in acc:
            out.setdefault(tau, {})[(pair, seed)] = a - acc[(0.0, tau, pair, seed)]
    return out


def power_lines(earlier: RecipeV3, current: RecipeV3, store: ResultStore, minimum: float) -> list[str]:
    """What the current attempt detects, per tau, from the earlier attempt's spread (lines for the dry run and the
    page); says so where the earlier records are too few to estimate it."""
    n, m = len(current.teacher_seeds), len(current.student_seeds)
    lines = [f"power: {n} teacher pairs x {m} student seeds; spread of LS - plain from attempt {earlier.attempt}'s "
             f"records; minimum effect of the tau >= 2 parts {minimum:g} pts"]
    for tau, d in sorted(recorded_differences(earlier, store).items()):
        try:
            s_t, s_w, k = variance_components(d)
        except ValueError as err:
            lines.append(f"  tau {tau:g}: no estimate ({err})")
            continue
        lines.append(f"  tau {tau:g}: sigma_teacher {s_t:.2f}, sigma_seed {s_w:.2f} (from {k} pairs); detects "
                     f"{detectable_effect(s_t, s_w, n, m):.2f} pts (80% power)")
    return lines


__all__ = ["detectable_effect", "power_lines", "recorded_differences", "variance_components"]
