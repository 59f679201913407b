"""The claims judged on the cross-fitted recipe (`recipe_cf`), declared with the shared rules (`kdutils.verdicts`):
direction, pre-registered minimum effect, parts and core, gates. Declared before its runs.

The declarations are in `claims.py` (the three claims judged on the first recipe, plus GAP, HETERO, INTER,
TABULAR and CONTROLS); this module judges them on the cross-fitted recipe's records. The chapter's
`chapter_verdicts` (the scorecard) shows the first recipe's verdicts until these records exist. The judge functions take plain per-seed scores (arm -> seed ->
test accuracy), so synthetic cases test them; `cf_verdicts` reads the records.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from kdutils.chapters.tgeo.claims import (ALPHA, COMPARISON, CONTROLS, DECLARED_CF, GAP, HETERO, INTER,
                                          MOTIVATION, ROOM_MARGIN, TABULAR, TABULAR_REASON)
from kdutils.verdicts import gates as g
from kdutils.verdicts.rules import Claim, Finding, Judgement, compare, find, judge
from kdutils.verdicts.stats import paired_difference, t_interval
from kdutils.verdicts.verdict import NOT_TESTABLE, Verdict

Scores = Mapping[str, Mapping[int, float]]  # arm -> seed -> test accuracy in pts (percent)
PTS = "pts"
CLAIMS_CF = DECLARED_CF
#: part key of COMPARISON (claims.PART_ARMS) -> the arm it compares with ("vanilla": the arm chosen on validation)
_COMPARED = {"vanilla KD": "vanilla", "ANL-KD": "anl", "ADA-KD": "ada", "WLS-KD": "wls", "RW-KD": "rw"}


def _pts(iv) -> str:
    return iv.describe(PTS, digits=2)


# ---- gates --------------------------------------------------------------------------------------------------
def room_gate(scores: Scores, vanilla: str, alone: str = "alone") -> g.Gate:
    """KD has room: vanilla KD (the arm chosen on validation) minus the student alone, whole interval above
    ROOM_MARGIN pts (`claims`)."""
    return g.has_room(paired_difference(scores.get(vanilla, {}), scores.get(alone, {})), ROOM_MARGIN)


def _cmp(part: Claim, a: Mapping[int, float], b: Mapping[int, float]) -> Finding:
    return compare(part, a, b, _pts)


# ---- judges on per-seed scores ------------------------------------------------------------------------------
def judge_comparison(scores: Scores, vanilla: str, method: str = "tgeo_both") -> Judgement:
    """The paper's claim 2 (`claims.COMPARISON`, every part core) on this recipe's arms."""
    fs = [_cmp(COMPARISON.part(k), scores.get(method, {}), scores.get(vanilla if a == "vanilla" else a, {}))
          for k, a in _COMPARED.items()]
    return judge(COMPARISON, fs, [room_gate(scores, vanilla)])


def judge_gap(small: Scores, large: Scores, vanilla: str, room: g.Gate, method: str = "tgeo_both") -> Judgement:
    """Per seed, (TGeo minus vanilla) at the smallest student minus the same at the largest."""
    d = lambda s: {k: s[method][k] - s[vanilla][k] for k in set(s.get(method, {})) & set(s.get(vanilla, {}))}  # noqa: E731
    return judge(GAP, compare(GAP, d(small), d(large), _pts), [room])


def judge_hetero(mlp: Scores, conv: Scores, vanilla: str, room: g.Gate, method: str = "tgeo_both") -> Judgement:
    fs = [_cmp(HETERO.part("conv -> MLP"), mlp.get(method, {}), mlp.get(vanilla, {})),
          _cmp(HETERO.part("conv -> conv"), conv.get(method, {}), conv.get(vanilla, {}))]
    return judge(HETERO, fs, [room])


def judge_inter(scores: Scores, room: g.Gate) -> Judgement:
    fs = [_cmp(INTER.part("both minus intra"), scores.get("tgeo_both", {}), scores.get("tgeo_intra", {})),
          _cmp(INTER.part("inter minus intra"), scores.get("tgeo_inter", {}), scores.get("tgeo_intra", {}))]
    return judge(INTER, fs, [room])


def judge_controls(scores: Scores, room: g.Gate) -> Judgement:
    fs = [_cmp(CONTROLS.part("vs constant input"), scores.get("tgeo_both", {}), scores.get("tgeo_const", {})),
          _cmp(CONTROLS.part("vs frozen"), scores.get("tgeo_both", {}), scores.get("tgeo_frozen", {}))]
    return judge(CONTROLS, fs, [room])


def judge_premise(wrong_minus_right: list[float], kendall_right: list[float]) -> Judgement:
    """The chapter's own check (`claims.ALPHA`, not scored) on per-seed statistics of the learned alpha_i on
    held-out samples (`runs.heldout_alpha_evidence`: Kendall's tau-b, ties handled)."""
    fs = [find(ALPHA.parts[0], t_interval(wrong_minus_right)), find(ALPHA.parts[1], t_interval(kendall_right))]
    return judge(ALPHA, fs)


def motivation_seed_stats(cells: Mapping[str, Mapping[float, float]]) -> tuple[float, float]:
    """One seed's (trend_right, slope_wrong) from group -> alpha -> accuracy: the least-squares slope of accuracy
    on alpha in each group; trend_right is the slope of those slopes over g1..g5 (ascending ST), slope_wrong their
    mean over g'1..g'5."""
    def slope(x, y) -> float:
        x, y = np.asarray(x, float), np.asarray(y, float)
        xc = x - x.mean()
        return float((xc * (y - y.mean())).sum() / (xc * xc).sum())
    per = {grp: slope(list(c), list(c.values())) for grp, c in cells.items()}
    right = [per[f"g{k}"] for k in range(1, 6)]
    wrong = [per[f"g'{k}"] for k in range(1, 6)]
    return slope(range(1, 6), right), float(np.mean(wrong))


def judge_motivation(seeds: list[tuple[float, float]]) -> Judgement:
    """`claims.MOTIVATION` on per-seed (trend_right, slope_wrong); the recipe judges it on held-out samples (on
    training samples less KD fits the labels better trivially) and shows the training-sample judgement beside."""
    fs = [find(MOTIVATION.parts[0], t_interval([t for t, _ in seeds])),
          find(MOTIVATION.parts[1], t_interval([w for _, w in seeds]))]
    return judge(MOTIVATION, fs)


def tabular_verdict() -> Verdict:
    return Verdict(TABULAR.text, NOT_TESTABLE, TABULAR_REASON[0].upper() + TABULAR_REASON[1:] + ".", "not run",
                   reason=TABULAR_REASON)


def _finite(vals) -> list[float]:
    return [float(v) for v in vals if v is not None and math.isfinite(float(v))]


# ---- from the records ---------------------------------------------------------------------------------------
def _acc(rec: dict | None) -> float | None:
    """A record's test accuracy; a failed run (diverged / at chance) scores at chance, as in every chapter."""
    from kdutils.chapters.tgeo.plan import CHANCE_ACCURACY
    from kdutils.verdicts.verdict import FAILED_STATUSES

    if rec is None:
        return None
    if rec.get("status") in FAILED_STATUSES:
        return 100.0 * CHANCE_ACCURACY
    return 100.0 * float(rec["metrics"]["accuracy"])


def _scores(by_arm: Mapping, store) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for arm, by_seed in by_arm.items():
        got = {s: _acc(store.get(c)) for s, c in by_seed.items()}
        out[arm] = {s: v for s, v in got.items() if v is not None}
    return out


def cf_verdicts(profile: str = "cpu", store=None) -> list[Verdict]:
    """One verdict per declared claim from the cross-fitted recipe's records ("not yet run" where they are
    missing). Nothing is trained."""
    from kdutils.chapters.tgeo import recipe_cf as rc
    from kdutils.chapters.tgeo.campaign import final_configs, resolved
    from kdutils.store.store import ResultStore
    from kdutils.verdicts.rules import to_verdict
    from kdutils.verdicts.verdict import NOT_YET_RUN

    store = store or ResultStore()
    res = resolved(profile, store)
    scale = f"profile `{profile}`, cross-fitted recipe ({rc.cf_recipe(profile).notes})"
    if res.teacher_lr is None or res.vanilla is None:
        return [tabular_verdict() if c is TABULAR else
                Verdict(c.text, NOT_YET_RUN, "The cross-fitted recipe's selections are not recorded yet.", scale,
                        scored=c.scored) for c in CLAIMS_CF]
    fc = final_configs(profile, res, rc.teacher_part0(profile, res.teacher_lr))
    main = _scores(fc["main"], store)
    v = res.vanilla
    room = room_gate(main, v)
    out = []
    train, held = [], []
    for s, (_, cont) in fc["motivation"].items():
        recs = {a: store.get(c) for a, c in cont.items()}
        if all(r is not None and r.get("motivation") for r in recs.values()):
            for where, acc in (("train", train), ("val", held)):
                cells = {grp: {a: float(r["motivation"][where][grp]) for a, r in recs.items()}
                         for grp in next(iter(recs.values()))["motivation"][where]}
                acc.append(motivation_seed_stats(cells))
    jt = judge_motivation(train)
    out.append(to_verdict(judge_motivation(held), "Held-out samples (the verdict); on training samples the same "
                          f"rule gives: {jt.label} ({jt.reason}).", scale))
    out.append(to_verdict(judge_comparison(main, v), f"Vanilla KD arm chosen on validation: {v}.", scale))
    widths = sorted(fc["capacity"], key=lambda t: int(t.split(":")[1].split("-")[0]))
    if widths:
        cap = {t: _scores(a, store) for t, a in fc["capacity"].items()}
        out.append(to_verdict(judge_gap(cap[widths[0]], cap[widths[-1]], v, room),
                              f"Smallest student {widths[0]}, largest {widths[-1]}.", scale))
    if fc["hetero"]:
        model = next(iter(fc["hetero"]))
        out.append(to_verdict(judge_hetero(main, _scores(fc["hetero"][model], store), v, room),
                              f"Convolutional student: {model}.", scale))
    out.append(to_verdict(judge_inter(main, room), "The intra / inter / both ablation.", scale))
    out.append(tabular_verdict())
    out.append(to_verdict(judge_controls(main, room), "Controls of f_w.", scale))
    wmr, rho = [], []
    for c in fc["main"]["tgeo_both"].values():
        h = ((store.get(c) or {}).get("tgeo") or {}).get("heldout") or {}
        if "wrong_minus_right" in h:
            wmr.append(h["wrong_minus_right"])
            rho.append(h["kendall_right"])
    out.append(to_verdict(judge_premise(_finite(wmr), _finite(rho)), "Learned alpha_i on held-out samples.", scale))
    return out


__all__ = ["CLAIMS_CF", "judge_comparison", "judge_controls", "judge_gap", "judge_hetero", "judge_inter",
           "judge_motivation", "judge_premise", "motivation_seed_stats", "room_gate", "tabular_verdict", "cf_verdicts"]
