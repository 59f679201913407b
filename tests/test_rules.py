"""The shared decision rules on synthetic records: for every rule a false claim must come out "not reproduced",
a noisy one "inconclusive", a true one "reproduced", a failed gate "not testable", a contradicted part "mixed"."""
import math

import numpy as np
import pytest

from kdutils.verdicts import gates, power, rules, stats, verdict
from kdutils.verdicts.rules import Claim, combine, decide
from kdutils.verdicts.verdict import (INCONCLUSIVE, MIXED, NOT_REPRODUCED, NOT_TESTABLE, NOT_YET_RUN, PARTLY, REPRODUCED)

SEEDS = range(6)
JITTER = (0.3, -0.2, 0.1, -0.4, 0.2, 0.0)  # fixed per-seed noise (pts), mean 0


def records(arm: str, base: float, shift: float, noise: float = 0.1) -> list[dict]:
    """Record-like rows of one arm: accuracy in pts per seed = base + a seed effect + shift + noise * jitter."""
    return [{"arm": arm, "seed": s, "accuracy": base + 0.5 * s + shift + noise * JITTER[(s + 2) % 6], "status": "ok"}
            for s in SEEDS]


def scores(rows: list[dict]) -> dict:
    return verdict.scores_by_key(rows, "seed", "accuracy", failed_value=10.0)[0]


def judged(claim: Claim, a_shift: float, noise: float = 0.1) -> str:
    alone = scores(records("alone", 80.0, 0.0, noise=0.0))
    kd = scores(records("kd", 80.0, a_shift, noise=noise))
    return rules.compare(claim, kd, alone).label


BETTER = Claim("KD beats the student alone by at least 0.5 pts", "greater", min_effect=0.5, unit="pts")
NO_HELP = Claim("Noise augmentation does not help agreement (margin 1 pt)", "not_above", min_effect=1.0, unit="pts")
AS_GOOD = Claim("At least as good (margin 0.5 pts)", "not_below", min_effect=0.5, unit="pts")
FEWER = Claim("KD makes fewer errors", "less", min_effect=0.5, unit="pts")


@pytest.mark.parametrize("claim,true_shift,false_shift", [
    (BETTER, 2.0, -2.0),    # clearly better / clearly worse
    (FEWER, -2.0, 2.0),
    (NO_HELP, 0.0, 3.0),    # no effect / helps by 3 pts
    (AS_GOOD, 0.0, -3.0),   # equal / clearly worse
])
def test_each_direction_true_false_and_noisy(claim, true_shift, false_shift):
    assert judged(claim, true_shift) == REPRODUCED
    assert judged(claim, false_shift) == NOT_REPRODUCED
    # noise of +-10 pts around a shift halfway: the interval spans both sides
    assert judged(claim, (true_shift + false_shift) / 2, noise=10.0) == INCONCLUSIVE


def test_a_real_but_too_small_effect_is_not_reproduced():
    # +0.2 pts, measured tightly: wholly above 0 but wholly below the pre-registered 0.5
    d = rules.compare(BETTER, scores(records("kd", 80.0, 0.2, noise=0.01)), scores(records("alone", 80.0, 0.0, 0.0)))
    assert d.interval.low > 0 and d.interval.high < 0.5
    assert d.label == NOT_REPRODUCED and "minimum effect" in d.reason
    # without a minimum effect the same interval reproduces "greater"
    assert decide(d.interval, "greater").label == REPRODUCED


def test_does_not_help_needs_the_margin_not_just_zero_inside():
    # OOD minus crop/flip +0.6 [-3.0, 4.2] (the old rule counted this as "does not help")
    iv = stats.Interval(0.6, -3.0, 4.2, 3, 1.45)
    assert decide(iv, "not_above", 1.0).label == INCONCLUSIVE
    assert decide(stats.Interval(0.1, -0.3, 0.5, 5, 0.3), "not_above", 1.0).label == REPRODUCED
    assert decide(stats.Interval(2.0, 1.5, 2.5, 5, 0.3), "not_above", 1.0).label == NOT_REPRODUCED
    with pytest.raises(ValueError, match="needs a margin"):
        Claim("does not help", "not_above")


def test_threshold_claims_judge_against_the_threshold():
    closes = Claim("closes at least 75% of the gap", "greater", threshold=0.75)
    assert rules.find(closes, stats.t_interval([0.80, 0.81, 0.82])).label == REPRODUCED
    assert rules.find(closes, stats.t_interval([0.30, 0.31, 0.32])).label == NOT_REPRODUCED
    assert rules.find(closes, stats.t_interval([0.6, 0.8, 0.9])).label == INCONCLUSIVE
    less = Claim("closes less than a quarter", "less", threshold=0.25)
    assert rules.find(less, stats.t_interval([0.10, 0.11, 0.12])).label == REPRODUCED
    assert rules.find(less, stats.t_interval([0.40, 0.41, 0.42])).label == NOT_REPRODUCED


