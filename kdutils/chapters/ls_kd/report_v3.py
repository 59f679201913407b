"""Chandrasegaran et al., recipe v3: records -> the inputs of `claims_v3` (accuracies keyed (teacher pair, student
seed), diffusion indices with their noise floor on both splits, class separations) and the chapter's verdicts.

The noise floor of the diffusion index: eta computed between the two student seeds of one teacher at the *same*
tau and rate (seed 0's centroids as "before", seed 1's as "after"). Nothing but the seed changes, so its size is
what the index moves by chance; the page shows its root mean square beside every eta."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from kdutils.chapters.ls_kd import claims_v3 as cv3
from kdutils.chapters.ls_kd.analysis_v3 import load_analysis_v3
from kdutils.chapters.ls_kd.plan_v3 import PlanV3, build
from kdutils.chapters.ls_kd.recipe_v3 import EARLIER_V3, RecipeV3, recipe_v3
from kdutils.chapters.ls_kd.recipes import DATASET, EXPERIMENT, NUM_CLASSES, load_analysis
from kdutils.store.store import ResultStore
from kdutils.verdicts.nested import nested_interval
from kdutils.verdicts.rules import judge, to_verdict
from kdutils.verdicts.verdict import FAILED_STATUSES, NOT_YET_RUN, Verdict, min_testable_gap

CHANCE_PCT = 100.0 / NUM_CLASSES


def frame(p: PlanV3, store: ResultStore) -> pd.DataFrame:
    """One row per recorded final unit: kind, ls, pair, tau, seed, matched, lr, accuracy (%, chance if failed)."""
    rows = []
    for u in p.units:
        rec = store.get(u.cfg)
        if rec is None:
            continue
        acc = CHANCE_PCT if rec["status"] in FAILED_STATUSES else 100.0 * rec["metrics"]["accuracy"]
        rows.append({"kind": u.kind, "ls": u.ls, "pair": u.pair, "tau": u.tau, "seed": u.seed, "matched": u.matched,
                     "lr": u.cfg.train.lr, "accuracy": acc, "status": rec["status"], "n_test": rec.get("n_test"),
                     "wall_time_s": rec.get("wall_time_s"), "unit": u})
    return pd.DataFrame(rows)


def acc_maps(df: pd.DataFrame) -> dict[tuple[float, float], dict[tuple, float]]:
    """{(ls, tau): {(pair, seed): accuracy}} for the tau-sweep students (matched arms excluded)."""
    out: dict = {}
    for r in df[(df.kind == "student") & df.matched.isna()].itertuples():
        out.setdefault((r.ls, r.tau), {})[(r.pair, r.seed)] = r.accuracy
    return out


def _centroids(u, store: ResultStore, split: str):
    import torch

    a = load_analysis_v3(u.cfg, store)
    return None if a is None else torch.tensor(a[split]["centroids"], dtype=torch.float64)


def eta_frame(p: PlanV3, store: ResultStore, split: str = "test") -> pd.DataFrame:
    """Diffusion indices (semantic sets, mean over target classes): kind "tau" (tau 1 -> tau1, same pair and seed)
    and kind "floor" (seed 0 -> seed 1, same pair and tau)."""
    from kdutils.chapters.ls_kd.diffusion import diffusion_index
    from kdutils.chapters.ls_kd.semantic_groups import semantic_groups

    sets = semantic_groups(DATASET).all_sets()
    students = {(u.ls, u.pair, u.tau, u.seed): u for u in p.finals("student") if u.matched is None}
    seeds = recipe_v3(p.profile).student_seeds
    rows = []

    def add(kind, ls, pair, tau1, seed, u0, u1):
        c0, c1 = _centroids(u0, store, split), _centroids(u1, store, split)
        if c0 is None or c1 is None:
            return
        idx = [diffusion_index(c0, c1, t, s, d) for t, (s, d) in sets.items()]
        rows.append({"kind": kind, "ls": ls, "pair": pair, "tau1": tau1, "seed": seed, "split": split,
                     "eta_similar": float(np.mean([i.eta_similar for i in idx])),
                     "eta_dissimilar": float(np.mean([i.eta_dissimilar for i in idx]))})

    for (ls, pair, tau, seed), u in students.items():
        if tau in cv3.HIGH_TAUS and (ls, pair, 1.0, seed) in students:
            add("tau", ls, pair, tau, seed, students[(ls, pair, 1.0, seed)], u)
        if seed == seeds[0] and len(seeds) > 1 and (ls, pair, tau, seeds[1]) in students:
            add("floor", ls, pair, tau, None, u, students[(ls, pair, tau, seeds[1])])
    return pd.DataFrame(rows)


def eta_table(p: PlanV3, store: ResultStore) -> pd.DataFrame:
    """Per split, teacher and tau1: eta_similar (two-level interval) beside the noise floor at tau1 (RMS of the
    seed-to-seed etas at the same tau and rate) and beside the floor at tau = 1."""
    rows = []
    for split in ("test", "train"):
        e = eta_frame(p, store, split)
        if e.empty:
            continue
        for (ls, tau1), g in e[e.kind == "tau"].groupby(["ls", "tau1"]):
            res = nested_interval({(r.pair, r.seed): r.eta_similar for r in g.itertuples()})
            fl = e[(e.kind == "floor") & (e.ls == ls) & (e.tau1 == tau1)].eta_similar
            rows.append({"split": split, "teacher": f"LS {ls:g}", "tau": f"1 -> {tau1:g}",
                         "eta_similar (%)": res.describe("%", 2),
                         "eta_dissimilar (%)": f"{g.eta_dissimilar.mean():+.2f}",
                         "noise floor at this tau (RMS %)": f"{math.sqrt(float((fl ** 2).mean())):.2f}" if len(fl)
                         else "n/a"})
    return pd.DataFrame(rows)


def separation_of(u, store: ResultStore, split: str = "test") -> dict[str, float] | None:
    import torch

    from kdutils.chapters.ls_kd.semantic_groups import semantic_groups
    from kdutils.chapters.ls_kd.separation import mean_separation

    a = load_analysis_v3(u.cfg, store)
    if a is None:
        return None
    return mean_separation(torch.tensor(a[split]["centroids"], dtype=torch.float64),
                           torch.tensor(a[split]["spreads"], dtype=torch.float64),
                           semantic_groups(DATASET).all_sets())


def separation_table(p: PlanV3, store: ResultStore) -> pd.DataFrame:
    """Similar- and dissimilar-pair separation (centroid distance in units of the pooled class spread) of the
    teachers and their tau = 1 students, per LS value and split: mean over teacher pairs (and student seeds)."""
    rows = []
    for split in ("test", "train"):
        for kind in ("teacher", "student"):
            for ls in recipe_v3(p.profile).ls_values:
                us = [u for u in p.finals(kind) if u.ls == ls and (kind == "teacher" or (u.tau == 1.0 and
                                                                                          u.matched is None))]
                seps = [s for u in us if (s := separation_of(u, store, split)) is not None]
                if seps:
                    rows.append({"split": split, "model": f"{kind}s" if kind == "teacher" else "students, tau 1",
                                 "teacher LS": f"{ls:g}", "n": len(seps),
                                 "similar pairs": f"{np.mean([x['similar'] for x in seps]):.3f}",
                                 "dissimilar pairs": f"{np.mean([x['dissimilar'] for x in seps]):.3f}"})
    return pd.DataFrame(rows)


def page_sections(profile: str, store: ResultStore | None = None) -> list[tuple[str, Any]]:
    """What the report page shows for recipe v3, in order: (heading, markdown text or table), ready for the
    notebook to display once v3's records exist (until then a single "not yet run" section)."""
    store = store or ResultStore()
    p = build(profile, store)
    r = recipe_v3(profile)
    if p.common_lr is None or not p.finals("student"):
        missing = ", ".join(p.missing) or "its runs"
        return [("Recipe v3", f"Recipe v3 is not recorded yet at profile `{profile}` (missing: {missing}). Run "
                              f"`python -m kdutils.chapters.ls_kd.run_v3 --profile {profile} --shard 1/2` and "
                              "`--shard 2/2`.")]
    return [("Recipe v3", f"{r.notes}. Common student rate: {p.common_lr:g} (validation choice of the first plain "
                          "teacher's tau = 1 arm)."),
            ("Diffusion index with its noise floor (test and training splits)", eta_table(p, store)),
            ("Class separation of teachers and tau = 1 students", separation_table(p, store)),
            ("Not run", not_run_markdown(profile))]


