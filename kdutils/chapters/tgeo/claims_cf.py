"""The claims judged on the cross-fitted recipe (`recipe_cf`), declared with the shared rules (`kdutils.verdicts`):
direction, pre-registered minimum effect, parts and core, gates. Declared before its runs.

The declarations are in `claims.py` (the three claims judged on the first recipe, plus GAP, HETERO, INTER,
TABULAR and CONTROLS); this module judges them on the cross-fitted recipe's records. The chapter's
`verdicts.chapter_verdicts` (the page's boxes, the scorecard) shows these verdicts once `cf_recorded` (the
selections and every main final recorded), and the first recipe's before; of the recipe's attempts
(`recipe_cf.ATTEMPTS`) the newest whose main result is decided (`shown_attempt`), the others beside it with their
outcome (`attempt_outcome`). The judge functions take plain
per-seed scores (arm -> seed -> test accuracy), so synthetic cases test them; `cf_verdicts` reads the records.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from kdutils.chapters.tgeo.claims import (ALPHA, COMPARISON, CONTROLS, DECLARED_CF, GAP, HETERO, INTER,
                                          MOTIVATION, ROOM_MARGIN, TABULAR, TABULAR_REASON)
from kdutils.chapters.tgeo.plan import ARM_LABELS
from kdutils.verdicts import gates as g
from kdutils.verdicts.rules import Claim, Finding, Judgement, compare, find, judge, subset
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
    wmr, tau = t_interval(wrong_minus_right), t_interval(kendall_right)
    fs = [find(ALPHA.parts[0], wmr, effect=wmr.describe(digits=3)), find(ALPHA.parts[1], tau, effect=tau.describe(digits=3))]
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
    trend, wrong = t_interval([t for t, _ in seeds]), t_interval([w for _, w in seeds])
    fs = [find(MOTIVATION.parts[0], trend, effect=trend.describe("pp per group", 2)),
          find(MOTIVATION.parts[1], wrong, effect=wrong.describe("pp per unit alpha", 1))]
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


def _configs(node: Any) -> list:
    """Every RunConfig inside a nest of dicts, tuples and lists (the shape of `campaign.final_configs`)."""
    if isinstance(node, Mapping):
        return [c for v in node.values() for c in _configs(v)]
    if isinstance(node, (tuple, list)):
        return [c for v in node for c in _configs(v)]
    return [node]


def _count(store, *nodes: Any) -> tuple[int, int]:
    """(recorded, planned) runs among the configs of `nodes`."""
    cfgs = [c for n in nodes for c in _configs(n)]
    return sum(store.get(c) is not None for c in cfgs), len(cfgs)


@dataclass(frozen=True)
class Progress:
    """How far the cross-fitted recipe's records go at a profile: whether its selections are decided (the
    teacher's rate and the vanilla arm chosen on validation), per group of finals (recorded, planned), and each
    student's KD-room gate (`gate.StudentGate`; the campaign runs a student's other arms only where it passes)."""

    selected: bool
    finals: dict[str, tuple[int, int]]
    gates: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """The main student's result is decided: its gate failed (so its other arms are not run at this scale), or
        every arm at every seed is recorded (the other students may still be running)."""
        done, total = self.finals.get("main", (0, 0))
        main = self.gates.get("main")
        no_room = main is not None and main.decided and not main.passed
        return self.selected and total > 0 and (done == total or no_room)

    def describe(self) -> str:
        if not self.selected:
            return "its selection runs (the teacher's rate, every arm's rates) are not all recorded yet"
        return ("recorded finals: " + ", ".join(f"{g} {d} of {t}" for g, (d, t) in self.finals.items())
                + "; KD-room gates: " + "; ".join(x.describe() for x in self.gates.values()))


def progress(profile: str = "cpu", store=None, attempt: int = 1) -> Progress:
    """The cross-fitted recipe's records at `profile`, attempt `attempt` (nothing is trained)."""
    from kdutils.chapters.tgeo import recipe_cf as rc
    from kdutils.chapters.tgeo.campaign import final_configs, resolved
    from kdutils.store.store import ResultStore

    from kdutils.chapters.tgeo.gate import room_gates

    store = store or ResultStore()
    res = resolved(profile, store, attempt)
    if res.teacher_lr is None or res.vanilla is None:
        return Progress(False, {})
    fc = final_configs(profile, res, rc.teacher_config(profile, res.teacher_lr, attempt))
    return Progress(True, {g: _count(store, fc[g]) for g in ("main", "capacity", "hetero", "motivation")},
                    {x.student: x for x in room_gates(fc, res.vanilla, store)})


