"""Chandrasegaran et al., recipe v3: the claims (declared with their minimum effects and gates in `claims`, the
chapter's declarations) judged (`kdutils.verdicts.rules`), every comparison at one learning rate and
with teacher-to-teacher variance in its interval.

Units. A comparison's unit is (teacher pair i, student seed j): LS teacher i and plain teacher i share seed i,
their students of seed j share initial weights and data order, so a difference is paired on (i, j) and its
interval is the two-level one of `kdutils.verdicts.nested` (t over the teacher pairs' means). Accuracies in
percentage points; failed runs are scored at chance (10%).

The declarations (minimum effects from the paper's Table 2 and Table 3, gates) are in `claims` (section
"recipe v3"), next to the v2 claims they replace once v3's records exist.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from kdutils.chapters.ls_kd.claims import (CAUSAL_V3 as CAUSAL, DIFFUSION_V3 as DIFFUSION, DROP_V3 as DROP,
                                           HIGH_TAUS, INHERIT_V3 as INHERIT, MARGIN, MATCHED_V3 as MATCHED, MIN_DID,
                                           MIN_ETA, MIN_RHO, MIN_SAME_TAU, MIN_TEACHERS, PAPER_SAME_TAU,
                                           SAME_TAU_V3 as SAME_TAU, TAUS_V3 as TAUS, V3_GATES)
from kdutils.verdicts import gates as shared_gates, stats
from kdutils.verdicts.gates import Gate, premise
from kdutils.verdicts.nested import nested_interval, nested_paired_difference
from kdutils.verdicts.rules import Claim, Finding, find, judge
from kdutils.verdicts.verdict import NOT_YET_RUN

Key = tuple  # (teacher pair, student seed)
Scores = Mapping[Key, float]


def _t(t: float) -> str:
    return f"{float(t):g}"


# ---- gates ---------------------------------------------------------------------------------------------------

def gate_teachers(teacher_acc: Mapping[tuple[float, int], float], alone: Mapping[int, float],
                  min_gap: float) -> Gate:
    """Every teacher (ls, pair) beats the student alone: the weakest teacher minus the alone seeds' interval lies
    above ``min_gap`` (two binomial standard errors of the student's test accuracy)."""
    if not teacher_acc or len(alone) < 2:
        return Gate("teachers beat alone", False, "teachers or student alone not recorded")
    worst = min(teacher_acc.values())
    g = premise("teachers beat alone", stats.t_interval([worst - a for a in alone.values()]), min_gap)
    return Gate(g.name, g.passed, g.reason.replace("the whole interval", "weakest teacher minus alone"),
                {"weakest teacher": worst, **g.measured})


def gate_smooths(entropy_plain: Mapping[int, float], entropy_ls: Mapping[int, float]) -> Gate:
    """Label smoothing made every LS teacher's targets (tau = 1) smoother than its plain partner's."""
    pairs = sorted(set(entropy_plain) & set(entropy_ls))
    ok = bool(pairs) and all(entropy_ls[i] > entropy_plain[i] for i in pairs)
    diff = [entropy_ls[i] - entropy_plain[i] for i in pairs]
    return Gate("LS smooths", ok, f"LS minus plain entropy at tau = 1 in {len(pairs)} pairs",
                {"smallest (nats)": min(diff) if diff else float("nan")})


def gate_converged(histories: Mapping[tuple[float, int], list]) -> Gate:
    """Every teacher ((ls, pair): its recorded history) passes the book's convergence standard
    (`kdutils.verdicts.gates.converged` at its default thresholds); the measurement names the worst of them."""
    if not histories:
        return Gate("teachers converged", False, "no teacher recorded")
    each = [shared_gates.converged(h) for _, h in sorted(histories.items())]
    n_bad = sum(not g.passed for g in each)
    finals = [100 * g.measured.get("final train_acc", float("nan")) for g in each]
    slopes = [100 * v for g in each for k, v in g.measured.items() if k.startswith("slope")]
    floor, limit = 100 * shared_gates.MIN_TRAIN_ACCURACY, 100 * shared_gates.MAX_TRAIN_SLOPE
    worst = (f"lowest final training accuracy {min(finals):.1f}% (floor {floor:g}%), steepest rise over the last "
             f"5 epochs {max(slopes) if slopes else float('nan'):.2f} pts/epoch (limit {limit:g})")
    measured = {"teachers": len(each), "not converged": n_bad}
    if n_bad:
        return Gate("teachers converged", False, f"{n_bad} of {len(each)} teachers have not finished learning: {worst}",
                    measured)
    return Gate("teachers converged", True, f"all {len(each)} teachers meet the standard: {worst}", measured)


def gate_one_rate(lrs: Mapping[str, list[float]]) -> Gate:
    """Every student compared trained at one learning rate (the control issue 22 asks for): {arm: rates}."""
    return shared_gates.same_setting("one learning rate", lrs)


def gate_teacher_count(counts: Mapping[float, int]) -> Gate:
    """At least ``MIN_TEACHERS`` teachers per LS value ({ls: recorded teachers}), the shared design control."""
    return shared_gates.at_least("teachers per condition", {f"LS {ls:g}": n for ls, n in counts.items()},
                                 MIN_TEACHERS, "teachers")


# ---- the parts ---------------------------------------------------------------------------------------------------

def _fmt(res, unit: str = "pts") -> str:
    return res.describe(unit, digits=2)


def _find(claim: Claim, res) -> Finding:
    return find(claim, res.interval, effect=_fmt(res, claim.unit))


def same_tau_findings(acc: Mapping[tuple[float, float], Scores]) -> list[Finding]:
    """``acc[(ls, tau)]`` = {(pair, seed): accuracy}; one finding per tau of LS minus plain."""
    out = []
    for part, tau in zip(SAME_TAU.parts, TAUS):
        a, b = acc.get((0.1, tau), {}), acc.get((0.0, tau), {})
        out.append(_find(part, nested_paired_difference(a, b)) if a and b else
                   Finding(part.key, NOT_YET_RUN, "not recorded"))
    return out


def drop_findings(acc: Mapping[tuple[float, float], Scores]) -> list[Finding]:
    out = []
    for part, tau in zip(DROP.parts, HIGH_TAUS):
        arms = [acc.get(k, {}) for k in ((0.1, 1.0), (0.1, tau), (0.0, 1.0), (0.0, tau))]
        keys = set.intersection(*(set(x) for x in arms)) if all(arms) else set()
        did = {k: (arms[0][k] - arms[1][k]) - (arms[2][k] - arms[3][k]) for k in keys}
        out.append(_find(part, nested_interval(did)) if did else Finding(part.key, NOT_YET_RUN, "not recorded"))
    return out


def diffusion_findings(eta: Mapping[float, Scores]) -> list[Finding]:
    """``eta[tau1]`` = {(pair, seed): eta_similar of the LS teacher's student, tau 1 -> tau1 (%)}."""
    return [_find(part, nested_interval(eta[tau])) if eta.get(tau) else Finding(part.key, NOT_YET_RUN, "not recorded")
            for part, tau in zip(DIFFUSION.parts, HIGH_TAUS)]


def causal_finding(units: Mapping[int, list[tuple[float, float]]]) -> Finding:
    """``units[pair]`` = [(eta_similar, accuracy drop from tau = 1), ...] over that pair's arms and seeds; the
    Spearman rho of each pair, then the t-interval over pairs (the pairs are the independent units)."""
    rhos = [stats.rank_correlation([x for x, _ in u], [y for _, y in u]).value for u in units.values() if len(u) >= 3]
    rhos = [r for r in rhos if np.isfinite(r)]
    if not rhos:
        return Finding("rho", NOT_YET_RUN, "fewer than 3 units per teacher pair")
    iv = stats.t_interval(rhos)
    return find(CAUSAL, iv, effect=f"Spearman rho per teacher pair {', '.join(f'{r:+.2f}' for r in rhos)}; "
                                   + iv.describe("", digits=2))


def inherit_finding(sep_ls: Scores, sep_plain: Scores) -> Finding:
    """Similar-pair separation of the tau = 1 students (LS teacher's minus plain teacher's), paired on (pair, seed)."""
    if not sep_ls or not sep_plain:
        return Finding("separation", NOT_YET_RUN, "not recorded")
    return _find(INHERIT, nested_paired_difference(sep_ls, sep_plain))


def gate_teachers_enlarge(sep_teacher: Mapping[tuple[float, int], float]) -> Gate:
    """The premise of the inheritance claim: LS teacher i separates similar classes more than plain teacher i."""
    pairs = sorted({i for ls, i in sep_teacher if (0.0, i) in sep_teacher and (0.1, i) in sep_teacher})
    iv = stats.t_interval([sep_teacher[(0.1, i)] - sep_teacher[(0.0, i)] for i in pairs])
    return premise("LS teachers enlarge", iv, 0.0)


def matched_findings(acc_ls: Mapping[float, Scores], acc_plain: Mapping[float, Scores]) -> list[Finding]:
    """``acc_ls[tau]`` vs ``acc_plain[tau]`` (the plain teacher's students at tau* of pair i, keyed (i, seed))."""
    out = []
    for tau, direction in MATCHED.items():
        part = Claim(f"LS at tau {_t(tau)} minus plain at tau* (equal target entropy)", direction, unit="pts",
                     key=f"tau {_t(tau)} vs tau*")
        a, b = acc_ls.get(tau, {}), acc_plain.get(tau, {})
        out.append(_find(part, nested_paired_difference(a, b)) if a and b else Finding(part.key, NOT_YET_RUN,
                                                                                       "not recorded"))
    return out


def practitioner_findings(best: Scores, others: Mapping[str, Scores]) -> list[Finding]:
    """LS tau = 1 non-inferior (margin ``MARGIN``) to every other distilled arm."""
    return [_find(Claim(f"LS tau = 1 minus {arm}", "not_below", MARGIN, "pts", key=arm),
                  nested_paired_difference(best, s)) for arm, s in others.items() if s]


def practitioner_claim(arms: list[str]) -> Claim:
    keys = tuple(arms)
    return Claim("Practitioner rule: use a label-smoothed teacher with tau = 1.",
                 parts=tuple(Claim("", "not_below", MARGIN, "pts", key=k) for k in keys), core=keys,
                 gates=V3_GATES)


def matched_claim() -> Claim:
    keys = tuple(f"tau {_t(t)} vs tau*" for t in MATCHED)
    return Claim("The smoothness of the targets (their average entropy) does not explain the results.",
                 parts=tuple(Claim("", key=k) for k in keys), core=keys,
                 gates=V3_GATES)


def judged(claim: Claim, findings, gates: list[Gate]):
    """`judge` with the gates the claim declares (by name), in its declared order; a declared gate that was not
    measured fails (a claim never passes a gate nobody checked)."""
    by_name = {g.name: g for g in gates}
    return judge(claim, findings, [by_name.get(n) or Gate(n, False, "not measured") for n in claim.gates])


__all__ = ["CAUSAL", "DIFFUSION", "DROP", "HIGH_TAUS", "INHERIT", "MARGIN", "MATCHED", "MIN_DID", "MIN_ETA",
           "MIN_RHO", "MIN_SAME_TAU", "PAPER_SAME_TAU", "SAME_TAU", "TAUS", "causal_finding", "diffusion_findings",
           "drop_findings", "gate_converged", "gate_one_rate", "gate_teacher_count", "gate_smooths", "gate_teachers", "gate_teachers_enlarge", "inherit_finding",
           "judged", "matched_claim", "matched_findings", "practitioner_claim", "practitioner_findings",
           "same_tau_findings"]
