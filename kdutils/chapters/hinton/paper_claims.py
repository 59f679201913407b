"""Hinton et al. (2015), section 3 at the paper's scale (profile `paper`): its five claims declared as shared
`Claim`s (direction, pre-registered minimum effect from the paper's numbers, parts and core, gates) and judged by
the shared rules (`kdutils.verdicts.rules`: `find`, `judge`, `stability`) from the records alone.

The judges (`judge_*`) take plain per-seed numbers, so the tests feed them synthetic cases; `paper_verdicts` reads
the records (`paper_plan`). A claim is "not yet run" until its pre-registered design is recorded in full (every
seed of every arm it compares; a failed run counts as recorded and is scored at chance); until then its evidence
shows what the rule gives on the seeds recorded so far. The constants and the learning-curve gate are in
`paper_rules`; the main claim's declaration and judge are shared with the quick profiles (`claims`).

The declarations were ported to the shared rules while the runs were part-way (teacher, 2x800 alone seeds 0-1,
T=20 seeds 0-4 recorded); every minimum effect and threshold comes from the paper's numbers, none from a record.
"""
from __future__ import annotations

from itertools import combinations
from typing import Callable, Hashable, Mapping, Sequence

import numpy as np

from kdutils.chapters.hinton import paper_rules as C
from kdutils.chapters.hinton.claims import CLAIM_TEXT, TEACHER_BETTER, judge_main, main_claim, main_stability
from kdutils.chapters.hinton.paper_plan import PROFILE, PaperRecords, errors_of, paper_records
from kdutils.chapters.hinton.plan import NUM_CLASSES, VERDICT_TAU, arm_name, recipe
from kdutils.store.store import ResultStore
from kdutils.verdicts import stats
from kdutils.verdicts.gates import Gate
from kdutils.verdicts.rules import Claim, Judgement, find, judge, stability, subset, to_verdict
from kdutils.verdicts.verdict import FAILED_STATUSES, NOT_TESTABLE, NOT_YET_RUN, Verdict, chance_error_rate

TEACHER_CONVERGED, ALONE_CONVERGED = "teacher converged", "student alone converged"
Errors = Mapping[float, Mapping[Hashable, float]]  # temperature -> seed -> test errors
Summaries = Mapping[Hashable, Mapping[str, float]]  # seed -> `paper_rules.bias_shift_summary`


def _t(t: float) -> str:
    return f"T={t:g}"


# ---- the declarations -------------------------------------------------------------------------------------------

MAIN = main_claim(CLAIM_TEXT, gates=(TEACHER_CONVERGED, ALONE_CONVERGED, TEACHER_BETTER))
_PAIRS = tuple(combinations(C.FLAT_TAUS, 2))
FLAT = Claim(
    "With 300 units per hidden layer, every temperature of 8 or more gives similar results (paper: 'fairly "
    f"similar', no number; here every pair of T=8, 12, 20 within {C.SIMILAR_MARGIN:g} test errors).",
    parts=tuple(Claim(f"{_t(a)} minus {_t(b)}, test errors of the 2x300 student: {side} "
                      f"{'+' if side == 'not above' else '-'}{C.SIMILAR_MARGIN:g}", direction, C.SIMILAR_MARGIN,
                      "errors", key=f"{_t(a)} vs {_t(b)}: {side}")
                for a, b in _PAIRS for side, direction in (("not above", "not_above"), ("not below", "not_below"))),
    core=tuple(f"{_t(a)} vs {_t(b)}: {side}" for a, b in _PAIRS for side in ("not above", "not below")),
    gates=(TEACHER_CONVERGED,),
    source=f"{C.SIMILAR_MARGIN:g} errors: a fifth of the paper's 72-error distillation gain (2x800)")
BAND = Claim(
    "With 30 units per hidden layer, temperatures from 2.5 to 4 work clearly better than lower or higher ones "
    "(paper: 'significantly better', no number).",
    parts=(Claim("Mean test errors at T=1, 2 minus at T=2.5, 3, 4 (per seed)", "greater", C.CLEAR_MARGIN, "errors",
                 key="band beats lower T"),
           Claim("Mean test errors at T=6, 8, 12, 20 minus at T=2.5, 3, 4 (per seed)", "greater", C.CLEAR_MARGIN,
                 "errors", key="band beats higher T")),
    gates=(TEACHER_CONVERGED,),
    source=f"{C.CLEAR_MARGIN:g} errors: a smaller average gain of the band is no gain that counts; one side "
           "contradicted beside the other reproduced is 'mixed'")