def cf_recorded(profile: str = "cpu", store=None, attempt: int = 1) -> bool:
    """Does the chapter show this recipe as its main result? Yes once its selections are decided and the main
    student's result is (`Progress.complete`: every arm at every seed recorded, or its KD-room gate failed, which
    is then the result): a half-recorded recipe never replaces the first one."""
    return progress(profile, store, attempt).complete


def shown_attempt(profile: str = "cpu", store=None) -> int | None:
    """The attempt the chapter shows as its main result: the newest whose main student's result is decided
    (`Progress.complete`: its KD-room gate failed, or it passed and every main final is recorded; a half-recorded
    attempt never replaces a decided one); None while no attempt's is (the first recipe's verdicts)."""
    from kdutils.chapters.tgeo import recipe_cf as rc

    for attempt in sorted(rc.ATTEMPTS, reverse=True):
        if progress(profile, store, attempt).complete:
            return attempt
    return None


def attempt_outcome(profile: str, store, attempt: int) -> str:
    """One phrase for an attempt beside the main one: "not testable at this scale" when its main student's KD-room
    gate failed, "gate passed" when it passed, "in progress" once its own teacher is recorded (the teacher's rate
    selection is shared by all attempts, so it does not count), else "not yet run"."""
    from kdutils.chapters.tgeo import recipe_cf as rc
    from kdutils.chapters.tgeo.campaign import resolved

    pr = progress(profile, store, attempt)
    main = pr.gates.get("main")
    if not pr.selected:
        lr = resolved(profile, store, attempt).teacher_lr
        started = lr is not None and store.get(rc.teacher_config(profile, lr, attempt)) is not None
        return "in progress (its selection runs are not all recorded)" if started else "not yet run"
    if main is None or not main.decided:
        return "in progress (its KD-room gate is not decided yet)"
    return "gate passed" if main.passed else "not testable at this scale"


def attempts_sentence(profile: str, store, shown: int) -> str:
    """The attempts other than `shown`, each with its name and outcome (`attempt_outcome`)."""
    from kdutils.chapters.tgeo import recipe_cf as rc

    return "; ".join(f"attempt {a} ({rc.ATTEMPTS[a][0]}): {attempt_outcome(profile, store, a)}"
                     for a in sorted(rc.ATTEMPTS) if a != shown)


def cf_records(profile: str, store, attempt: int = 1) -> list[dict]:
    """This recipe's records at `profile`, attempt `attempt`: its teachers (their lr candidates, shared by the
    attempts, and the cross-fitted parts or the held-out teacher) and every student whose key holds that attempt's
    teacher logits."""
    from kdutils.chapters.tgeo import recipe_cf as rc
    from kdutils.chapters.tgeo.plan import EXPERIMENT

    logits = rc.cf_recipe(profile, attempt).teacher_logits
    teacher = "cf_teacher" if logits == "crossfit" else "ho_teacher"
    out = []
    for rec in store.records(EXPERIMENT):
        c = rec.get("config") or {}
        spec = (c.get("model_kwargs") or {}).get("arm_spec") or {}
        role = str(c.get("role", ""))
        if c.get("profile") == profile and (teacher in role or "select:cf_teacher" in role
                                            or spec.get("teacher_logits") == logits):
            out.append(rec)
    return out