def _scale(p: PlanV3, df: pd.DataFrame) -> str:
    r = recipe_v3(p.profile)
    return (f"profile `{p.profile}`, recipe v3: Fashion-MNIST ({r.n_train or 60000:,} training images), "
            f"{len(r.teacher_seeds)} {r.teacher_model} teachers per LS value -> {r.student_model} "
            f"{r.student_kwargs.get('widths', '')} students, {len(r.student_seeds)} seeds per teacher, one rate "
            f"({p.common_lr:g})" if p.common_lr else f"profile `{p.profile}`, recipe v3 (not yet run)")


def _inputs(p: PlanV3, df: pd.DataFrame, store: ResultStore) -> dict[str, Any]:
    """Everything the claims read, keyed (teacher pair, student seed) where a student is the unit."""
    acc = acc_maps(df)
    e = eta_frame(p, store, "test")
    tau_rows = e[e.kind == "tau"] if not e.empty else e
    eta = {t: {(r.pair, r.seed): r.eta_similar for r in tau_rows[(tau_rows.ls == 0.1) & (tau_rows.tau1 == t)]
               .itertuples()} for t in cv3.HIGH_TAUS} if not e.empty else {}
    units = []  # (pair, seed, eta_similar, accuracy drop from tau = 1)
    for r in tau_rows.itertuples() if not e.empty else ():
        a1, at = acc.get((r.ls, 1.0), {}).get((r.pair, r.seed)), acc.get((r.ls, r.tau1), {}).get((r.pair, r.seed))
        if a1 is not None and at is not None:
            units.append((r.pair, r.seed, r.eta_similar, a1 - at))
    sep: dict[float, dict] = {}
    for u in p.finals("student"):
        if u.tau == 1.0 and u.matched is None and (s := separation_of(u, store)) is not None:
            ls, pair = u.teacher_of
            sep.setdefault(ls, {})[(pair, u.seed)] = s["similar"]
    students = df[df.kind == "student"]
    m_plain = {t: {(r.pair, r.seed): r.accuracy for r in students[students.matched == t].itertuples()}
               for t in cv3.MATCHED}
    for t in cv3.MATCHED:  # tau* may fall on the tau grid: then that arm is the matched one
        for pair, match in p.matched.items():
            if match.get(t) in recipe_v3(p.profile).taus:
                m_plain[t].update({k: v for k, v in acc.get((0.0, match[t]), {}).items() if k[0] == pair})
    floors = e[e.kind == "floor"] if not e.empty else e
    return {"acc": acc, "eta": eta, "units": units, "sep": sep, "m_plain": m_plain, "floors": floors}


