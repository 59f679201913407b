"""Hinton et al. (2015), section 3 at the paper's scale: its five claims, judged from the `paper` profile's
records alone (`paper_plan` reads them, `paper_rules` holds the pre-registered rules and thresholds)."""
from __future__ import annotations

import numpy as np

from kdutils.chapters.hinton import paper_rules as C
from kdutils.chapters.hinton.claims import CLAIM
from kdutils.chapters.hinton.paper_plan import PROFILE, PaperRecords, errors_of, paper_records
from kdutils.chapters.hinton.plan import VERDICT_TAU, arm_name
from kdutils.store.store import ResultStore
from kdutils.verdicts import stats
from kdutils.verdicts.verdict import (INCONCLUSIVE, NOT_TESTABLE, NOT_YET_RUN, REPRODUCED, Decision, Verdict,
                                      min_testable_gap)

CLAIMS = {
    "main": CLAIM,
    "flat": ("With 300 units per hidden layer, every temperature of 8 or more gives similar results (here: "
             f"within {C.SIMILAR_MARGIN:g} test errors of each other; the paper gives no number)."),
    "band": ("With 30 units per hidden layer, temperatures from 2.5 to 4 work clearly better than lower or higher "
             f"ones (here: by at least {C.CLEAR_MARGIN:g} test errors on average on each side)."),
    "no3": ("A student distilled on a transfer set without a single 3 recognises most test 3s once the bias of "
            "class 3 is raised (paper: 206 errors, 133 on the 1010 3s; +3.5 gives 109 errors, 14 on 3s, 98.6% of "
            f"3s right; here: >= {C.NO3_MIN_ACCURACY:.0%} of 3s right with the shift chosen on validation)."),
    "only78": ("A student distilled on a transfer set of only 7s and 8s classifies the other digits once the biases "
               "of 7 and 8 are lowered (paper: 47.3% test error, 13.2% after lowering them by 7.6; here: at most "
               f"{C.ONLY78_MAX_ERROR:.0%} error with the shift chosen on validation)."),
}


def _scale(n_runs: int) -> str:
    return f"profile `{PROFILE}`, MNIST (60,000 training images, 10,000 test images), {n_runs} recorded runs, CPU"


def _gates(recs: PaperRecords) -> list[Decision]:
    alone = list(recs.main.get("alone", {}).values())
    return [C.converged([recs.teacher["history"]] if recs.teacher else [], "teacher"),
            C.converged([r["history"] for r in alone], "student alone")]


def main_verdict(recs: PaperRecords) -> Verdict:
    alone = {s: errors_of(r) for s, r in recs.main.get("alone", {}).items()}
    kd = {s: errors_of(r) for s, r in recs.main.get(arm_name(VERDICT_TAU), {}).items()}
    if recs.teacher is None or len(alone) < 2 or len(kd) < 2:
        return Verdict(CLAIMS["main"], NOT_YET_RUN, "The teacher and at least two seeds of the student alone and at "
                       "T=20 are not all recorded yet", _scale(len(alone) + len(kd)))
    teacher = errors_of(recs.teacher)
    n_test = recs.teacher["n_test"]
    gap = stats.paired_difference(alone, {s: teacher for s in alone})
    min_gap = min_testable_gap(min(max(gap.mean + teacher, 0.0) / n_test, 1.0), n_test) * n_test
    decision = C.main_rule(alone, kd, teacher, _gates(recs), min_gap)
    effect = stats.paired_difference(kd, alone)
    evidence = (f"{decision.reason}. Teacher {teacher:.0f} test errors (paper 67); alone "
                f"{np.mean(list(alone.values())):.1f} over {len(alone)} seeds (paper 146); T=20 "
                f"{np.mean(list(kd.values())):.1f} over {len(kd)} seeds (paper 74). Gates: "
                + "; ".join(g.reason for g in _gates(recs)) + ".")
    return Verdict(CLAIMS["main"], decision.label, evidence, _scale(len(alone) + len(kd) + 1),
                   f"T=20 minus alone: {effect.describe('errors')}")


