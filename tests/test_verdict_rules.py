"""Noise-aware verdict rules on synthetic tables: intervals by hand, rules at their edges."""
import math

import pandas as pd
import pytest

from kdutils.verdicts import stats, verdict
from kdutils.verdicts.verdict import INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED


def test_t_interval_matches_hand_computation():
    # values 1, 2, 3: mean 2, sd 1, t_{2, 0.975} = 4.302653 -> half width 4.302653 / sqrt(3) = 2.484138
    iv = stats.t_interval([1.0, 2.0, 3.0])
    assert iv.mean == pytest.approx(2.0)
    assert iv.sd == pytest.approx(1.0)
    assert iv.low == pytest.approx(2.0 - 2.484138, abs=1e-5)
    assert iv.high == pytest.approx(2.0 + 2.484138, abs=1e-5)
    assert iv.n == 3 and iv.method == "paired t"


def test_paired_difference_uses_only_common_keys_and_pairs_them():
    a = {0: 10.0, 1: 20.0, 2: 30.0, 3: 99.0}
    b = {0: 9.0, 1: 19.0, 2: 29.0}  # seed 3 has no partner
    iv = stats.paired_difference(a, b)
    # every pair differs by exactly 1: zero spread, so the interval collapses to the point 1
    assert iv.n == 3 and iv.mean == pytest.approx(1.0) and iv.low == pytest.approx(1.0)
    # unpaired, the same numbers would be hopelessly noisy; paired, the seed effect cancels
    assert verdict.beats(iv, "greater").label == REPRODUCED


def test_positive_mean_within_noise_is_not_reproduced():
    alone = {0: 140.0, 1: 132.0, 2: 150.0}
    kd = {0: 135.0, 1: 140.0, 2: 139.0}  # differences -5, +8, -11: mean -2.7, sd 9.7
    iv = stats.paired_difference(kd, alone)
    assert iv.mean < 0  # KD "better" on average ...
    decision = verdict.beats(iv, "less")
    assert decision.label == INCONCLUSIVE  # ... but the interval contains 0
    assert "contains 0" in decision.reason


def test_clear_effect_is_reproduced_and_clear_opposite_is_not():
    alone = {0: 140.0, 1: 132.0, 2: 150.0, 3: 145.0}
    kd = {k: v - 20.0 + d for (k, v), d in zip(alone.items(), (1.0, -1.0, 2.0, -2.0))}
    assert verdict.beats(stats.paired_difference(kd, alone), "less").label == REPRODUCED
    assert verdict.beats(stats.paired_difference(alone, kd), "less").label == NOT_REPRODUCED


def test_one_seed_gives_inconclusive_not_a_crash():
    iv = stats.paired_difference({0: 100.0}, {0: 150.0})
    assert iv.n == 1 and not iv.estimable and math.isinf(iv.low)
    assert verdict.beats(iv, "less").label == INCONCLUSIVE
    assert verdict.meets_threshold(iv, 0.75).label == INCONCLUSIVE
    assert verdict.testable(iv, 1.0).label == NOT_TESTABLE
    assert "n=1" in iv.describe("errors")
    empty = stats.paired_difference({}, {0: 1.0})
    assert empty.n == 0 and verdict.beats(empty).label == INCONCLUSIVE


def test_threshold_inside_interval_is_inconclusive_and_edges_decide():
    iv = stats.t_interval([0.6, 0.8, 0.9])  # mean 0.767, interval roughly [0.39, 1.15]
    assert iv.low < 0.75 < iv.high
    assert verdict.meets_threshold(iv, 0.75).label == INCONCLUSIVE
    assert verdict.meets_threshold(stats.t_interval([0.80, 0.81, 0.82]), 0.75).label == REPRODUCED
    assert verdict.meets_threshold(stats.t_interval([0.30, 0.31, 0.32]), 0.75).label == NOT_REPRODUCED
    assert verdict.meets_threshold(stats.t_interval([0.30, 0.31, 0.32]), 0.5, "less").label == REPRODUCED