def _only(scores: dict, seeds: set | None) -> dict:
    return scores if seeds is None else {k: v for k, v in scores.items() if k[1] in seeds}


def _judgements(x: dict[str, Any], gates: list, g_inherit: list, seeds: set | None = None) -> list:
    """Every v3 claim judged on the units of student ``seeds`` (None: all), in the page's order."""
    acc = {k: _only(v, seeds) for k, v in x["acc"].items()}
    eta = {k: _only(v, seeds) for k, v in x["eta"].items()}
    units: dict[int, list] = {}
    for pair, seed, e, drop in x["units"]:
        if seeds is None or seed in seeds:
            units.setdefault(pair, []).append((e, drop))
    m_plain = {k: _only(v, seeds) for k, v in x["m_plain"].items()}
    m_ls = {t: acc.get((0.1, t), {}) for t in cv3.MATCHED}
    others = {f"LS {ls:g}, tau {t:g}": v for (ls, t), v in acc.items() if (ls, t) != (0.1, 1.0)}
    others.update({f"LS 0, tau* of LS tau {t:g}": v for t, v in m_plain.items() if v})
    others = dict(sorted(others.items()))
    sep = {ls: _only(v, seeds) for ls, v in x["sep"].items()}
    return [cv3.judged(cv3.SAME_TAU, cv3.same_tau_findings(acc), gates),
            cv3.judged(cv3.DIFFUSION, cv3.diffusion_findings(eta), gates),
            cv3.judged(cv3.CAUSAL, cv3.causal_finding(units), gates),
            cv3.judged(cv3.INHERIT, cv3.inherit_finding(sep.get(0.1, {}), sep.get(0.0, {})), g_inherit),
            cv3.judged(cv3.matched_claim(), cv3.matched_findings(m_ls, m_plain), gates),
            cv3.judged(cv3.practitioner_claim(list(others)), cv3.practitioner_findings(acc.get((0.1, 1.0), {}), others),
                       gates),
            cv3.judged(cv3.DROP, cv3.drop_findings(acc), gates)]