def _sweep_errors(recs: PaperRecords, width: str) -> dict[float, dict[int, float]]:
    return {tau: {s: errors_of(r) for s, r in runs.items()} for tau, runs in recs.sweep[width].items()
            if tau is not None and runs}


def temperature_verdicts(recs: PaperRecords) -> list[Verdict]:
    out = []
    for key, width, rule in (("flat", "2x300", C.temperatures_similar), ("band", "2x30", C.band_beats_sides)):
        errors = _sweep_errors(recs, width)
        n = sum(len(v) for v in errors.values())
        if n == 0:
            out.append(Verdict(CLAIMS[key], NOT_YET_RUN, f"No distilled {width} student is recorded yet", _scale(0)))
            continue
        if recs.teacher is None or (gate := C.converged([recs.teacher["history"]], "teacher")).label != REPRODUCED:
            out.append(Verdict(CLAIMS[key], NOT_TESTABLE, gate.reason if recs.teacher else "no teacher", _scale(n)))
            continue
        d = rule(errors)
        means = ", ".join(f"T={t:g}: {np.mean(list(v.values())):.1f}" for t, v in sorted(errors.items()))
        out.append(Verdict(CLAIMS[key], d.label, f"{d.reason}. Mean test errors ({width}, "
                           f"{max(len(v) for v in errors.values())} seeds): {means}.", _scale(n)))
    return out


def transfer_verdicts(recs: PaperRecords) -> list[Verdict]:
    out = []
    for name, paper_shift, rule in (("no3", C.NO3_PAPER["shift"], C.omitted_three_rule),
                                    ("only78", C.ONLY78_PAPER["shift"], C.only_78_rule)):
        runs = {s: r for s, r in recs.transfer.get(name, {}).items() if r["status"] == "ok" and "bias_shift" in r}
        failed = len(recs.transfer.get(name, {})) - len(runs)
        if not runs:
            out.append(Verdict(CLAIMS[name], NOT_YET_RUN, "No run of this transfer set is recorded yet", _scale(0)))
            continue
        summaries = {s: C.bias_shift_summary(r["bias_shift"], paper_shift) for s, r in runs.items()}
        d = rule(summaries)
        mean = {k: np.mean([v[k] for v in summaries.values()]) for k in next(iter(summaries.values()))}
        evidence = (f"{d.reason}. Means over {len(runs)} seeds: {mean['errors']:.0f} test errors with no shift "
                    f"({mean['errors_in']:.0f} on the left-out classes' {mean['n_in']:.0f} test images); at the "
                    f"validation-chosen shift ({mean['val_shift']:.1f}) {mean['val_shift_errors']:.0f} "
                    f"({mean['val_shift_errors_in']:.0f}); the paper's procedure, the test-set optimum "
                    f"({mean['test_opt_shift']:.1f}), gives {mean['test_opt_errors']:.0f} "
                    f"({mean['test_opt_errors_in']:.0f}); at the paper's shift {paper_shift:g}: "
                    f"{mean['paper_shift_errors']:.0f} ({mean['paper_shift_errors_in']:.0f})."
                    + (f" {failed} run(s) failed and are left out." if failed else ""))
        if failed:
            d = d if d.label != REPRODUCED else Decision(INCONCLUSIVE, d.reason)
        out.append(Verdict(CLAIMS[name], d.label, evidence, _scale(len(runs))))
    return out


def paper_verdicts(store: ResultStore | None = None) -> list[Verdict]:
    """Every claim of section 3 at the paper profile, from the records alone."""
    recs = paper_records(store)
    return [main_verdict(recs), *temperature_verdicts(recs), *transfer_verdicts(recs)]


__all__ = ["CLAIMS", "main_verdict", "paper_verdicts", "temperature_verdicts", "transfer_verdicts"]