NO3 = Claim(
    "A student distilled on a transfer set without a single 3 recognises most test 3s once the bias of class 3 "
    "is raised (paper: 206 errors, 133 on the 1010 3s; +3.5, chosen on the test set, gives 109 errors, 14 on 3s, "
    "98.6% of 3s right). Here the shift is chosen on the validation split.",
    parts=(Claim("Accuracy on the test 3s at the shift chosen on validation (paper 98.6% at +3.5 chosen on test)",
                 "greater", 0.0, "%", threshold=C.NO3_MIN_ACCURACY, key="3s right after the shift"),
           Claim("Test errors at that shift minus with no shift (paper 109 - 206 = -97)", "less", C.NO3_MIN_FALL,
                 "errors", key="the shift lowers the errors")),
    core=("3s right after the shift",), gates=(TEACHER_CONVERGED,),
    source=f"{C.NO3_MIN_ACCURACY:g}% of 3s right (paper 98.6%); a fall of {C.NO3_MIN_FALL:g} errors, a fifth of the "
           "paper's 97")
ONLY78 = Claim(
    "A student distilled on a transfer set of only 7s and 8s classifies the other digits once the biases of 7 and "
    "8 are lowered (paper: 47.3% test error, 13.2% after lowering them by 7.6, chosen on the test set). Here the "
    "shift is chosen on the validation split.",
    parts=(Claim("Test error at the shift chosen on validation (paper 13.2% at -7.6 chosen on test)", "less", 0.0,
                 "%", threshold=C.ONLY78_MAX_ERROR, key="error after the shift"),
           Claim("Test error at that shift minus with no shift, points (paper 13.2 - 47.3 = -34.1)", "less",
                 C.ONLY78_MIN_FALL, "pts", key="the shift lowers the error")),
    core=("error after the shift",), gates=(TEACHER_CONVERGED,),
    source=f"at most {C.ONLY78_MAX_ERROR:g}% error (about twice the paper's 13.2%); a fall of "
           f"{C.ONLY78_MIN_FALL:g} points, a fifth of the paper's 34.1")
DECLARED = (MAIN, FLAT, BAND, NO3, ONLY78)
CLAIMS = {"main": MAIN.text, "flat": FLAT.text, "band": BAND.text, "no3": NO3.text, "only78": ONLY78.text}


# ---- the judges, on plain per-seed numbers ------------------------------------------------------------------------

def judge_flat(errors: Errors, gates: Sequence[Gate] = ()) -> Judgement:
    """FLAT on the 2x300 student's per-seed errors at each temperature: every pair, both sides of the margin."""
    fs = []
    for a, b in _PAIRS:
        d = stats.paired_difference(errors.get(a, {}), errors.get(b, {}))
        for side in ("not above", "not below"):
            fs.append(find(FLAT.part(f"{_t(a)} vs {_t(b)}: {side}"), d, effect=d.describe("errors")))
    return judge(FLAT, fs, gates)


def judge_band(errors: Errors, gates: Sequence[Gate] = ()) -> Judgement:
    """BAND on the 2x30 student's per-seed errors at each temperature (side minus band: positive = band better)."""
    band = C.band_mean(errors, C.BAND_TAUS)
    fs = []
    for key, taus in (("band beats lower T", C.LOW_TAUS), ("band beats higher T", C.HIGH_TAUS)):
        d = stats.paired_difference(C.band_mean(errors, taus), band)
        fs.append(find(BAND.part(key), d, effect=d.describe("errors")))
    return judge(BAND, fs, gates)


def _shift_parts(claim: Claim, level: Mapping, fall: Mapping, level_unit: str, fall_unit: str,
                 gates: Sequence[Gate]) -> Judgement:
    lv, fl = stats.t_interval(list(level.values())), stats.t_interval(list(fall.values()))
    fs = [find(claim.parts[0], lv, effect=lv.describe(level_unit, signed=False)),
          find(claim.parts[1], fl, effect=fl.describe(fall_unit))]
    return judge(claim, fs, gates)