def _scale(profile: str, recs: list[dict], attempt: int = 1) -> str:
    from kdutils.chapters.tgeo import recipe_cf as rc
    from kdutils.report.present import short_device

    r = rc.cf_recipe(profile, attempt)
    devices = sorted({short_device(d) for rec in recs if (d := (rec.get("provenance") or {}).get("device"))})
    train = "all" if r.n_train is None else f"{r.n_train:,}"
    teachers = (f"{r.k_folds} {r.teacher} teachers cross-fitted on {r.k_folds} folds" if r.teacher_logits == "crossfit"
                else f"one {r.teacher} teacher on {r.teacher_pool:,} other training images (held out from the student)")
    name = "cross-fitted recipe" + ("" if attempt == 1 else f", attempt {attempt} ({rc.ATTEMPTS[attempt][0]})")
    return (f"profile `{profile}`, {name}: Fashion-MNIST ({train} labelled training images, "
            f"{r.val_size:,} validation images held out), {teachers} -> MLP {r.student_kwargs.get('hidden')} "
            f"student, {len(r.seeds)} seeds, {', '.join(devices) or 'device unknown'}")


def _students_by_width(profile: str, fc: Mapping, vanilla: str, attempt: int = 1) -> dict[int, tuple[str, dict]]:
    """MLP width -> (student name as `gate.students` gives it, {arm: {seed: cfg}}) for the arms the gap claim
    compares: the capacity runs and the main student."""
    from kdutils.chapters.tgeo import recipe_cf as rc

    out = {int(t.split(":")[1].split("-")[0]): (t, arms) for t, arms in fc["capacity"].items()}
    hidden = rc.cf_recipe(profile, attempt).student_kwargs.get("hidden") or []
    if len(hidden) == 1 and hidden[0] not in out:
        out[int(hidden[0])] = ("main", {a: fc["main"][a] for a in ("alone", vanilla, "tgeo_both")})
    return out


def _effect(j: Judgement) -> str:
    return "; ".join(f"{p.key}: {p.effect}" for p in j.parts if p.effect)


def _sub(scores: Scores, keys) -> dict[str, dict[int, float]]:
    return {a: subset(s, keys) for a, s in scores.items()}