def test_diverged_and_chance_runs_count_against_their_arm():
    table = pd.DataFrame([
        {"seed": 0, "errors": 120.0, "status": "ok"},
        {"seed": 1, "errors": float("nan"), "status": "diverged"},
        {"seed": 2, "errors": 8990.0, "status": "chance"},
    ])
    scores, failed = verdict.scores_by_key(table, "seed", "errors", failed_value=9000.0)
    assert scores == {0: 120.0, 1: 9000.0, 2: 9000.0} and failed == 2
    alone = {0: 140.0, 1: 141.0, 2: 139.0}
    # dropping the failed seeds would leave one clean win (-20); counting them, KD is not "reproduced"
    iv = stats.paired_difference(scores, alone)
    assert iv.n == 3 and iv.mean > 0
    assert verdict.beats(iv, "less").label != REPRODUCED
    with pytest.raises(ValueError, match="give failed runs a score"):
        stats.t_interval([1.0, float("nan")])


def test_scores_by_key_rejects_broken_records():
    with pytest.raises(ValueError, match="status 'ok' but no"):
        verdict.scores_by_key([{"seed": 0, "errors": None, "status": "ok"}], "seed", "errors", 9000)
    with pytest.raises(ValueError, match="unknown run status 'running'"):
        verdict.scores_by_key([{"seed": 0, "errors": 1, "status": "running"}], "seed", "errors", 9000)
    with pytest.raises(ValueError, match="two runs share seed=0"):
        verdict.scores_by_key([{"seed": 0, "errors": 1, "status": "ok"}] * 2, "seed", "errors", 9000)


def test_testable_gate_needs_a_clear_and_large_enough_gap():
    # minimum gap for a student at 1.4% error on 10,000 images: 2 * sqrt(.014 * .986 / 1e4) = 0.00235
    assert verdict.min_testable_gap(0.014, 10_000) == pytest.approx(0.0023498, rel=1e-4)
    big = stats.t_interval([0.006, 0.0055, 0.0065])  # 60 errors out of 10,000
    assert verdict.testable(big, 0.00235).label == REPRODUCED
    tiny = stats.t_interval([0.0010, 0.0011, 0.0012])  # clearly positive but below the minimum
    assert tiny.above(0) and verdict.testable(tiny, 0.00235).label == NOT_TESTABLE
    noisy = stats.t_interval([0.006, -0.004, 0.001])
    assert verdict.testable(noisy, 0.00235).label == NOT_TESTABLE


def test_gap_fractions_hand_values():
    fr = verdict.gap_fractions({0: 146.0, 1: 150.0}, {0: 74.0, 1: 110.0}, 67.0)
    assert fr[0] == pytest.approx(72 / 79) and fr[1] == pytest.approx(40 / 83)
    assert verdict.gap_fractions({0: 60.0}, {0: 50.0}, 67.0) == {}  # no positive gap -> no fraction


def test_verdict_labels_badges_and_markdown():
    assert {"inconclusive at this scale", "not testable at this scale"} <= set(verdict.LABELS)
    assert set(verdict.BADGES) == set(verdict.LABELS)
    v = verdict.Verdict("c", INCONCLUSIVE, "e", "cpu", effect="-3 errors [-9, 3], paired t 95%, n=3")
    md = v._repr_markdown_()
    assert "inconclusive at this scale" in md and "**Effect.** -3 errors" in md
    assert verdict.Verdict("c", REPRODUCED, "e", "cpu").effect == ""
    with pytest.raises(ValueError, match="unknown verdict label 'maybe'"):
        verdict.Verdict("c", "maybe", "e", "cpu")
    with pytest.raises(ValueError, match="claimed direction"):
        verdict.beats(stats.t_interval([1.0, 2.0]), "up")


def test_describe_formats_interval():
    iv = stats.t_interval([-20.0, -15.0, -16.0])
    text = iv.describe("errors", digits=0)
    assert text.startswith("-17 errors [") and text.endswith("paired t 95%, n=3")


def test_describe_percent_units_stick_to_every_number():
    iv = stats.t_interval([0.7, 0.8, 0.9])
    assert iv.describe("%", digits=0, scale=100, signed=False).startswith("80% [55%, 105%]")