def test_one_pair_is_inconclusive_and_bad_claims_are_rejected():
    assert decide(stats.t_interval([1.0]), "greater").label == INCONCLUSIVE
    with pytest.raises(ValueError, match="direction must be one of"):
        Claim("x", "up")
    with pytest.raises(ValueError, match="min_effect must be"):
        Claim("x", min_effect=-1.0)
    with pytest.raises(ValueError, match="core names parts that do not exist"):
        Claim("x", parts=(Claim("a", key="a"),), core=("b",))


# ------------------------------------------------------------------------------------------------- combine
@pytest.mark.parametrize("labels,core,expected", [
    ({}, (), NOT_YET_RUN),
    ({"a": NOT_YET_RUN}, (), NOT_YET_RUN),
    ({"a": REPRODUCED, "b": REPRODUCED}, (), REPRODUCED),
    ({"a": REPRODUCED, "b": INCONCLUSIVE}, (), PARTLY),
    ({"a": REPRODUCED, "b": NOT_YET_RUN}, (), PARTLY),
    ({"a": REPRODUCED, "b": NOT_REPRODUCED}, (), MIXED),
    ({"a": REPRODUCED, "b": NOT_REPRODUCED}, ("b",), NOT_REPRODUCED),
    ({"a": INCONCLUSIVE, "b": NOT_REPRODUCED}, (), NOT_REPRODUCED),
    ({"a": INCONCLUSIVE, "b": INCONCLUSIVE}, (), INCONCLUSIVE),
    ({"a": NOT_TESTABLE, "b": REPRODUCED}, (), REPRODUCED),
    ({"a": NOT_TESTABLE, "b": REPRODUCED}, ("a",), NOT_TESTABLE),
    ({"a": NOT_TESTABLE, "b": NOT_TESTABLE}, (), NOT_TESTABLE),
    ({"a": MIXED, "b": REPRODUCED}, (), MIXED),
    ({"a": PARTLY, "b": INCONCLUSIVE}, (), PARTLY),
])
def test_combine_table(labels, core, expected):
    assert combine(labels, core).label == expected


def test_combine_names_the_contradicted_part():
    d = combine({"accuracy": REPRODUCED, "NLL": NOT_REPRODUCED, "ECE": INCONCLUSIVE})
    assert d.label == MIXED and "contradicted: NLL" in d.reason
    d = combine({"accuracy": REPRODUCED, "NLL": NOT_REPRODUCED}, core=("NLL",))
    assert "core part contradicted: NLL" in d.reason


def test_judge_composite_with_gates_on_synthetic_records():
    claim = Claim("KD improves accuracy and NLL", parts=(
        Claim("accuracy up", "greater", 0.5, key="accuracy"), Claim("NLL down", "less", 0.01, key="nll")),
        core=("accuracy",), gates=("teacher better",))
    alone_acc, alone_nll = scores(records("alone", 80, 0, 0)), {s: 0.5 + 0.01 * s for s in SEEDS}
    good_acc = scores(records("kd", 80, 2.0))
    worse_nll = {s: v + 0.2 + 0.001 * JITTER[s] for s, v in alone_nll.items()}  # significantly worse
    better_nll = {s: v - 0.2 + 0.001 * JITTER[s] for s, v in alone_nll.items()}
    passing = gates.premise("teacher better", stats.t_interval([3.0, 3.2, 2.9]), 1.0)
    parts = [rules.compare(claim.part("accuracy"), good_acc, alone_acc), rules.compare(claim.part("nll"), worse_nll, alone_nll)]
    assert rules.judge(claim, parts, [passing]).label == MIXED
    parts[1] = rules.compare(claim.part("nll"), better_nll, alone_nll)
    assert rules.judge(claim, parts, [passing]).label == REPRODUCED
    # the core part contradicted: not reproduced
    parts[0] = rules.compare(claim.part("accuracy"), scores(records("kd", 80, -2.0)), alone_acc)
    assert rules.judge(claim, parts, [passing]).label == NOT_REPRODUCED
    # a failed gate: not testable, with the gate's numbers, whatever the parts say
    failing = gates.premise("teacher better", stats.t_interval([0.1, 0.3, 0.2]), 1.0)
    j = rules.judge(claim, parts, [passing, failing])
    assert j.label == NOT_TESTABLE and "teacher better: fails" in j.reason and "margin 1" in j.reason
    v = rules.to_verdict(j, "evidence", "cpu")
    md = v.to_markdown()
    assert "**Gates.**" in md and "**Parts.**" in md and "⛔" in md