def verdicts(profile: str, store: ResultStore | None = None) -> list[Verdict]:
    """Every v3 claim's verdict from the records (NOT_YET_RUN where its runs are missing), each recomputed on
    each student seed alone (the stability check: one seed per teacher pair, the teacher variance kept)."""
    from kdutils.verdicts.rules import Stability

    store = store or ResultStore()
    p = build(profile, store)
    df = frame(p, store)
    scale = _scale(p, df)
    claims = (cv3.SAME_TAU, cv3.DIFFUSION, cv3.CAUSAL, cv3.INHERIT, cv3.matched_claim(), cv3.practitioner_claim([]),
              cv3.DROP)
    students = df[df.kind.isin(["student", "alone"])] if not df.empty else df
    if students.empty or p.common_lr is None:  # no comparison of this attempt can be made yet
        earlier = _earlier_gate(profile, store)
        if earlier is not None:  # the last attempt that ran failed a gate: that is what the records say
            r_old, gate = earlier
            return [to_verdict(judge(c, [], [gate]), f"Attempt {r_old.attempt} ({r_old.notes}) failed this gate, so "
                               f"the scale changed; attempt {recipe_v3(profile).attempt} is not fully recorded yet (no student; "
                               "the chapter page gives the commands that resume it).",
                               f"profile `{profile}`, recipe v3 attempt {r_old.attempt}: Fashion-MNIST "
                               f"({r_old.n_train:,} training images), {len(r_old.teacher_seeds)} teachers per LS value")
                    for c in claims]
        return [Verdict(c.text, NOT_YET_RUN, "recipe v3 is not recorded yet", scale, scored=c.scored) for c in claims]
    gates = _gates(p, df, store)
    t_sep = {u.teacher_of: s["similar"] for u in p.finals("teacher") if (s := separation_of(u, store)) is not None}
    g_inherit = gates + [cv3.gate_teachers_enlarge(t_sep)]
    x = _inputs(p, df, store)
    full = _judgements(x, gates, g_inherit)
    seeds = sorted(recipe_v3(profile).student_seeds)
    halves = [_judgements(x, gates, g_inherit, {s}) for s in seeds[:2]] if len(seeds) >= 2 else []
    fl = x["floors"]
    floor = ("Noise floor of the diffusion index (seed 0 -> seed 1 at the same tau and rate, RMS over teacher pairs "
             "and LS values): " + ", ".join(f"tau {t:g}: {math.sqrt(float((g.eta_similar ** 2).mean())):.2f}%"
                                            for t, g in fl.groupby("tau1")) + "." if len(fl) else "")
    evidence = {1: floor}
    out = []
    for n, j in enumerate(full):
        stab = None
        if halves and j.label not in (NOT_YET_RUN,):
            stab = Stability(j.label, halves[0][n].label, halves[1][n].label, (seeds[0],), (seeds[1],))
        effect = "; ".join(f"{f.key}: {f.effect}" for f in j.parts if f.effect)  # the scorecard's effect column
        out.append(to_verdict(j, evidence.get(n, ""), scale, effect, stability_=stab))
    return out


