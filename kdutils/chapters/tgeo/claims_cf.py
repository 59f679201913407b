"""The claims judged on the cross-fitted recipe (`recipe_cf`), declared with the shared rules (`kdutils.verdicts`):
direction, pre-registered minimum effect, parts and core, gates. Declared before its runs.

Kept beside `claims.py` (the first recipe's verdicts, being ported to the shared rules on another branch) so that
the two can be merged without touching each other; `chapter_verdicts` of the chapter still shows the first
recipe's verdicts until these records exist. The judge functions take plain per-seed scores (arm -> seed ->
test accuracy), so synthetic cases test them; `cf_verdicts` reads the records.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from kdutils.chapters.tgeo.recipe_cf import MIN_EFFECT
from kdutils.verdicts import gates as g
from kdutils.verdicts.rules import Claim, Finding, Judgement, compare, find, judge
from kdutils.verdicts.stats import paired_difference, t_interval
from kdutils.verdicts.verdict import NOT_TESTABLE, Verdict

Scores = Mapping[str, Mapping[int, float]]  # arm -> seed -> test accuracy (fraction)

#: KD must beat the student alone by more than this (vanilla KD chosen on validation minus alone, whole 95%
#: interval above it) before any claim about a better fusion ratio is judged.
ROOM_MARGIN = 0.01
PTS = "pts"


def _pts(iv) -> str:
    return iv.describe(PTS, scale=100, digits=2)


def _part(key: str, text: str, direction: str = "greater", min_effect: float = MIN_EFFECT,
          source: str = "the paper's gains over its strongest baseline (+0.94, +1.10 pts on ImageNet), capped at "
                        "+0.5 pts") -> Claim:
    return Claim(text, direction, min_effect, unit="accuracy", source=source, key=key)


COMPARISON = Claim(
    "TGeo-KD beats vanilla KD (alpha chosen on validation) and every sample-wise baseline (ANL-, ADA-, WLS-, "
    "RW-KD) in student accuracy.", min_effect=MIN_EFFECT, unit="accuracy",
    parts=(_part("vanilla", "TGeo-KD minus vanilla KD"), _part("anl", "TGeo-KD minus ANL-KD"),
           _part("ada", "TGeo-KD minus ADA-KD"), _part("wls", "TGeo-KD minus WLS-KD"),
           _part("rw", "TGeo-KD minus RW-KD (free per-sample alpha, not Lu et al.'s meta-learner)")),
    core=("vanilla",), gates=("KD has room",))
GAP = Claim("The gain over vanilla KD grows with the teacher-student gap (smaller student, larger gain).",
            "greater", 0.0, unit="accuracy", source="the paper names no size for the growth; any growth counts",
            gates=("KD has room",), key="gap")
HETERO = Claim("The gain holds for heterogeneous pairs: a convolutional teacher to an MLP student and to a "
               "convolutional student.", min_effect=MIN_EFFECT, unit="accuracy",
               parts=(_part("conv_to_mlp", "ResNet-8 -> MLP: TGeo-KD minus vanilla KD"),
                      _part("conv_to_conv", "ResNet-8 -> conv student: TGeo-KD minus vanilla KD")),
               gates=("KD has room",))
INTER = Claim("The inter-sample vertex (the class-mean teacher prediction) is what handles misleading teacher "
              "predictions: adding it to the intra-sample triangle improves the student.", min_effect=MIN_EFFECT,
              unit="accuracy", parts=(_part("both_minus_intra", "TGeo-KD (intra + inter) minus intra only"),
                                      _part("inter_minus_intra", "TGeo-KD (inter only) minus intra only")),
              core=("both_minus_intra",), gates=("KD has room",))
CONTROLS = Claim("(Chapter's control, not a paper claim.) The sample-wise geometry does work: TGeo-KD beats one "
                 "learned alpha for all samples (constant-input f_w) and f_w frozen at its initialisation.",
                 min_effect=MIN_EFFECT, unit="accuracy",
                 parts=(_part("vs_constant", "TGeo-KD minus the constant-input f_w"),
                        _part("vs_frozen", "TGeo-KD minus f_w frozen at init")), gates=("KD has room",), scored=False)
PREMISE = Claim("(Chapter's premise check, not a paper claim.) The learned alpha_i is lower where the teacher "
                "is wrong, and rises with the student-teacher distance where it is right, on held-out samples.",
                parts=(Claim("mean alpha (teacher wrong) minus (teacher right), held-out", "less", key="wrong_lower"),
                       Claim("Spearman (average ranks) of alpha_i with ST_i where the teacher is right, held-out",
                             "greater", key="rises_with_st")),
                scored=False)
MOTIVATION = Claim(
    "Motivation experiment: where the teacher is right, a larger student-teacher distance favours a larger KD "
    "weight; where it is wrong, a smaller KD weight is better (held-out samples are the core; on training samples less "
    "KD fits the labels better trivially, so they are parts, not the core).",
    parts=(Claim("teacher right: trend over ST groups of the accuracy-vs-alpha slope (held-out)", key="right_heldout"),
           Claim("teacher wrong: mean accuracy-vs-alpha slope (held-out)", "less", key="wrong_heldout"),
           Claim("teacher right, training samples", key="right_train"),
           Claim("teacher wrong, training samples", "less", key="wrong_train")),
    core=("right_heldout", "wrong_heldout"))
TABULAR_REASON = ("HIL and Criteo are not on this machine (no network; the data root holds MNIST, Fashion-MNIST and "
                  "ModelNet40 only), and the paper's 12-layer -> 4-layer BERT pairs are beyond a CPU budget; no small "
                  "real tabular data set is at hand offline")
TABULAR = Claim("Table 3: best accuracy, AUC and NLL on HIL and Criteo, p <= 0.01 against the strongest baseline.")
CLAIMS_CF = (MOTIVATION, COMPARISON, GAP, HETERO, INTER, TABULAR, CONTROLS, PREMISE)


# ---- gates --------------------------------------------------------------------------------------------------
def room_gate(scores: Scores, vanilla: str, alone: str = "alone") -> g.Gate:
    """KD has room: vanilla KD (the arm chosen on validation) minus the student alone, whole interval above
    ROOM_MARGIN."""
    return g.has_room(paired_difference(scores.get(vanilla, {}), scores.get(alone, {})), ROOM_MARGIN)


def _cmp(part: Claim, a: Mapping[int, float], b: Mapping[int, float]) -> Finding:
    return compare(part, a, b, _pts)


# ---- judges on per-seed scores ------------------------------------------------------------------------------
def judge_comparison(scores: Scores, vanilla: str, method: str = "tgeo_both") -> Judgement:
    others = {"vanilla": vanilla, "anl": "anl", "ada": "ada", "wls": "wls", "rw": "rw"}
    fs = [_cmp(COMPARISON.part(k), scores.get(method, {}), scores.get(a, {})) for k, a in others.items()]
    return judge(COMPARISON, fs, [room_gate(scores, vanilla)])


def judge_gap(small: Scores, large: Scores, vanilla: str, room: g.Gate, method: str = "tgeo_both") -> Judgement:
    """Per seed, (TGeo minus vanilla) at the smallest student minus the same at the largest."""
    d = lambda s: {k: s[method][k] - s[vanilla][k] for k in set(s.get(method, {})) & set(s.get(vanilla, {}))}  # noqa: E731
    return judge(GAP, compare(GAP, d(small), d(large), _pts), [room])


def judge_hetero(mlp: Scores, conv: Scores, vanilla: str, room: g.Gate, method: str = "tgeo_both") -> Judgement:
    fs = [_cmp(HETERO.part("conv_to_mlp"), mlp.get(method, {}), mlp.get(vanilla, {})),
          _cmp(HETERO.part("conv_to_conv"), conv.get(method, {}), conv.get(vanilla, {}))]
    return judge(HETERO, fs, [room])


def judge_inter(scores: Scores, room: g.Gate) -> Judgement:
    fs = [_cmp(INTER.part("both_minus_intra"), scores.get("tgeo_both", {}), scores.get("tgeo_intra", {})),
          _cmp(INTER.part("inter_minus_intra"), scores.get("tgeo_inter", {}), scores.get("tgeo_intra", {}))]
    return judge(INTER, fs, [room])


def judge_controls(scores: Scores, room: g.Gate) -> Judgement:
    fs = [_cmp(CONTROLS.part("vs_constant"), scores.get("tgeo_both", {}), scores.get("tgeo_const", {})),
          _cmp(CONTROLS.part("vs_frozen"), scores.get("tgeo_both", {}), scores.get("tgeo_frozen", {}))]
    return judge(CONTROLS, fs, [room])


def judge_premise(wrong_minus_right: list[float], spearman_right: list[float]) -> Judgement:
    """Per-seed statistics of the learned alpha_i on held-out samples (`runs.heldout_alpha_evidence`)."""
    fs = [find(PREMISE.part("wrong_lower"), t_interval(wrong_minus_right)),
          find(PREMISE.part("rises_with_st"), t_interval(spearman_right))]
    return judge(PREMISE, fs)


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


def judge_motivation(train: list[tuple[float, float]], heldout: list[tuple[float, float]]) -> Judgement:
    fs = [find(MOTIVATION.part("right_heldout"), t_interval([t for t, _ in heldout])),
          find(MOTIVATION.part("wrong_heldout"), t_interval([w for _, w in heldout])),
          find(MOTIVATION.part("right_train"), t_interval([t for t, _ in train])),
          find(MOTIVATION.part("wrong_train"), t_interval([w for _, w in train]))]
    return judge(MOTIVATION, fs)


def tabular_verdict() -> Verdict:
    return Verdict(TABULAR.text, NOT_TESTABLE, TABULAR_REASON + ".", "not run", reason=TABULAR_REASON)


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
        return CHANCE_ACCURACY
    return float(rec["metrics"]["accuracy"])


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
        return [Verdict(c.text, NOT_YET_RUN, "The cross-fitted recipe's selections are not recorded yet.", scale)
                for c in CLAIMS_CF if c is not TABULAR] + [tabular_verdict()]
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
    out.append(to_verdict(judge_motivation(train, held), "Per-seed slopes of group accuracy on alpha.", scale))
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
            rho.append(h["spearman_right"])
    out.append(to_verdict(judge_premise(_finite(wmr), _finite(rho)), "Learned alpha_i on held-out samples.", scale))
    return out


__all__ = ["CLAIMS_CF", "COMPARISON", "CONTROLS", "GAP", "HETERO", "INTER", "MOTIVATION", "PREMISE", "ROOM_MARGIN",
           "TABULAR", "judge_comparison", "judge_controls", "judge_gap", "judge_hetero", "judge_inter",
           "judge_motivation", "judge_premise", "motivation_seed_stats", "room_gate", "tabular_verdict", "cf_verdicts"]