def judge_no3(summaries: Summaries, gates: Sequence[Gate] = ()) -> Judgement:
    """NO3 on per-seed bias-shift summaries: % of test 3s right at the validation-chosen shift; the fall in errors."""
    acc = {k: 100 * (1 - s["val_shift_errors_in"] / s["n_in"]) for k, s in summaries.items()}
    fall = {k: s["val_shift_errors"] - s["errors"] for k, s in summaries.items()}
    return _shift_parts(NO3, acc, fall, "%", "errors", gates)


def judge_only78(summaries: Summaries, gates: Sequence[Gate] = ()) -> Judgement:
    """ONLY78 on per-seed bias-shift summaries: % test error at the validation-chosen shift; its fall in points."""
    err = {k: 100 * s["val_shift_errors"] / s["n"] for k, s in summaries.items()}
    fall = {k: 100 * (s["val_shift_errors"] - s["errors"]) / s["n"] for k, s in summaries.items()}
    return _shift_parts(ONLY78, err, fall, "%", "pts", gates)


def _stable(j: Judgement, keys, label_on: Callable[[set], str]):
    if j.label in (NOT_TESTABLE, NOT_YET_RUN):
        return None
    return stability(keys, label_on, j.label)


def _by_seed_subset(errors: Errors, keys) -> dict:
    return {t: subset(v, keys) for t, v in errors.items()}


# ---- from the records -----------------------------------------------------------------------------------------------

def _scale(runs: Sequence[dict]) -> str:
    from kdutils.report.present import short_device

    devices = sorted({short_device(d) for r in runs if r and (d := (r.get("provenance") or {}).get("device"))})
    return (f"profile `{PROFILE}`, MNIST (60,000 training images, 10,000 test images), {len(runs)} recorded "
            f"run{'' if len(runs) == 1 else 's'}, "
            + (", ".join(devices) or "device unknown"))


def _waiting(claim: Claim, what: str, have: Mapping[str, int], want: int, interim: Judgement | None,
             scale: str) -> Verdict:
    """"not yet run" while the pre-registered design is incomplete, with what the rule gives so far."""
    counts = ", ".join(f"{k} {v}" for k, v in have.items())
    so_far = (f" On the seeds recorded so far the rule would give: {interim.label} ({interim.reason})."
              if interim is not None and any(have.values()) else "")
    reason = f"{want} seeds per arm pre-registered; recorded: {counts or 'none'}"
    return Verdict(claim.text, NOT_YET_RUN, f"{what}: {reason}.{so_far}", scale, scored=claim.scored, reason=reason)


def _teacher_gate(recs: PaperRecords) -> Gate:
    if recs.teacher is None:
        return Gate(TEACHER_CONVERGED, False, "the teacher is not recorded")
    return C.converged_gate("teacher", [recs.teacher.get("history") or []])


def main_verdict(recs: PaperRecords) -> Verdict:
    seeds = recipe(PROFILE).seeds
    alone_recs = recs.main.get("alone", {})
    alone = {s: errors_of(r) for s, r in alone_recs.items()}
    kd = {s: errors_of(r) for s, r in recs.main.get(arm_name(VERDICT_TAU), {}).items()}
    runs = [recs.teacher, *alone_recs.values(), *recs.main.get(arm_name(VERDICT_TAU), {}).values()]
    scale = _scale([r for r in runs if r])
    if recs.teacher is None:
        return _waiting(MAIN, "The teacher is not recorded yet", {"alone": len(alone), "T=20": len(kd)},
                        len(seeds), None, scale)
    teacher, n_test = errors_of(recs.teacher), int(recs.teacher["n_test"])  # recorded: checked above
    gates = [_teacher_gate(recs), C.converged_gate("student alone", [r.get("history") or [] for r in
                                                                     alone_recs.values() if r.get("history")])]
    j = judge_main(MAIN, alone, kd, teacher, n_test, gates)
    if not (set(seeds) <= set(alone) and set(seeds) <= set(kd)):
        return _waiting(MAIN, "The 2x800 student alone and at T=20 are not all recorded",
                        {"alone": len(alone), "T=20": len(kd)}, len(seeds), j, scale)
    mean = lambda d: float(np.mean(list(d.values())))  # noqa: E731
    evidence = (f"Teacher {teacher:.0f} test errors (paper 67); 2x800 alone {mean(alone):.1f} over {len(alone)} seeds "
                f"(paper 146); at T=20 {mean(kd):.1f} over {len(kd)} seeds (paper 74). "
                + "; ".join(f.describe() for f in j.parts) + ".")
    return to_verdict(j, evidence, scale, f"T=20 minus alone: {j.parts[0].effect}; share of the gap closed: "
                      f"{j.parts[1].effect}", main_stability(MAIN, j, alone, kd, teacher, n_test, gates))