# ------------------------------------------------------------------------------------------------- gates
def test_converged_gate_from_a_recorded_history():
    flat = [{"epoch": e, "train_acc": 0.99 - 0.05 / e} for e in range(1, 31)]  # slope at the end ~1e-4/epoch
    rising = [{"epoch": e, "train_acc": 0.5 + 0.01 * e} for e in range(1, 31)]  # 0.80 and +1 pt per epoch
    assert gates.converged(flat, 0.95, max_slope=0.002).passed
    g = gates.converged(rising, 0.75, max_slope=0.002)
    assert not g.passed and "still improving" in g.reason
    assert g.measured["slope of the last 5 epochs"] == pytest.approx(0.01)
    assert not gates.converged(flat, 0.999, max_slope=0.002).passed  # below the accuracy bar
    assert not gates.converged(None, 0.5, 0.01).passed
    with pytest.raises(ValueError, match="min_train_accuracy"):
        gates.converged(flat, 95.0, 0.01)


def test_room_and_premise_gates():
    assert gates.has_room(stats.Interval(0.10, 0.01, 0.19, 5, 0.07), 1.0).passed is False  # TGeo's +0.1 pts
    assert gates.has_room(stats.Interval(2.0, 1.5, 2.5, 5, 0.4), 1.0).passed
    ens = gates.premise("ensemble beats its members", stats.t_interval([-0.1, 0.3, -0.4, 0.0, 0.2]))
    assert not ens.passed and "fails" in ens.describe()
    assert not gates.teacher_better(stats.t_interval([0.1, 0.11, 0.12]), 0.5).passed
    assert gates.teacher_better(stats.t_interval([1.0, 1.1, 1.2]), 0.5).passed


def test_count_and_same_setting_gates():
    assert gates.at_least("teachers", {"LS 0": 3, "LS 0.1": 4}, 3).passed
    g = gates.at_least("teachers", {"LS 0": 1, "LS 0.1": 3}, 3)
    assert not g.passed and "LS 0: 1" in g.reason and "LS 0.1" not in g.reason
    assert not gates.at_least("teachers", {}, 1).passed
    assert gates.same_setting("one rate", {"a": [0.1, 0.1], "b": [0.1]}).passed
    # passing, it says so in one number (the page repeats the gate under every claim); failing, it lists the arms
    assert gates.same_setting("one rate", {"a": [0.1], "b": [0.1]}).measured == {"learning rate": 0.1, "arms": 2}
    g = gates.same_setting("one rate", {"a": [0.1], "b": [0.03]})
    assert not g.passed and "a 0.1; b 0.03" in g.reason
    part = rules.find(Claim("x", "greater", key="x"), stats.t_interval([1.0, 1.1, 1.2]))
    assert part.label == REPRODUCED and rules.gated(part, [g]).label == NOT_TESTABLE
    assert rules.gated(part, [gates.same_setting("one rate", {"a": [0.1]})]) == part


# ------------------------------------------------------------------------------------------------- power
def test_detectable_effect_is_exact_and_larger_than_the_normal_approximation():
    d = power.detectable_effect(1.0, 10)
    assert power.detection_probability(d, 1.0, 10) == pytest.approx(0.8, abs=1e-6)
    normal = (1.959964 + 0.841621) / math.sqrt(10)  # z-based: the t-based one must be larger at small n
    assert normal < d < 1.2 * normal
    assert power.detectable_effect(1.0, 1) == math.inf and power.detectable_effect(0.0, 5) == 0.0
    # Monte Carlo: at the detectable effect about 80% of 5-seed experiments give an interval above 0
    rng = np.random.default_rng(0)
    d5 = power.detectable_effect(1.0, 5)
    x = rng.normal(d5, 1.0, size=(20000, 5))
    low = x.mean(1) - stats.t_quantile(4) * x.std(1, ddof=1) / math.sqrt(5)
    assert (low > 0).mean() == pytest.approx(0.8, abs=0.015)