def earlier_teacher_records(r: RecipeV3, store: ResultStore) -> list[tuple[float, int, dict]]:
    """(ls, pair, record) of the final teachers of an earlier attempt ``r``, found by their recorded configs (data
    size, model, widths, epochs and seeds): an earlier attempt is shown, never rerun."""
    out = []
    for rec in store.records(EXPERIMENT):
        c = rec.get("config", {})
        if (c.get("role") == "teacher" and c.get("data", {}).get("n_train") == r.n_train
                and c.get("model") == r.teacher_model and (c.get("model_kwargs") or {}) == dict(r.teacher_kwargs)
                and c.get("train", {}).get("epochs") == r.teacher_epochs and c.get("seed") in r.teacher_seeds
                and float(c.get("label_smoothing", 0.0)) in r.ls_values):
            out.append((float(c.get("label_smoothing", 0.0)), int(c["seed"]), rec))
    return sorted(out, key=lambda x: (x[0], x[1]))


def _earlier_gate(profile: str, store: ResultStore) -> tuple[Any, Any] | None:
    """(recipe, failed convergence gate) of the latest earlier attempt at ``profile`` whose teachers are recorded
    and failed it; None if there is none."""
    for r in reversed(EARLIER_V3.get(profile, ())):
        teachers = earlier_teacher_records(r, store)
        if teachers:
            gate = cv3.gate_converged({(ls, pair): rec.get("history") or [] for ls, pair, rec in teachers})
            return (r, gate) if not gate.passed else None
    return None


def _gates(p: PlanV3, df: pd.DataFrame, store: ResultStore) -> list:
    teachers = {(r.ls, r.pair): r.accuracy for r in df[df.kind == "teacher"].itertuples()}
    alone = {r.seed: r.accuracy for r in df[df.kind == "alone"].itertuples()}
    n_test = int(df.n_test.dropna().iloc[0]) if df.n_test.notna().any() else 10_000
    mean_alone = float(np.mean(list(alone.values()))) if alone else 90.0
    gap = 100.0 * min_testable_gap(1.0 - mean_alone / 100.0, n_test)
    ent: dict[float, dict[int, float]] = {}
    for u in p.finals("teacher"):
        a: dict[str, Any] = load_analysis(u.cfg, store) or {}
        if "entropy" in a:
            ls, pair = u.teacher_of
            ent.setdefault(ls, {})[pair] = a["entropy"]["1"]
    students = df[df.kind.isin(["student", "alone"])]
    rates: dict[str, list[float]] = {u.arm: [] for u in students.unit}
    for u in students.unit:
        rates[u.arm].append(u.cfg.train.lr)
    counts = {ls: sum(1 for (l2, _) in teachers if l2 == ls) for ls in recipe_v3(p.profile).ls_values}
    histories = {u.teacher_of: rec.get("history") or [] for u in p.finals("teacher")
                 if (rec := store.get(u.cfg)) is not None}
    return [cv3.gate_converged(histories), cv3.gate_teachers(teachers, alone, gap),
            cv3.gate_smooths(ent.get(0.0, {}), ent.get(0.1, {})),
            cv3.gate_one_rate(rates), cv3.gate_teacher_count(counts)]


#: Paper claims recipe v3 does not run, with the reason the page gives (LS 0.2 comes from the recipe).
NOT_RUN = {
    "compact students (MobileNetV2, EfficientNet-B0; Table 4, B.3)": "one student family fits the CPU budget",
    "feature-based KD degrades at larger tau (Heo et al.; Table B.5)": "needs a feature-distillation loss the "
    "package does not have, and a fourth arm per teacher",
    "neural machine translation (IWSLT; Tables 5, B.2)": "no translation data or model here",
}


def not_run_markdown(profile: str) -> str:
    """The paper's claims that recipe v3 leaves out, each with its reason."""
    items = {f"LS {ls:g} (Supplementary J: a weaker teacher, a worse student at high tau)": why
             for ls, why in recipe_v3(profile).not_run.items()}
    items.update(NOT_RUN)
    return "Not run at this profile:\n\n" + "\n".join(f"- **{k}**: {v}." for k, v in items.items())


__all__ = ["NOT_RUN", "earlier_teacher_records", "not_run_markdown", "page_sections", "separation_table", "acc_maps", "eta_frame", "eta_table", "frame", "separation_of", "verdicts"]