def _sweep(recs: PaperRecords, width: str) -> tuple[dict, list]:
    runs = recs.sweep.get(width, {})
    return ({t: {s: errors_of(r) for s, r in by.items()} for t, by in runs.items() if t is not None},
            [r for t, by in runs.items() if t is not None for r in by.values()])


def _sweep_gates(recs: PaperRecords, width: str, taus: Sequence[float]) -> list[Gate]:
    """The teacher, the width's student alone and its distilled students (each temperature's mean curve, over the
    temperatures recorded so far) converged: a temperature still improving at the end would rank by training
    length, not by temperature."""
    runs = recs.sweep.get(width, {})
    hist = lambda by: [r["history"] for r in by.values() if r.get("history")]  # noqa: E731
    alone = hist(runs.get(None, {}))
    gates = [_teacher_gate(recs), C.converged_gate(f"{width} student alone", alone) if alone else
             Gate(f"{width} student alone converged", False, "the student alone is not recorded")]
    per_t = {t: C.converged_gate(f"{width} at {_t(t)}", hist(runs[t])) for t in taus if hist(runs.get(t, {}))}
    name = f"distilled {width} students converged"
    if not per_t:
        return [*gates, Gate(name, False, "no distilled student is recorded")]
    still = [_t(t) for t, g in per_t.items() if not g.passed]
    falls = {_t(t): g.measured.get("fall over the last quarter (errors)", float("nan")) for t, g in per_t.items()}
    worst = max(falls, key=lambda k: falls[k])
    text = (f"each temperature's mean test-error curve over its seeds ({', '.join(_t(t) for t in per_t)}); largest "
            f"fall over the last quarter {falls[worst]:+.1f} errors at {worst}")
    return [*gates, Gate(name, not still, text + (f"; still improving: {', '.join(still)}" if still else ""),
                         {"temperatures": len(per_t), "still improving": len(still)})]


def temperature_verdicts(recs: PaperRecords) -> list[Verdict]:
    out = []
    seeds = recipe(PROFILE).sweep_seeds
    for claim, width, taus, judge_fn in ((FLAT, "2x300", C.FLAT_TAUS, judge_flat),
                                         (BAND, "2x30", (*C.LOW_TAUS, *C.BAND_TAUS, *C.HIGH_TAUS), judge_band)):
        errors, runs = _sweep(recs, width)
        scale = _scale(runs + ([recs.teacher] if recs.teacher else []))
        gates = _sweep_gates(recs, width, taus)
        j = judge_fn(errors, gates)
        have = {_t(t): len(errors.get(t, {})) for t in taus}
        if any(not set(seeds) <= set(errors.get(t, {})) for t in taus):
            out.append(_waiting(claim, f"The distilled {width} students are not all recorded", have, len(seeds), j,
                                scale))
            continue
        means = ", ".join(f"{_t(t)}: {np.mean(list(errors[t].values())):.1f}" for t in sorted(errors))
        alone = [errors_of(r) for r in recs.sweep.get(width, {}).get(None, {}).values()]
        means += f"; alone: {np.mean(alone):.1f} ({len(alone)} seeds)" if alone else "; alone: not recorded"
        stab = _stable(j, set(seeds), lambda ks: judge_fn(_by_seed_subset(errors, ks), gates).label)
        worst = max(j.parts, key=lambda f: abs(f.interval.mean) if f.interval is not None else 0.0)
        effect = (f"largest pairwise difference {worst.key.split(':')[0]}: {worst.effect}" if claim is FLAT else
                  "; ".join(f"{f.key}: {f.effect}" for f in j.parts)) + " (paper: no number)"
        out.append(to_verdict(j, f"Mean test errors of the {width} student ({len(seeds)} seeds): {means}.", scale,
                              effect, stab))
    return out