def test_seeds_needed_reaches_the_minimum_effect():
    n = power.seeds_needed(0.24, 0.2)
    assert power.detectable_effect(0.24, n) <= 0.2 < power.detectable_effect(0.24, n - 1)
    p = power.power_of(0.24, 5, 0.2)
    assert p.enough is False and p.needed == n and f"{n} seeds would reach it" in p.describe()
    assert power.power_of(0.05, 5, 0.2).enough is True
    assert power.seeds_needed(100.0, 1e-3) is None
    # a small SD (accuracy as a fraction) keeps two significant digits instead of printing "0.00"
    small = power.power_of(0.003, 5).describe()
    assert "(paired SD 0.003;" in small and "effect 0.00 " not in small and "0.0" in small


# ------------------------------------------------------------------------------------------------- stats
def test_rank_correlation_handles_ties_like_scipy_documents():
    x, y = [1, 1, 2, 3], [1, 2, 3, 4]
    # average ranks of x: 1.5, 1.5, 3, 4 -> Pearson of ranks = 4.5 / sqrt(4.5 * 5)
    assert stats.rank_correlation(x, y).value == pytest.approx(4.5 / math.sqrt(22.5))
    # Kendall tau-b: 5 concordant, 0 discordant, 1 tie in x: 5 / sqrt((6 - 1) * 6)
    k = stats.rank_correlation(x, y, "kendall")
    assert k.value == pytest.approx(5 / math.sqrt(30)) and k.tied_share == pytest.approx(0.25)
    assert math.isnan(stats.rank_correlation([1, 1, 1], [1, 2, 3]).value)
    with pytest.raises(ValueError, match="method must be one of"):
        stats.rank_correlation(x, y, "pearson")


def test_one_sided_pvalues_tost():
    lo, hi = stats.one_sided_pvalues([0.1, -0.1, 0.05, 0.0, -0.05], 1.0)
    assert lo < 0.001 and hi > 0.999  # the mean is clearly below the margin 1


# ------------------------------------------------------------------------------------------------- stability
def test_stability_on_seed_halves():
    alone = scores(records("alone", 80, 0, 0))
    kd = scores(records("kd", 80, 2.0, noise=0.1))

    def label_on(keys):
        return rules.compare(BETTER, rules.subset(kd, keys), rules.subset(alone, keys)).label

    s = rules.stability(SEEDS, label_on)
    assert s.first_keys == (0, 2, 4) and s.second_keys == (1, 3, 5)
    assert s.status == "holds" and "holds on halves of the seeds" in s.describe()
    # a half whose seeds all go the other way contradicts the label
    kd_bad = {**kd, 1: alone[1] - 3.0, 3: alone[3] - 3.1, 5: alone[5] - 2.9}  # the odd seeds go the other way
    s2 = rules.stability(SEEDS, lambda k: rules.compare(BETTER, rules.subset(kd_bad, k), rules.subset(alone, k)).label,
                         full=REPRODUCED)
    assert s2.status == "changes"
    assert rules.Stability(REPRODUCED, REPRODUCED, INCONCLUSIVE, (0,), (1,)).status == "weaker"


def test_the_methods_page_worked_example_is_what_the_code_computes():
    from pathlib import Path

    page = " ".join((Path(__file__).parents[1] / "book" / "methods.md").read_text().split())
    alone = {0: 84.1, 1: 83.6, 2: 84.4, 3: 83.9, 4: 84.0}
    kd = {0: 84.9, 1: 84.0, 2: 85.3, 3: 84.2, 4: 84.6}
    claim = Claim("KD beats the student alone by at least 0.5 points", "greater", 0.5, "pts")
    f = rules.compare(claim, kd, alone)
    assert f.label == REPRODUCED and f"**{f.interval.describe('pts', digits=2)}**" in page
    assert f.power.describe("pts") + ", so five seeds were enough" in page
    small = stats.t_interval([0.3, 0.2, 0.35, 0.25, 0.3])
    assert decide(small, "greater", 0.5).label == NOT_REPRODUCED and f"[{small.low:.2f}, {small.high:.2f}]" in page
    s = rules.stability(alone, lambda k: rules.compare(claim, rules.subset(kd, k), rules.subset(alone, k)).label)
    assert s.status == "weaker" and s.first == REPRODUCED and s.second == INCONCLUSIVE
    for keys in (s.first_keys, s.second_keys):
        iv = stats.paired_difference(rules.subset(kd, keys), rules.subset(alone, keys))
        assert f"seeds {', '.join(map(str, keys))} give {iv.describe('pts', digits=2).split(', paired')[0]}" in page


def test_every_badge_is_in_the_intro_legend():
    from pathlib import Path

    intro = (Path(__file__).parents[1] / "book" / "intro.md").read_text()
    for label, badge in verdict.BADGES.items():
        assert f"{badge} {label}" in " ".join(intro.split()), label