def cf_verdicts(profile: str = "cpu", store=None, partial: bool = False, attempt: int = 1) -> list[Verdict]:
    """One verdict per declared claim (`CLAIMS_CF`, in order) from the cross-fitted recipe's records. A claim
    whose runs are not all recorded is "not yet run", naming how many are; with `partial` it is judged on what
    is recorded instead and its evidence says so (a preliminary look while the campaign runs, never the page).
    An attempt after the first names the others' outcomes in its scale line (`attempts_sentence`). Nothing is
    trained."""
    from kdutils.chapters.tgeo import recipe_cf as rc
    from kdutils.chapters.tgeo.campaign import final_configs, resolved
    from kdutils.store.provenance import code_status_sentence
    from kdutils.store.store import ResultStore
    from kdutils.verdicts.rules import stability, to_verdict
    from kdutils.verdicts.verdict import NOT_YET_RUN

    store = store or ResultStore()
    recs = cf_records(profile, store, attempt)
    scale, code = _scale(profile, recs, attempt), code_status_sentence(recs)
    if attempt > 1:
        scale += f" (beside it {attempts_sentence(profile, store, attempt)})"
    res = resolved(profile, store, attempt)
    if res.teacher_lr is None or res.vanilla is None:
        return [tabular_verdict() if c is TABULAR else
                Verdict(c.text, NOT_YET_RUN, "The cross-fitted recipe's selections are not recorded yet.", scale,
                        scored=c.scored) for c in CLAIMS_CF]
    fc = final_configs(profile, res, rc.teacher_config(profile, res.teacher_lr, attempt))
    main, v = _scores(fc["main"], store), res.vanilla
    room_arms = {a: fc["main"][a] for a in ("alone", v)}
    room = room_gate(main, v)
    seeds = sorted(main.get("alone", {}))
    gates = progress(profile, store, attempt).gates

    def stab(label_on, full: str, keys=seeds):
        return None if full in (NOT_TESTABLE, NOT_YET_RUN) or len(keys) < 4 else stability(keys, label_on, full)

    def verdict(claim: Claim, nodes: tuple, make, students: tuple[str, ...] = ("main",)) -> Verdict:
        """`make()` -> (judgement, evidence, stability) once `nodes` are recorded (or with `partial`); while they
        are not, "not testable" when the KD-room gate of a student it needs has failed (the campaign does not run
        that student's other arms), else "not yet run"."""
        done, total = _count(store, *nodes)
        failed = [x for x in (gates.get(n) for n in students) if x is not None and x.decided and not x.passed]
        if done < total and not partial and failed:
            j = judge(claim, [], [replace(x.gate, name=f"KD has room ({x.student} student)") for x in failed])
            return to_verdict(j, f"Not run at this scale: the KD-room gate fails for the "
                              f"{', '.join(x.student for x in failed)} student{'s' if len(failed) > 1 else ''}, and the campaign trains a student's "
                              f"other arms only where KD has room ({done} of the {total} runs it would need are "
                              "recorded).", scale, "; ".join(x.describe() for x in failed), None, code)
        if done < total and not partial:
            return Verdict(claim.text, NOT_YET_RUN, f"{done} of the {total} runs it needs are recorded.", scale,
                           scored=claim.scored, code=code)
        j, evidence, st = make()
        pre = f"Preliminary: {done} of the {total} runs it needs are recorded. " if done < total else ""
        return to_verdict(j, pre + evidence, scale, _effect(j) or (j.parts[0].effect if j.parts else ""), st, code)

    def motivation():
        per = {"train": {}, "val": {}}
        for s, (_, cont) in fc["motivation"].items():
            got = {a: store.get(c) for a, c in cont.items()}
            if all(r is not None and r.get("motivation") for r in got.values()):
                for where in per:
                    first = next(iter(got.values()))["motivation"][where]
                    per[where][s] = motivation_seed_stats(
                        {grp: {a: float(r["motivation"][where][grp]) for a, r in got.items()} for grp in first})
        jt, jv = judge_motivation(list(per["train"].values())), judge_motivation(list(per["val"].values()))
        st = stab(lambda k: judge_motivation([x for s, x in per["val"].items() if s in k]).label, jv.label,
                  sorted(per["val"]))
        return jv, (f"Judged on held-out (validation) samples, grouped by each seed's alpha = 0.5 student; seeds whose "
                    f"continued runs all finished: {len(per['val'])} of {len(fc['motivation'])}. On the training samples (the poster's "
                    f"protocol, where less KD fits the labels trivially) the same rule gives: {jt.label} "
                    f"({_effect(jt)})."), st

    def comparison():
        j = judge_comparison(main, v)
        return j, (f"Vanilla KD is the arm chosen on validation ({ARM_LABELS.get(v, v)}); TGeo-KD (intra + inter) minus each arm in "
                   "test accuracy, paired over seeds; a failed run is scored at chance."), \
            stab(lambda k: judge_comparison(_sub(main, k), v).label, j.label)

    def gap(students: dict, small: int, large: int):
        cap = {w: _scores(students[w][1], store) for w in (small, large)}
        j = judge_gap(cap[small], cap[large], v, room)
        return j, (f"Per seed, (TGeo-KD minus vanilla KD) with the narrowest MLP student ({small} hidden units) "
                   f"minus the same with the widest ({large}); widths in the recipe: {sorted(students)}; the KD-room "
                   "gate is the main student's."), \
            stab(lambda k: judge_gap(_sub(cap[small], k), _sub(cap[large], k), v,
                                     room_gate(_sub(main, k), v)).label, j.label)

    def hetero(model: str):
        conv = _scores(fc["hetero"][model], store)
        j = judge_hetero(main, conv, v, room)
        return j, (f"ResNet-8 teacher{'s' if attempt == 1 else ''} to the main MLP student and to a convolutional "
                   f"student ({model}), TGeo-KD "
                   "minus vanilla KD paired over seeds."), \
            stab(lambda k: judge_hetero(_sub(main, k), _sub(conv, k), v, room_gate(_sub(main, k), v)).label,
                 j.label)

    def inter():
        j = judge_inter(main, room)
        return j, "The intra / inter / both ablation of f_w's input, paired over seeds.", \
            stab(lambda k: judge_inter(_sub(main, k), room_gate(_sub(main, k), v)).label, j.label)

    def controls():
        j = judge_controls(main, room)
        return j, ("The chapter's control of the method (not a claim of the poster): the same bilevel training with "
                   "f_w fed a constant (one learned alpha for all samples), and f_w frozen at its initialisation."), \
            stab(lambda k: judge_controls(_sub(main, k), room_gate(_sub(main, k), v)).label, j.label)

    def premise():
        held = {}
        for s, c in fc["main"]["tgeo_both"].items():
            h = ((store.get(c) or {}).get("tgeo") or {}).get("heldout") or {}
            if "wrong_minus_right" in h:
                held[s] = (h["wrong_minus_right"], h["kendall_right"])
        ok = {s: x for s, x in held.items() if all(_finite(x))}
        j = judge_premise([w for w, _ in ok.values()], [t for _, t in ok.values()])
        return j, (f"The chapter's own check of the method's premise (not a claim of the poster), on the learned "
                   f"alpha_i of held-out (validation) samples at the end of training, {len(ok)} seeds."), \
            stab(lambda k: judge_premise([w for s, (w, _) in ok.items() if s in k],
                                         [t for s, (_, t) in ok.items() if s in k]).label, j.label, sorted(ok))

    out = [verdict(MOTIVATION, (fc["motivation"],), motivation),
           verdict(COMPARISON, ({a: fc["main"][a] for a in ("alone", v, "anl", "ada", "wls", "rw", "tgeo_both")},),
                   comparison)]
    students = _students_by_width(profile, fc, v, attempt)
    small, large = (min(students), max(students)) if len(students) >= 2 else (None, None)  # both set, or neither
    out.append(verdict(GAP, (room_arms, students[small][1], students[large][1]), lambda: gap(students, small, large),
                       ("main", students[small][0], students[large][0]))
               if small is not None and large is not None else Verdict(GAP.text, NOT_TESTABLE, "This profile's recipe trains no other "
                                                 "student width.", scale, reason="one student width at this profile"))
    model = next(iter(fc["hetero"]), None)
    out.append(verdict(HETERO, (room_arms, fc["main"]["tgeo_both"], fc["hetero"][model]), lambda: hetero(model),
                       ("main", f"het:{model}")) if model else Verdict(HETERO.text, NOT_TESTABLE, "This profile's recipe trains no convolutional "
                                     "student.", scale, reason="no convolutional student at this profile"))
    out.append(verdict(INTER, (room_arms, {a: fc["main"][a] for a in ("tgeo_intra", "tgeo_inter", "tgeo_both")}),
                       inter))
    out.append(tabular_verdict())
    out.append(verdict(CONTROLS, (room_arms, {a: fc["main"][a] for a in ("tgeo_both", "tgeo_const", "tgeo_frozen")}),
                       controls))
    out.append(verdict(ALPHA, (fc["main"]["tgeo_both"],), premise))
    return out


__all__ = ["CLAIMS_CF", "Progress", "attempt_outcome", "attempts_sentence", "cf_records", "cf_recorded", "cf_verdicts",
           "judge_comparison", "judge_controls",
           "judge_gap", "judge_hetero", "judge_inter", "judge_motivation", "judge_premise", "motivation_seed_stats",
           "progress", "room_gate", "shown_attempt", "tabular_verdict"]