def _summaries(runs: Mapping[int, dict], paper_shift: float) -> tuple[dict, int]:
    """Per seed, the bias-shift summary; a failed run is scored at chance (never dropped)."""
    ok = {s: C.bias_shift_summary(r["bias_shift"], paper_shift) for s, r in runs.items()
          if r["status"] not in FAILED_STATUSES and "bias_shift" in r}
    ref = next(iter(ok.values()), {"n": 10_000.0, "n_in": 1.0})
    failed = {s: C.failed_summary(ref["n"], ref["n_in"], chance_error_rate(NUM_CLASSES)) for s in runs if s not in ok}
    return {**ok, **failed}, len(failed)


def transfer_verdicts(recs: PaperRecords) -> list[Verdict]:
    out = []
    seeds = recipe(PROFILE).seeds
    for claim, name, paper_shift, judge_fn in ((NO3, "no3", C.NO3_PAPER["shift"], judge_no3),
                                               (ONLY78, "only78", C.ONLY78_PAPER["shift"], judge_only78)):
        runs = recs.transfer.get(name, {})
        summ, failed = _summaries(runs, paper_shift)
        scale = _scale(list(runs.values()) + ([recs.teacher] if recs.teacher else []))
        gates = [_teacher_gate(recs)]
        j = judge_fn(summ, gates)
        if not set(seeds) <= set(summ):
            out.append(_waiting(claim, f"The {name} transfer-set runs are not all recorded", {name: len(summ)},
                                len(seeds), j, scale))
            continue
        m = {k: float(np.mean([v[k] for v in summ.values()])) for k in next(iter(summ.values()))}
        pct = (lambda e, n: f"{100 * e / n:.1f}%") if name == "only78" else (lambda e, n: f"{e:.0f}")  # noqa: E731
        inside = (lambda e: f" ({e:.0f} on the left-out classes' {m['n_in']:.0f} test images)")  # noqa: E731
        evidence = (f"Means over {len(summ)} seeds: with no shift {pct(m['errors'], m['n'])} test errors"
                    f"{inside(m['errors_in'])}; at the shift chosen on validation ({m['val_shift']:+.1f} on average) "
                    f"{pct(m['val_shift_errors'], m['n'])}{inside(m['val_shift_errors_in'])}. The paper's procedure, "
                    f"the shift chosen on the test set ({m['test_opt_shift']:+.1f} on average), gives "
                    f"{pct(m['test_opt_errors'], m['n'])}{inside(m['test_opt_errors_in'])}; the paper's own shift "
                    f"{paper_shift:g}: {pct(m['paper_shift_errors'], m['n'])}{inside(m['paper_shift_errors_in'])}."
                    + (f" {failed} run(s) failed and are scored at chance." if failed else " No run failed."))
        paper_level = "98.6% of 3s right" if name == "no3" else "13.2% test error"
        mine = (f"{100 * (1 - m['test_opt_errors_in'] / m['n_in']):.1f}% of 3s right" if name == "no3" else
                f"{100 * m['test_opt_errors'] / m['n']:.1f}% test error")
        effect = (f"{j.parts[0].key}, shift chosen on validation: {j.parts[0].effect}; shift chosen on the test set "
                  f"(the paper's procedure): {mine}; paper: {paper_level}")
        stab = _stable(j, set(summ), lambda ks: judge_fn(subset(summ, ks), gates).label)
        out.append(to_verdict(j, evidence, scale, effect, stab))
    return out


def paper_verdicts(store: ResultStore | None = None) -> list[Verdict]:
    """Every claim of section 3 at the paper profile, from the records alone (nothing is trained)."""
    recs = paper_records(store)
    return [main_verdict(recs), *temperature_verdicts(recs), *transfer_verdicts(recs)]


def records_found(recs: PaperRecords) -> int:
    """How many final runs `paper_records` found (for the chapter's check that none was lost)."""
    return (recs.teacher is not None) + sum(len(v) for v in recs.main.values()) + sum(
        len(v) for by in recs.sweep.values() for v in by.values()) + sum(len(v) for v in recs.transfer.values())


__all__ = ["BAND", "CLAIMS", "DECLARED", "FLAT", "MAIN", "NO3", "ONLY78", "judge_band", "judge_flat", "judge_no3",
           "judge_only78", "main_verdict", "paper_verdicts", "records_found", "temperature_verdicts",
           "transfer_verdicts"]
